"""The selection pool, one download shard at a time: the shard's scored samples (`score/scores/NNNNN.parquet`,
status ok) joined with the download metadata the policies read (`download/samples/NNNNN.parquet`) and, when a
step needs them, the image embeddings (`score/embeddings/NNNNN.parquet`), in the task that reads the shard.

The driver lists the scores folder once and holds one descriptor per shard; the engine's workers build the
rows (`PoolRows`), and every row carries its shard's name (`_part`) so the decisions are written back one
part per download shard.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from curate import schemas
from curate.errors import CurateError
from curate.io import dataset, fs
from curate.io.dataset import PART_COL

# download/samples columns the pool takes: always, and when the run's samples have them (samples.v3's
# `source`, the input's source dataset, which `mix` groups by default; a run downloaded before v3 has none)
SAMPLE_COLUMNS = ("caption", "original_width", "original_height")
OPTIONAL_SAMPLE_COLUMNS = ("source",)
SCORE_ONLY = ("shard", "key", "status", "error")  # scores columns the pool leaves out
EMBEDDING = "image_embedding"


def items(run_dir: str, embeddings: bool) -> list[dict]:
    """One descriptor per scored download shard (one listing of score/scores)."""
    out = []
    for name in dataset.list_parts(fs.join(run_dir, "score", "scores")):
        out.append({"part": name.removesuffix(dataset.SUFFIX),
                    "scores": fs.join(run_dir, "score", "scores", name),
                    "samples": fs.join(run_dir, "download", "samples", name),
                    "embeddings": fs.join(run_dir, "score", "embeddings", name) if embeddings else None})
    return out


def schema(run_dir: str, needed: set[str]) -> pa.Schema:
    """The pool's columns, from the footers of the first scores and samples parts: every score column (the
    score stage's dynamic `clip_<alias>` and probe columns included), the download metadata, the embedding
    when a step reads it, and `_part`."""
    scores = dataset.read_schema(fs.join(run_dir, "score", "scores"))
    samples = dataset.read_schema(fs.join(run_dir, "download", "samples"))
    if scores is None or samples is None:
        raise CurateError(f"select: {run_dir} has no scored samples (score/scores or download/samples is empty)")
    fields = [pa.field(f.name, f.type) for f in scores if f.name not in SCORE_ONLY]
    have = {f.name for f in fields}
    v3 = schemas.load("samples", 3)
    for name in (*SAMPLE_COLUMNS, *(c for c in OPTIONAL_SAMPLE_COLUMNS if c in samples.names)):
        if name not in have:
            fields.append(pa.field(name, v3.field(name).type))
    missing = [c for c in OPTIONAL_SAMPLE_COLUMNS if c in needed and c not in samples.names]
    if missing:
        raise CurateError(f"select: the policy reads {missing[0]!r}, and this run's download/samples has no such "
                          "column; download an input with a `source` column (or name it with --source-col)")
    if EMBEDDING in needed:
        fields.append(pa.field(EMBEDDING, pa.list_(pa.float32())))
    return pa.schema([*fields, pa.field(PART_COL, pa.string())])


class PoolRows:
    """Runs in a worker: one download shard's pool rows, sorted by uid."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema

    def __call__(self, item: dict) -> pa.Table:
        scores = dataset.read_part(item["scores"])
        scores = scores.filter(pc.equal(scores.column("status"), "ok"))
        keep = [c for c in scores.column_names if c not in SCORE_ONLY]
        wanted = [c for c in (*SAMPLE_COLUMNS, *OPTIONAL_SAMPLE_COLUMNS) if c in self.schema.names]
        samples = dataset.read_part(item["samples"], ["uid", *wanted], only_present=True)
        table = scores.select(keep).join(samples, "uid", join_type="inner")
        if table.num_rows != scores.num_rows:
            raise CurateError(f"select: {item['scores']} scores samples that {item['samples']} does not hold")
        table = table.sort_by([("uid", "ascending")])
        if EMBEDDING in self.schema.names:
            emb = dataset.read_part(item["embeddings"], ["uid", EMBEDDING])
            idx = pc.index_in(table.column("uid"), value_set=emb.column("uid"))  # acero joins no list columns
            if idx.null_count:
                raise CurateError(f"select: {idx.null_count} scored samples have no image embedding in "
                                  f"{item['embeddings']}")
            table = table.append_column(EMBEDDING, emb.column(EMBEDDING).take(idx).cast(pa.list_(pa.float32())))
        table = table.append_column(PART_COL, pa.array([item["part"]] * table.num_rows, pa.string()))
        for f in self.schema:
            if f.name not in table.column_names:
                table = table.append_column(f.name, pa.nulls(table.num_rows, f.type))
        return table.select(self.schema.names).cast(self.schema)


def table(run_dir: str, needed: set[str] | None = None) -> pa.Table:
    """The whole pool in this process, sorted by uid, without `_part` (demo-size runs and tests)."""
    shape = schema(run_dir, needed or set())
    rows = [PoolRows(shape)(item) for item in items(run_dir, EMBEDDING in shape.names)]
    out = pa.concat_tables(rows) if rows else shape.empty_table()
    return out.drop_columns([PART_COL]).sort_by([("uid", "ascending")])
