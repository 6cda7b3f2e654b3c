"""The shard stage: write the selected samples into new webdataset shards in a seeded global order, with
globally unique keys, `sizes.json` (read by open_clip's trainer), a manifest, `plan.json` and a
`_stats.json` per shard. Each sample's original files (image, caption, json) are carried over.

The repetition plan (`plan.py`) gives every sample a count. Materialised: each sample is written as many
times as its count, copy j in pass j. Streamed: each sample is written once and `loader.py` replays the
planned stream from `stream/`. `auto` (the default) takes the mode that stores fewer bytes: streamed as
soon as a sample repeats, materialised for one pass (the same bytes either way); plan.json reports both.

The table work is one program (`program.py`, `execute.py`) that runs on Spark, on Ray, or in this process
(the fast path at demo size; a test proves it writes the same bytes as the engines). Layout of `shard/`:
- `NNNNN.tar` + `NNNNN_stats.json`: the training shards, numbered in stream order;
- `manifest/part-KKKKK.parquet` (manifest.v2): the rows of stream block K (positions [K·B, (K+1)·B),
  B = samples_per_shard) in stream order, written by the task that wrote that block's tars; streamed
  folders list each written sample once (block K of pass 0), with its planned `repetition`;
- `stream/part-KKKKK.parquet` (streamed only): positions [K·B, (K+1)·B) of the whole planned stream as
  (uid, shard, key, copy): what each rank's loader reads of it;
- `sizes.json`, `plan.json` (the plan, its layout, the bytes each repetition mode would store),
  `_config.json`, `_stats.json`, `_SUCCESS`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass

from curate.engines.base import Engine
from curate.engines.local import LocalEngine
from curate.errors import CurateError
from curate.export.describe import describe
from curate.io import dataset, fs
from curate.io.stagedir import StageDir
from curate.shard import plan, uidset
from curate.shard.blocks import KEY_DIGITS, MANIFEST_VERSION
from curate.shard.candidates import Reader
from curate.shard.execute import Sources, execute
from curate.shard.frames import Frames, InProcess

log = logging.getLogger(__name__)

NAME = "shard"
MODES = ("auto", "materialised", "streamed")
CONFIG_FILE = "_config.json"
__all__ = ["MANIFEST_VERSION", "NAME", "ShardConfig", "run_shard"]


@dataclass(frozen=True)
class ShardConfig:
    samples_per_shard: int = 10_000  # DataComp's and img2dataset's default shard size
    max_shard_bytes: int = 1 << 30  # a block whose files exceed 1 GiB is cut into several tars
    seed: int = 0
    samples_seen: int | None = None  # the plan's budget S; None and passes None = one pass
    passes: float | None = None  # S = round(passes · unique samples)
    repetition: str = "auto"  # the mode storing fewer bytes; or "materialised", "streamed"
    uids: str | None = None  # a DataComp u8,u8 .npy instead of our own selection
    source_shards: str | None = None  # img2dataset/DataComp shards instead of download/shards
    write_tars: bool = True  # False: the plan, manifest and sizes only (what a reshard would write)

    def check(self) -> None:
        if self.repetition not in MODES:
            raise CurateError(f"shard: repetition must be one of {MODES}, got {self.repetition!r}")
        if not 0 < self.samples_per_shard < 10 ** KEY_DIGITS:
            raise CurateError(f"shard: samples_per_shard must be in [1, {10 ** KEY_DIGITS - 1}]")
        if self.max_shard_bytes <= 0:
            raise CurateError("shard: max_shard_bytes must be positive")
        plan.PlanRequest(self.samples_seen, self.passes).budget(0)


def default_threads() -> int:
    """In-process, a shard is copied by one thread per core (they spend their time in system calls)."""
    return max(1, min(16, os.cpu_count() or 1))


def frames_for(engine: Engine) -> Frames:
    if engine.name == "spark":
        from curate.engines.spark_shard import SparkFrames

        return SparkFrames(engine)
    if engine.name == "ray":
        from curate.engines.ray_shard import RayFrames

        return RayFrames(engine)
    return InProcess()


def _fresh(sd: StageDir, config: ShardConfig) -> None:
    """Resume only what the same configuration started; a changed one starts over."""
    wanted = asdict(config)
    path = sd.file(CONFIG_FILE)
    if fs.exists(path) and fs.read_json(path) == wanted:
        return
    sfs, p = fs.url_to_fs(sd.path)
    try:
        listed = sfs.ls(p, detail=False)
    except FileNotFoundError:  # an object store has no empty folders: nothing there yet
        listed = []
    for f in listed:
        base = f.rstrip("/").rsplit("/", 1)[-1]
        if base.endswith((".tar", "_stats.json")) or base in ("manifest", "stream", "_work", "_sums"):
            fs.remove_tree(fs.join(sd.path, base))
    fs.write_json(path, wanted)


def run_shard(run_dir: str, config: ShardConfig | None = None, engine: Engine | None = None,
              threads: int | None = None, move_bytes: bool | None = None) -> dict:
    """`threads` copy each shard (default: one per core in-process, where the stage has the machine; one
    on Spark and Ray, which run a task per core already). `move_bytes`: the samples' bytes travel through
    the engine's shuffle, read by the tasks that read the source shards in large ranges (default: when the
    sources are not on local disk; on local disk each output tar gathers its byte ranges directly)."""
    config = config or ShardConfig()
    config.check()
    sd, finished = StageDir.start(run_dir, NAME, requires="select" if config.uids is None else None, config=config)
    if finished is not None:
        return finished
    with sd:  # the stage's lock goes however the work ends
        _fresh(sd, config)
        engine = engine or LocalEngine()
        threads = threads or (default_threads() if engine.name == LocalEngine.name else 1)
        sources = _sources(run_dir, config, move_bytes)
        result = execute(frames_for(engine), sources, config, sd.path, threads)
        result = {"stage": NAME, "engine": engine.name, **result}
        describe(run_dir, sd.path, result, tars_written=config.write_tars)  # card, croissant.json, shardindex.json
        sd.finish(result)
        return result


def _names(folder: str) -> set[str]:
    return set(dataset.list_parts(folder))


def _sources(run_dir: str, config: ShardConfig, move_bytes: bool | None) -> Sources:
    """What the candidate tasks read: one item per source shard (one listing per folder)."""
    array = config.uids
    if array is not None:
        uidset.check_header(array)  # the user's own file first: a bad one says so before anything else
    if config.source_shards is not None:
        source = fs.join(config.source_shards)
        sfs, root = fs.url_to_fs(source)
        if not sfs.isdir(root):
            raise CurateError(f"shard: --source-shards {source} is not a folder")
        names = {f.rstrip("/").rsplit("/", 1)[-1] for f in sfs.ls(root, detail=False)}
        stems = sorted(n[:-len(".parquet")] for n in names if n.endswith(".parquet") and n[:-8] + ".tar" in names)
        if not stems:
            raise CurateError(f"shard: no shards (NNNNN.tar with NNNNN.parquet) in {source}")
        items = [{"name": s, "parquet": fs.join(source, s + ".parquet")} for s in stems]
        array = array or fs.join(run_dir, "select", "uids.npy")
        gate = fs.join(run_dir, "dedup", "decisions")
        gate_parts = dataset.part_paths(gate)
        if not gate_parts:
            log.warning("shard: no %s: the safety hash lists cannot be applied to this selection", gate)
        reader = Reader(source, (), array, external=True, with_data=_move(source, move_bytes))
        return Sources(items, reader, array, uidset.check_header(array), external=True, gate=tuple(gate_parts))
    samples_dir = fs.join(run_dir, "download", "samples")
    dedup_dir, score_dir = fs.join(run_dir, "dedup", "decisions"), fs.join(run_dir, "score", "scores")
    select_dir = fs.join(run_dir, "select", "decisions")
    if not fs.exists(dedup_dir):
        raise CurateError(f"shard: {dedup_dir} is missing; run `curate dedup` first")
    scores, dedup, select = _names(score_dir), _names(dedup_dir), _names(select_dir)
    items = [{"name": n[:-len(dataset.SUFFIX)], "samples": fs.join(samples_dir, n),
              "scores": fs.join(score_dir, n) if n in scores else "",
              "dedup": fs.join(dedup_dir, n) if n in dedup else "",
              "select": fs.join(select_dir, n) if n in select else ""} for n in sorted(_names(samples_dir))]
    legacy = None
    if array is None and not select:  # a selection written before decisions were split by download shard
        array = fs.join(run_dir, "select", "uids.npy")
        old = fs.join(run_dir, "select", "decisions.parquet")
        legacy = old if fs.exists(old) else None
    dynamic = _dynamic(score_dir, sorted(scores))
    source = fs.join(run_dir, "download", "shards")
    reader = Reader(source, dynamic, array, legacy_weights=legacy, with_data=_move(source, move_bytes))
    return Sources(items, reader, array, uidset.check_header(array) if array else 0)


def _move(source: str, move_bytes: bool | None) -> bool:
    return (not fs.is_local(source)) if move_bytes is None else move_bytes


def _dynamic(score_dir: str, parts: list[str]) -> tuple[str, ...]:
    """The score stage's float32 columns beyond the fixed ones (clip_<alias>, probes), from one footer."""
    if not parts:
        return ()
    import pyarrow as pa

    from curate import schemas

    taken = set(schemas.load("manifest", MANIFEST_VERSION).names)
    schema = fs.read_schema(fs.join(score_dir, parts[0]))
    return tuple(f.name for f in schema if f.type == pa.float32() and f.name not in taken)
