"""The score stage: every sample that survived dedup gets language ID, CLIP similarity and embeddings.

Ray reads each download shard in a task and streams its rows through two actor pools (language ID,
then CLIP). Outputs are written per download shard, sorted by key; a shard already written is skipped,
so a killed run resumes at shard granularity.
"""

from __future__ import annotations

import logging
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from curate.engines.base import StageSpec
from curate.errors import CurateError
from curate.io import fs
from curate.io.stagedir import StageDir
from curate.score.stages import ClipConfig, ClipStage, LangIdConfig, LangIdStage
from curate.stage import StageStats

log = logging.getLogger(__name__)

NAME = "score"
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


@dataclass(frozen=True)
class ScoreConfig:
    clip: ClipConfig = field(default_factory=ClipConfig)
    langid: LangIdConfig = field(default_factory=LangIdConfig)
    clip_batch_size: int = 64
    clip_actors: int = 1
    langid_actors: int = 1


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
    decisions = fs.read_table(fs.join(run_dir, "dedup", "decisions.parquet"), schema="dedup")
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


def _outputs(sd: StageDir, shard: str) -> tuple[str, str]:
    stem = shard.removesuffix(".tar")
    return sd.file("scores", f"{stem}.parquet"), sd.file("embeddings", f"{stem}.parquet")


def run_score(engine, run_dir: str, config: ScoreConfig | None = None) -> dict:
    """`engine` is a RayEngine (anything with map_stages)."""
    config = config or ScoreConfig()
    sd, finished = StageDir.start(run_dir, NAME, requires="dedup")
    if finished is not None:
        return finished
    from curate.models.clip import ClipScorer, ClipSpec
    from curate.models.langid import LangId

    # Load once here: a bad --model fails before any worker starts, and we learn what exactly was loaded.
    clip_meta = ClipScorer(ClipSpec.parse(config.clip.model)).load().metadata()
    langid_info = LangId(config.langid.model).info
    items = plan(run_dir)
    todo = [it for it in items if not fs.exists(_outputs(sd, it["shard"])[0])]
    log.info("score: %d shards, %d to score", len(items), len(todo))
    specs = [StageSpec(LangIdStage, config.langid, batch_size=1024, concurrency=config.langid_actors),
             StageSpec(ClipStage, config.clip, batch_size=config.clip_batch_size,
                       concurrency=config.clip_actors, env={"OMP_NUM_THREADS": str(config.clip.threads)})]
    parts: dict[str, list[pa.Table]] = defaultdict(list)
    expected = {it["shard"]: len(it["keys"]) for it in todo}
    for batch in engine.map_stages(todo, read_shard, specs):
        for shard in pc.unique(batch.column("shard")).to_pylist():
            part = batch.filter(pc.equal(batch.column("shard"), shard))
            parts[shard].append(part)
            if sum(p.num_rows for p in parts[shard]) == expected[shard]:
                _write_shard(sd, shard, pa.concat_tables(parts.pop(shard)))
    if parts:
        raise CurateError(f"score: incomplete results for shards {sorted(parts)}; rerun to resume")
    scores = fs.read_table(sd.file("scores"), schema="scores") if items else None
    stats = StageStats()
    if scores is not None:
        reason = pc.if_else(pc.equal(scores.column("status"), "ok"), pa.scalar(None, pa.string()),
                            scores.column("status"))
        stats = StageStats.from_table(scores.append_column("reason", reason))
    fs.write_json(sd.file("models.json"), {**clip_meta, "langid_model": Path(langid_info.path).name,
                                           "langid_revision": f"sha256:{langid_info.sha256}"})
    result = {"stage": NAME, "shards": len(items), **stats.to_dict()}
    sd.finish(result)
    return result


def _write_shard(sd: StageDir, shard: str, table: pa.Table) -> None:
    table = table.sort_by([("key", "ascending")])
    scores_path, emb_path = _outputs(sd, shard)
    ok = pc.equal(table.column("status"), "ok")
    fs.write_table(table.filter(ok), emb_path, schema="embeddings")
    fs.write_table(table, scores_path, schema="scores")  # written last: marks the shard complete
    log.info("score: wrote %s (%d rows)", shard, table.num_rows)
