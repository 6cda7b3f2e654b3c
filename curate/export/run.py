"""`curate export RUN --format hf-parquet|mds`: the shard stage's tars converted for other trainers, one
engine task per tar. Layout: `RUN/export/FORMAT/` holds one output per tar (`NNNNN.parquet` for
hf-parquet, with a dataset card `README.md` whose data files are those; the folder `NNNNN/` for mds, plus
a merged `index.json`), then `_stats.json` and `_SUCCESS`.

Resumable: each tar's output is committed atomically; a rerun lists the folder once and converts only the
tars whose output is missing; a finished export is a no-op. The driver holds the list of tars, never rows.
The tars are read as they are, so a streamed repetition plan's repeats are not in an export."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from curate.engines.base import Engine
from curate.engines.local import LocalEngine
from curate.errors import CurateError
from curate.io import fs
from curate.io.stagedir import STATS, SUCCESS

log = logging.getLogger(__name__)

NAME = "export"
FORMATS = ("hf-parquet", "mds")


@dataclass(frozen=True)
class ExportConfig:
    format: str = "hf-parquet"
    mds_size_limit: int = 1 << 26  # bytes per MDS shard file: streaming's default (64 MiB)

    def check(self) -> None:
        if self.format not in FORMATS:
            raise CurateError(f"export: format must be one of {FORMATS}, got {self.format!r}")
        if self.mds_size_limit <= 0:
            raise CurateError("export: mds_size_limit must be positive")


@dataclass(frozen=True)
class ShardWriter:
    """One task: convert tar `item["tar"]` of `shard_dir` into `out_dir` (picklable for Spark's workers)."""

    config: ExportConfig
    shard_dir: str
    out_dir: str

    def __call__(self, item: dict) -> dict:
        tar = fs.join(self.shard_dir, item["tar"])
        stem = item["tar"][: -len(".tar")]
        if self.config.format == "mds":
            from curate.export import mds

            stats = mds.write_shard(tar, self.out_dir, stem, self.config.mds_size_limit)
        else:
            from curate.export import hfparquet

            stats = hfparquet.write_shard(tar, self.out_dir, stem)
        log.info("export: %s -> %s %s (%d samples)", item["tar"], self.config.format, stem, stats["samples"])
        return {**stats, "written": 1, "bytes_read": int(item["bytes"])}


def export_dir(run_dir: str, fmt: str) -> str:
    return fs.join(run_dir, NAME, fmt)


def _listing(out_dir: str) -> list[str]:
    """Every file under `out_dir` (one recursive listing); leftovers of interrupted writes removed."""
    ofs, root = fs.url_to_fs(out_dir)
    try:
        files = ofs.find(root, withdirs=True)
    except FileNotFoundError:
        return []
    for f in files:
        rel = f[len(root):].strip("/")
        if "/" not in rel and rel.startswith(fs.TMP_PREFIX):
            fs.remove_tree(fs.join(out_dir, rel))
    return [f for f in files if not f[len(root):].strip("/").startswith(fs.TMP_PREFIX)]


def _done(config: ExportConfig, out_dir: str, files: list[str]) -> set[str]:
    _, root = fs.url_to_fs(out_dir)
    if config.format == "mds":
        from curate.export import mds

        return mds.done(files, root)
    from curate.export import hfparquet

    return hfparquet.done({f[len(root):].strip("/") for f in files})


def run_export(run_dir: str, config: ExportConfig | None = None, engine: Engine | None = None) -> dict:
    """Export the finished shard stage of `run_dir`; the stats (also `_stats.json` beside the outputs)."""
    config = config or ExportConfig()
    config.check()
    out_dir = export_dir(run_dir, config.format)
    if fs.exists(fs.join(out_dir, SUCCESS)):
        log.info("export: %s already complete", out_dir)
        return fs.read_json(fs.join(out_dir, STATS))
    shard_dir = fs.join(run_dir, "shard")
    check_ready(run_dir)
    sizes: dict[str, int] = fs.read_json(fs.join(shard_dir, "sizes.json"))
    tar_bytes = _tar_bytes(shard_dir)
    fs.makedirs(out_dir)
    finished = _done(config, out_dir, _listing(out_dir))
    todo = [{"tar": t, "bytes": tar_bytes.get(t, 0)} for t in sorted(sizes) if t[: -len(".tar")] not in finished]
    log.info("export: %d of %d tars to convert to %s", len(todo), len(sizes), config.format)
    engine = engine or LocalEngine()
    stats = engine.for_each(ShardWriter(config, shard_dir, out_dir), todo) if todo else {}
    result = {"stage": NAME, "format": config.format, "engine": engine.name, "tars": len(sizes),
              "samples": int(sum(sizes.values())), "tars_written": int(stats.get("written", 0)),
              "tars_skipped": len(sizes) - len(todo), "samples_written": int(stats.get("samples", 0)),
              "bytes_read": int(stats.get("bytes_read", 0))}
    if config.format == "mds":
        from curate.export import mds

        result.update(mds.merge(out_dir, [t[: -len(".tar")] for t in sorted(sizes)]))
    else:  # the dataset card, its data files the parquet files: the folder is ready for a Hub upload
        from curate.export.card import write_card
        from curate.export.describe import gather

        write_card(out_dir, gather(run_dir, shard_dir, fs.read_json(fs.join(shard_dir, STATS))), "*.parquet")
    fs.write_json(fs.join(out_dir, STATS), result)
    fs.write_bytes(fs.join(out_dir, SUCCESS), b"")
    log.info("export: done (%s)", out_dir)
    return result


def check_ready(run_dir: str) -> None:
    """The one-line error when the run has no finished shard stage with tars (before any engine starts)."""
    shard_dir = fs.join(run_dir, "shard")
    if not fs.exists(fs.join(shard_dir, SUCCESS)):
        raise CurateError(f"export: {shard_dir} is not complete; run `curate shard` first")
    if not fs.read_json(fs.join(shard_dir, "plan.json")).get("tars_written", True):
        raise CurateError(f"export: {shard_dir} holds no tars (written with write_tars off)")


def _tar_bytes(shard_dir: str) -> dict[str, int]:
    """Size of each tar from one listing of the shard folder (for the stats' bytes read)."""
    sfs, root = fs.url_to_fs(shard_dir)
    return {e["name"].rstrip("/").rsplit("/", 1)[-1]: int(e.get("size") or 0)
            for e in sfs.ls(root, detail=True) if e["name"].endswith(".tar")}
