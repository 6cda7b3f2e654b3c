"""Download planning: the URL list cut into input shards of `shard_size` consecutive rows, each shard's rows
(with their uids) written as one part, `download/urls/NNNNN.parquet`, by the task that computed it.

The engine does the table work (`curate.engines.spark_urls`, `curate.engines.ray_urls`): read the input
one file per task, count rows per file (the driver turns O(files) counts into offsets), derive uids (a
repeated (url, caption) pair is numbered in input order by a window over the pair), check they are unique,
and write the parts. The
local engine's in-process plan (`read_input`) writes the same bytes (tests/unit/download/test_plan.py).
`urls/_plan.json` records the input's files and the shard size; `urls/_SUCCESS` marks the plan complete,
so a resumed download plans nothing and a download of another input into the same run is refused.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

from curate.download.config import DownloadConfig
from curate.download.inputs import URLS_VERSION, InputFile, check_input, list_input_files, read_input
from curate.download.presets import resolve
from curate.errors import CurateError
from curate.io import dataset, fs

log = logging.getLogger(__name__)

PLAN = "_plan.json"
DONE = "_SUCCESS"


@dataclass(frozen=True)
class UrlPlan:
    """What the planning wrote: row and shard counts, and what it was planned from."""

    rows: int
    shards: int
    shard_size: int
    fingerprint: dict

    def to_dict(self) -> dict:
        return asdict(self)


def fingerprint(config: DownloadConfig, files: list[InputFile]) -> dict:
    """The input as the plan saw it: its files and sizes, format, columns and shard size."""
    cols = resolve(config)
    return {"input": config.input, "files": [[f.path.rsplit("/", 1)[-1], f.size] for f in files],
            "columns": [cols.url, cols.caption, cols.uid, cols.source, [list(c) for c in cols.carry]],
            "format": config.input_format, "shard_size": config.shard_size}


def shard_tasks(n_shards: int, parallelism: int) -> int:
    """Write tasks for `n_shards` parts: a few per core, and no more than about 100 parts to a task."""
    return max(1, min(n_shards, max(4 * parallelism, math.ceil(n_shards / 100))))


def plan_urls(engine, config: DownloadConfig, urls_dir: str) -> UrlPlan:
    """Plan the download of `config.input` into `urls_dir` (once: a finished plan is read back)."""
    files = list_input_files(config)
    given = check_input(config, files)
    fp = fingerprint(config, files)
    if fs.exists(fs.join(urls_dir, DONE)):
        done = fs.read_json(fs.join(urls_dir, PLAN))
        if done["fingerprint"] != fp:
            raise CurateError(f"download: {urls_dir.rsplit('/', 2)[0]} holds a download of another input (or of "
                              "this one with other columns or shard size); use another run directory")
        return UrlPlan(**done)
    log.info("download: planning %d input file(s) on %s", len(files), engine.name)
    if engine.name == "spark":
        from curate.engines.spark_urls import plan_on_spark

        rows = plan_on_spark(engine, config, files, given, urls_dir)
    elif engine.name == "ray":
        from curate.engines.ray_urls import plan_on_ray

        rows = plan_on_ray(config, files, given, urls_dir)
    else:
        rows = _plan_in_process(config, urls_dir)
    plan = UrlPlan(rows=rows, shards=math.ceil(rows / config.shard_size), shard_size=config.shard_size,
                   fingerprint=fp)
    fs.write_json(fs.join(urls_dir, PLAN), plan.to_dict())
    fs.write_bytes(fs.join(urls_dir, DONE), b"")
    return plan


def _plan_in_process(config: DownloadConfig, urls_dir: str) -> int:
    urls = read_input(config)
    done = dataset.finished_parts(urls_dir)
    for sid in range(math.ceil(urls.num_rows / config.shard_size)):
        name = dataset.shard_part_name(sid)
        if name not in done:
            dataset.write_part(urls.slice(sid * config.shard_size, config.shard_size), fs.join(urls_dir, name),
                               "urls", URLS_VERSION)
    return urls.num_rows
