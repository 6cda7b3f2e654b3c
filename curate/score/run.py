"""The score stage: every sample that survived dedup gets language ID, CLIP similarities, probe scores
and embeddings.

Ray reads each download shard in a task and streams its rows through image decoding (CPU tasks,
overlapping inference), CLIP (an actor pool running every configured model on each decoded batch; on a
GPU the actor decodes JPEGs on the device instead) and language ID (an actor pool). Outputs are written per
download shard, sorted by key, embeddings first and the scores file last; a shard whose scores file exists
is skipped, so a killed run resumes at shard granularity with no duplicated and no missing rows.
"""

from __future__ import annotations

import logging
import tarfile
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from curate import schemas
from curate.engines.base import StageSpec
from curate.errors import CurateError
from curate.io import fs
from curate.io.stagedir import StageDir
from curate.score.config import ClipConfig, LangIdConfig, ScoreConfig
from curate.score.stages import ClipStage, DecodeConfig, DecodeStage, LangIdStage, embedding_columns
from curate.stage import StageStats

log = logging.getLogger(__name__)

NAME = "score"
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
SCORES_VERSION = 2
CONFIG_FILE = "_config.json"

__all__ = ["ClipConfig", "LangIdConfig", "ScoreConfig", "plan", "read_shard", "run_score", "stage_specs"]


def read_shard(item: dict) -> pa.Table:
    """The kept samples of one download tar: uid, shard, key, caption and the image bytes."""
    wanted = dict(zip(item["keys"], range(len(item["keys"])), strict=True))
    images: list[bytes | None] = [None] * len(wanted)
    tfs, path = fs.url_to_fs(item["tar"])
    with tfs.open(path, "rb") as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
        for m in tar:
            key, _, ext = m.name.rpartition(".")
            if ext.lower() in IMAGE_EXTS and key in wanted:
                images[wanted[key]] = tar.extractfile(m).read()
    missing = [k for k, b in zip(item["keys"], images, strict=True) if b is None]
    if missing:
        raise CurateError(f"score: {item['tar']} lacks images for keys {missing[:3]}")
    n = len(images)
    return pa.table({"uid": item["uids"], "shard": [item["shard"]] * n, "key": item["keys"],
                     "caption": pa.array(item["captions"], pa.string()),
                     "image": pa.array(images, pa.binary())})


def plan(run_dir: str) -> list[dict]:
    """One work item per download shard, listing the keys that dedup kept."""
    samples = fs.read_table(fs.join(run_dir, "download", "samples"), schema="samples")
    decisions = fs.read_table(fs.join(run_dir, "dedup", "decisions"), schema="dedup")
    kept = set(decisions.filter(pc.is_null(decisions.column("reason"))).column("uid").to_pylist())
    by_shard: dict[str, list[dict]] = defaultdict(list)
    for r in samples.select(["uid", "shard", "key", "caption"]).to_pylist():
        if r["uid"] in kept:
            by_shard[r["shard"]].append(r)
    items = []
    for shard in sorted(by_shard):
        rows = sorted(by_shard[shard], key=lambda r: r["key"])
        items.append({"shard": shard, "tar": fs.join(run_dir, "download", "shards", shard),
                      "keys": [r["key"] for r in rows], "uids": [r["uid"] for r in rows],
                      "captions": [r["caption"] for r in rows]})
    return items


def _emb_folder(alias: str, first: bool) -> str:
    return "embeddings" if first else f"embeddings_{alias}"


def stage_specs(config: ScoreConfig) -> list[StageSpec]:
    """The Ray pipeline after the shard reader: decoding (CPU tasks), CLIP, language ID."""
    clip = config.clip
    on_gpu = clip.device.startswith("cuda")
    specs = []
    if config.decode_tasks and not (on_gpu and clip.decode_on_device):
        specs.append(StageSpec(DecodeStage, DecodeConfig(), batch_size=config.decode_batch_size,
                               concurrency=config.decode_concurrency))
    specs.append(StageSpec(ClipStage, clip, batch_size=config.clip_batch_size, concurrency=config.clip_actors,
                           num_gpus=config.clip_num_gpus or (1.0 if on_gpu else 0.0),
                           env={"OMP_NUM_THREADS": str(clip.threads)}))
    # Language ID last: its batches then carry no pixels, and waiting to fill one never stalls decoding.
    specs.append(StageSpec(LangIdStage, config.langid, batch_size=config.langid_batch_size,
                           concurrency=config.langid_actors))
    return specs


