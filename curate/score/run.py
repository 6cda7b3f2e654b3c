"""The score stage: every sample that survived dedup gets language ID, CLIP similarities, probe scores
and embeddings, from storage to storage on Ray (`curate.score.shards`, `RayEngine.map_shards`).

The driver lists the download's samples parts and dedup's decisions parts and holds one descriptor per
download shard. Ray tasks read each shard (its kept rows and their images from the tar); the rows stream
through image decoding (CPU tasks, overlapping inference), CLIP (an actor pool running every configured
model and probe on each decoded batch; on a GPU the actor may decode JPEGs on the device instead) and
language ID (an actor pool); workers write each shard's outputs, sorted by key, embeddings first and the
scores part last, and return its stats, which the driver merges. Resume is one listing of
`score/scores/`: only shards without a scores part are scored, so a killed run resumes at shard
granularity with no duplicated and no missing rows.
"""

from __future__ import annotations

import logging
from pathlib import Path

from curate import schemas
from curate.engines.base import StageSpec
from curate.errors import CurateError
from curate.io import dataset, fs
from curate.io.stagedir import StageDir
from curate.score.config import ClipConfig, LangIdConfig, ScoreConfig
from curate.score.shards import PIECES, SCORES_VERSION, PieceWriter, ShardCommit, count_scores, plan, read_shard
from curate.score.stages import ClipStage, DecodeStage, LangIdStage, decode_config

log = logging.getLogger(__name__)

NAME = "score"
CONFIG_FILE = "_config.json"

__all__ = ["ClipConfig", "LangIdConfig", "ScoreConfig", "plan", "read_shard", "run_score", "stage_specs"]


def _emb_folder(alias: str, first: bool) -> str:
    return "embeddings" if first else f"embeddings_{alias}"


def stage_specs(config: ScoreConfig) -> list[StageSpec]:
    """The Ray pipeline after the shard reader: decoding (CPU tasks), CLIP, language ID."""
    clip = config.clip
    on_gpu = clip.device.startswith("cuda")
    specs = []
    if config.decode_tasks and not clip.gpu_decode:
        specs.append(StageSpec(DecodeStage, decode_config(clip), batch_size=config.decode_batch_size,
                               concurrency=config.decode_concurrency))
    specs.append(StageSpec(ClipStage, clip, batch_size=config.clip_batch_size, concurrency=config.clip_actors,
                           num_gpus=config.clip_num_gpus or (1.0 if on_gpu else 0.0),
                           env={"OMP_NUM_THREADS": str(clip.threads)}))
    # Language ID last: its batches then carry no pixels, and waiting to fill one never stalls decoding.
    specs.append(StageSpec(LangIdStage, config.langid, batch_size=config.langid_batch_size,
                           concurrency=config.langid_actors, num_cpus=0.25))
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
    out = {"clip_model": first["name"], "clip_pretrained": first["pretrained"], "clip_revision": first["revision"],
           "models": models, "probes": probes, "device": clip.device, "precision": clip.precision,
           "langid_model": Path(info.path).name, "langid_revision": f"sha256:{info.sha256}",
           "scores_schema": f"scores.v{SCORES_VERSION}"}
    if clip.decoded_by != "exact":  # how images were decoded (absent: in full, as before this field existed)
        out["decode"] = clip.decoded_by
    return out


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
    """`engine` is a RayEngine (anything with map_shards and for_each)."""
    config = config or ScoreConfig()
    sd, finished = StageDir.start(run_dir, NAME, requires="dedup", config=config)
    if finished is not None:
        return finished
    with sd:  # the stage's lock goes however the work ends
        return _score(engine, run_dir, sd, config)


def _score(engine, run_dir: str, sd: StageDir, config: ScoreConfig) -> dict:
    meta = describe(config)  # a bad --model or probe fails here, before any worker starts
    _check_resumable(sd, meta)
    items = plan(run_dir)
    done = dataset.finished_parts(sd.file("scores"))
    todo = [it for it in items if dataset.shard_part_name(it["shard"]) not in done]
    log.info("score: %d shards with kept samples, %d scored before, %d to score", len(items), len(done), len(todo))
    _remove(sd.file(PIECES))  # an interrupted attempt's pieces: their shards are scored again
    stats = engine.map_shards(todo, read_shard, stage_specs(config), PieceWriter(sd.path), ShardCommit(sd.path, meta))
    if done:
        stats = dataset.merge_stats([stats, engine.for_each(count_scores, [sd.file("scores", n) for n in done],
                                                            per_task=64)])
    _remove(sd.file(PIECES))
    fs.write_json(sd.file("models.json"), meta)
    result = {"stage": NAME, "shards": stats.get("shards", 0), "rows_in": stats.get("rows_in", 0),
              "kept": stats.get("kept", 0), "rejected": dict(sorted(stats.get("rejected", {}).items()))}
    if config.clip.gpu_decode:
        result["gpu_decode_fallbacks"] = fallbacks = stats.get("gpu_decode_fallbacks", 0)
        if fallbacks:
            log.warning("score: nvjpeg refused %d JPEGs; they were decoded on the CPU (or failed there)", fallbacks)
    sd.finish(result)
    return result


def _remove(path: str) -> None:
    fs.remove_tree(path)
