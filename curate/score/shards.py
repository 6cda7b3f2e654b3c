"""The score stage's data plane (../shared/DATAPLANE.md): what the driver plans from listings, and what the
workers do with one download shard. Nothing here imports an engine.

- `plan`: one descriptor per download shard that has a dedup decisions part (a shard whose rows all failed
  download has none), from one listing of each folder: the shard's tar, samples part and decisions part.
- `read_shard` (a worker): the shard's kept rows (decision without a reason), sorted by key, with their
  captions and image bytes from the tar, and `_shard_rows`, how many rows the shard has in all.
- `PieceWriter` (a worker, after the models): each scored batch's rows of each shard as a piece under
  `score/_pieces/<shard>/`, and one stats row per piece (shard, rows, expected).
- `ShardCommit` (a worker, once a shard's pieces hold all its rows): the shard's embeddings parts, then
  its scores part last (the shard is complete once it exists), exactly as the stage always wrote them;
  the pieces are removed; returns the shard's stats.
Resume is one listing of `score/scores/`; a shard without its scores part is scored again from scratch.
"""

from __future__ import annotations

import logging
import tarfile

import pyarrow as pa
import pyarrow.compute as pc

from curate import schemas
from curate.errors import CurateError
from curate.io import dataset, fs, sums
from curate.score.stages import GPU_FALLBACK, embedding_columns
from curate.stage import StageStats

log = logging.getLogger(__name__)

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
SCORES_VERSION = 2
SHARD_ROWS = "_shard_rows"  # on every row the reader emits: the number of rows its shard has
PIECES = "_pieces"
PIECE_STATS = pa.schema([("shard", pa.string()), ("rows", pa.int64()), ("expected", pa.int64())])
_SAMPLE_COLS = ["uid", "shard", "key", "caption"]


def plan(run_dir: str) -> list[dict]:
    """One descriptor per download shard with a decisions part, in shard order (two listings)."""
    samples_dir, decisions_dir = fs.join(run_dir, "download", "samples"), fs.join(run_dir, "dedup", "decisions")
    decided = dataset.list_parts(decisions_dir)
    items = []
    for name in dataset.list_parts(samples_dir):
        if name in decided:
            stem = name.removesuffix(dataset.SUFFIX)
            items.append({"shard": f"{stem}.tar", "tar": fs.join(run_dir, "download", "shards", f"{stem}.tar"),
                          "samples": fs.join(samples_dir, name), "decisions": fs.join(decisions_dir, name)})
    return items


def read_shard(item: dict) -> pa.Table:
    """The kept samples of one download shard: uid, shard, key, caption, image bytes and `_shard_rows`."""
    samples = dataset.read_part(item["samples"], _SAMPLE_COLS)
    decisions = dataset.read_part(item["decisions"], ["uid", "reason"])
    kept = decisions.filter(pc.is_null(decisions.column("reason"))).column("uid").combine_chunks()
    rows = samples.filter(pc.is_in(samples.column("uid"), value_set=kept)).sort_by("key")
    if rows.num_rows and not pc.all(pc.equal(rows.column("shard"), item["shard"])).as_py():
        raise CurateError(f"score: {item['samples']} holds rows of shards other than {item['shard']}")
    keys = rows.column("key").to_pylist()
    images = _tar_images(item["tar"], keys) if keys else []
    return (rows.select(["uid", "shard", "key"]).append_column("caption", rows.column("caption").cast(pa.string()))
            .append_column("image", pa.array(images, pa.binary()))
            .append_column(SHARD_ROWS, pa.array([len(keys)] * len(keys), pa.int64())))


def _tar_images(tar_path: str, keys: list[str]) -> list[bytes]:
    """The image bytes of `keys` (in that order), reading the tar once from start to end."""
    wanted = dict(zip(keys, range(len(keys)), strict=True))
    images: list[bytes | None] = [None] * len(keys)
    try:  # checked against its sidecar when read through, before the shard's scores are written
        with sums.open_verified(tar_path) as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
            for m in tar:
                key, _, ext = m.name.rpartition(".")
                if ext.lower() in IMAGE_EXTS and key in wanted:
                    images[wanted[key]] = tar.extractfile(m).read()
    except FileNotFoundError as exc:
        raise CurateError(f"score: {tar_path} is missing, but its shard has kept samples") from exc
    except tarfile.TarError as exc:
        raise CurateError(f"score: cannot read {tar_path}: {exc}") from exc
    missing = [k for k, b in zip(keys, images, strict=True) if b is None]
    if missing:
        raise CurateError(f"score: {tar_path} lacks images for keys {missing[:3]}")
    return images