def describe(config: ScoreConfig) -> dict:
    """What score/models.json records: every model (alias, identity, columns, embedding folder, embed dim),
    every probe, and the language-ID model. Checks the config on the driver, without loading weights."""
    from curate.models.clip import describe as describe_model
    from curate.models.langid import LangId
    from curate.models.probe import ProbeSpec

    clip = config.clip
    clip.validate()
    entries = clip.entries()
    embed = clip.embedding_aliases()
    models, dims = [], {}
    for i, e in enumerate(entries):
        meta = describe_model(e.spec)
        dims[e.alias] = meta["embed_dim"]
        models.append({"alias": e.alias, "name": meta["clip_model"], "pretrained": meta["clip_pretrained"],
                       "revision": meta["clip_revision"], "embed_dim": meta["embed_dim"],
                       "columns": (["clip_similarity"] if i == 0 else []) + [e.column],
                       "embeddings": _emb_folder(e.alias, i == 0) if e.alias in embed else None})
    probes = []
    for path in clip.probes:
        probe = ProbeSpec.read(path)
        if probe.model not in dims:
            raise CurateError(f"probe {probe.name} reads model {probe.model!r}, which is not configured "
                              f"(models: {sorted(dims)})")
        if dims[probe.model] and probe.input_dim(dims[probe.model]) != probe.layers[0]:
            raise CurateError(f"probe {probe.name} takes {probe.layers[0]} inputs, but model {probe.model!r} "
                              f"gives {dims[probe.model]}-wide {probe.input} embeddings")
        probes.append(probe.metadata())
    names = [p["name"] for p in probes]
    taken = set(schemas.load("scores", SCORES_VERSION).names) | {e.column for e in entries}
    clash = sorted({n for n in names if names.count(n) > 1 or n in taken})
    if clash:
        raise CurateError(f"score: probe names {clash} repeat or clash with score columns")
    info = LangId(config.langid.model).info
    first = models[0]
    return {"clip_model": first["name"], "clip_pretrained": first["pretrained"], "clip_revision": first["revision"],
            "models": models, "probes": probes, "device": clip.device, "precision": clip.precision,
            "langid_model": Path(info.path).name, "langid_revision": f"sha256:{info.sha256}",
            "scores_schema": f"scores.v{SCORES_VERSION}"}


def _outputs(sd: StageDir, shard: str) -> tuple[str, str]:
    stem = shard.removesuffix(".tar")
    return sd.file("scores", f"{stem}.parquet"), sd.file("embeddings", f"{stem}.parquet")


def _check_resumable(sd: StageDir, meta: dict) -> None:
    """A resumed run must use the models it started with, or its shards would disagree."""
    path = sd.file(CONFIG_FILE)
    if fs.exists(path):
        before = fs.read_json(path)
        if before != meta:
            raise CurateError(f"score: {sd.path} was started with other models or probes; remove it to rescore "
                              "with this configuration")
    else:
        fs.write_json(path, meta)


def run_score(engine, run_dir: str, config: ScoreConfig | None = None) -> dict:
    """`engine` is a RayEngine (anything with map_stages)."""
    config = config or ScoreConfig()
    sd, finished = StageDir.start(run_dir, NAME, requires="dedup")
    if finished is not None:
        return finished
    meta = describe(config)  # a bad --model or probe fails here, before any worker starts
    _check_resumable(sd, meta)
    items = plan(run_dir)
    todo = [it for it in items if not fs.exists(_outputs(sd, it["shard"])[0])]
    log.info("score: %d shards, %d to score", len(items), len(todo))
    parts: dict[str, list[pa.Table]] = defaultdict(list)
    expected = {it["shard"]: len(it["keys"]) for it in todo}
    done = 0
    for batch in engine.map_stages(todo, read_shard, stage_specs(config)):
        for shard in pc.unique(batch.column("shard")).to_pylist():
            part = batch.filter(pc.equal(batch.column("shard"), shard))
            parts[shard].append(part)
            if sum(p.num_rows for p in parts[shard]) == expected[shard]:
                _write_shard(sd, shard, pa.concat_tables(parts.pop(shard)), meta)
                done += 1
                log.info("score: %d/%d shards written", done, len(todo))
    if parts:
        raise CurateError(f"score: incomplete results for shards {sorted(parts)}; rerun to resume")
    scores = fs.read_table(sd.file("scores"), schema="scores") if items else None
    stats = StageStats()
    if scores is not None:
        reason = pc.if_else(pc.equal(scores.column("status"), "ok"), pa.scalar(None, pa.string()),
                            scores.column("status"))
        stats = StageStats.from_table(scores.append_column("reason", reason))
    fs.write_json(sd.file("models.json"), meta)
    result = {"stage": NAME, "shards": len(items), **stats.to_dict()}
    sd.finish(result)
    return result


def _with_meta(table: pa.Table, meta: dict[str, str]) -> pa.Table:
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **{k: v for k, v in meta.items()}})


def _write_shard(sd: StageDir, shard: str, table: pa.Table, meta: dict) -> None:
    table = table.sort_by([("key", "ascending")])
    stem = shard.removesuffix(".tar")
    ok = table.filter(pc.equal(table.column("status"), "ok"))
    for i, model in enumerate(meta["models"]):
        if model["embeddings"] is None:
            continue
        img_col, txt_col = embedding_columns(model["alias"], i == 0)
        emb = ok.select(["uid", img_col, txt_col]).rename_columns(["uid", "image_embedding", "text_embedding"])
        emb = _with_meta(schemas.conform(emb, "embeddings"), {
            "curate.model.alias": model["alias"], "curate.model.name": model["name"],
            "curate.model.pretrained": model["pretrained"], "curate.model.revision": model["revision"]})
        fs.write_table(emb, sd.file(model["embeddings"], f"{stem}.parquet"))
    columns = [*schemas.load("scores", SCORES_VERSION).names, *(c for m in meta["models"] for c in m["columns"]
                                                                 if c != "clip_similarity"),
               *(p["name"] for p in meta["probes"])]
    scores = schemas.conform(table.select(columns), "scores", SCORES_VERSION)
    scores = _with_meta(scores, {"curate.models": ",".join(f"{m['alias']}={m['name']}:{m['pretrained']}"
                                                           for m in meta["models"])})
    fs.write_table(scores, _outputs(sd, shard)[0])  # written last: marks the shard complete
    log.info("score: wrote %s (%d rows)", shard, table.num_rows)