def _stem(shard: str) -> str:
    return shard.removesuffix(".tar")


class PieceWriter:
    """Runs in a worker: each shard's rows of a scored batch become one piece, named by its first key."""

    def __init__(self, score_dir: str) -> None:
        self.folder = fs.join(score_dir, PIECES)

    def __call__(self, batch: pa.Table) -> pa.Table:
        out = []
        shards = batch.column("shard")
        for shard in pc.unique(shards).to_pylist():
            rows = batch.filter(pc.equal(shards, shard))
            expected = rows.column(SHARD_ROWS)[0].as_py()
            rows = rows.drop_columns([c for c in ("caption", SHARD_ROWS) if c in rows.column_names]).sort_by("key")
            first = rows.column("key")[0].as_py()
            dataset.write_part(rows, fs.join(self.folder, _stem(shard), first + dataset.SUFFIX))
            out.append({"shard": shard, "rows": rows.num_rows, "expected": expected})
        return pa.Table.from_pylist(out, schema=PIECE_STATS)


def _with_meta(table: pa.Table, meta: dict[str, str]) -> pa.Table:
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **{k: v for k, v in meta.items()}})


def write_shard(score_dir: str, shard: str, table: pa.Table, meta: dict) -> None:
    """A shard's outputs: an embeddings part per model that writes them, then its scores part."""
    table = table.sort_by([("key", "ascending")])
    stem = _stem(shard)
    ok = table.filter(pc.equal(table.column("status"), "ok"))
    for i, model in enumerate(meta["models"]):
        if model["embeddings"] is None:
            continue
        img_col, txt_col = embedding_columns(model["alias"], i == 0)
        emb = ok.select(["uid", img_col, txt_col]).rename_columns(["uid", "image_embedding", "text_embedding"])
        emb = _with_meta(schemas.conform(emb, "embeddings"), {
            "curate.model.alias": model["alias"], "curate.model.name": model["name"],
            "curate.model.pretrained": model["pretrained"], "curate.model.revision": model["revision"]})
        fs.write_table(emb, fs.join(score_dir, model["embeddings"], f"{stem}.parquet"))
    columns = [*schemas.load("scores", SCORES_VERSION).names, *(c for m in meta["models"] for c in m["columns"]
                                                                 if c != "clip_similarity"),
               *(p["name"] for p in meta["probes"])]
    scores = schemas.conform(table.select(columns), "scores", SCORES_VERSION)
    scores = _with_meta(scores, {"curate.models": ",".join(f"{m['alias']}={m['name']}:{m['pretrained']}"
                                                           for m in meta["models"])})
    fs.write_table(scores, fs.join(score_dir, "scores", f"{stem}.parquet"))  # written last: the shard is complete
    log.info("score: wrote %s (%d rows)", shard, table.num_rows)


def shard_stats(status: pa.ChunkedArray) -> dict:
    """One shard's funnel entry from its status column: rows in, kept (ok), rejected by status."""
    reason = pc.if_else(pc.equal(status, "ok"), pa.scalar(None, pa.string()), status)
    return {"shards": 1, **StageStats.from_table(pa.table({"reason": reason})).to_dict()}


class ShardCommit:
    """Runs in a worker once all of a shard's rows are in pieces: writes its outputs, removes the pieces."""

    def __init__(self, score_dir: str, meta: dict) -> None:
        self.score_dir, self.meta = score_dir, meta

    def __call__(self, item: dict) -> dict:
        shard, expected = item["shard"], item["expected"]
        folder = fs.join(self.score_dir, PIECES, _stem(shard))
        pieces = [dataset.read_part(p).replace_schema_metadata(None) for p in dataset.part_paths(folder)]
        table = pa.concat_tables(pieces) if pieces else None
        if table is None or table.num_rows != expected or pc.count_distinct(table.column("key")).as_py() != expected:
            got = 0 if table is None else table.num_rows
            raise CurateError(f"score: {shard}: {got} rows in its pieces, expected {expected}; rerun to resume")
        write_shard(self.score_dir, shard, table, self.meta)
        stats = shard_stats(table.column("status"))
        if GPU_FALLBACK in table.column_names:
            stats["gpu_decode_fallbacks"] = int(pc.sum(table.column(GPU_FALLBACK).cast(pa.int64())).as_py() or 0)
        ffs, p = fs.url_to_fs(folder)
        ffs.rm(p, recursive=True)
        return stats


def count_scores(path: str) -> dict:
    """The stats of a shard scored by an earlier attempt, from its scores part's status column."""
    return shard_stats(dataset.read_part(path, ["status"]).column("status"))
