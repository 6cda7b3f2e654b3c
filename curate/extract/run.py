"""The extract stage on an engine: one listing, one task per input file (grouped when there are many), parts
written by the workers, per-file stats merged here, `_stats.json`, then `_SUCCESS`.

The driver holds one entry per input file, never a row (../shared/DATAPLANE.md). A rerun lists RUN/extract
once and recomputes only the files without a pairs part; a finished stage is a no-op. `_inputs.json`
records the file list and the settings that shape the rows: a rerun with other inputs or settings is refused
rather than mixed into the same folder.
"""

from __future__ import annotations

import logging
import math

from curate.engines.base import Engine
from curate.errors import CurateError
from curate.extract import inputs
from curate.extract.config import ExtractConfig
from curate.extract.task import ExtractTask, Item
from curate.io import dataset, fs
from curate.io.stagedir import StageDir

log = logging.getLogger(__name__)

NAME = "extract"
INPUTS = "_inputs.json"
MAX_TASKS = 20_000  # more input files than this are grouped, files_per_task to a task


def files_per_task(config: ExtractConfig, n_files: int) -> int:
    return config.files_per_task or max(1, math.ceil(n_files / MAX_TASKS))


def run_extract(engine: Engine, run_dir: str, config: ExtractConfig,
                files: list[inputs.InputFile] | None = None) -> dict:
    """Extract `config.input` into RUN/extract; a finished stage is a no-op, an unfinished one resumes.
    `files`: the input's listing when the caller already made it (`inputs.expand(config)`)."""
    sd, finished = StageDir.start(run_dir, NAME, config=config)
    if finished is not None:
        return finished
    with sd:  # the stage's lock goes however the work ends
        return _extract(engine, sd, config, inputs.expand(config) if files is None else files)


def _extract(engine: Engine, sd: StageDir, config: ExtractConfig, files: list[inputs.InputFile]) -> dict:
    _record_inputs(sd, files, config)
    done = dataset.finished_parts(sd.path)
    items = [Item(f, dataset.part_name(f.index) in done) for f in files]
    resumed = sum(item.done for item in items)
    per_task = files_per_task(config, len(files))
    log.info("extract: %d input files (%d already done), %d per task", len(files), resumed, per_task)
    stats = engine.for_each(ExtractTask(config, sd.path), items, per_task)
    if stats.get("files") != len(files):
        raise CurateError(f"extract: {len(files)} input files but stats for {stats.get('files')}; rerun to resume")
    if stats.get("files_damaged"):
        log.warning("extract: %d damaged input file(s) kept their rows up to the damage; each part's footer "
                    "names its damage (rerun with --strict to fail instead)", stats["files_damaged"])
    result = {"stage": NAME, "source_format": config.source_format, "files_resumed": resumed,
              "files_per_task": per_task, **stats}
    sd.finish(result)
    return result


def _record_inputs(sd: StageDir, files: list[inputs.InputFile], config: ExtractConfig) -> None:
    record = {"files": [f.path for f in files], "settings": config.shaping()}
    path = sd.file(INPUTS)
    if not fs.exists(path):
        fs.write_json(path, record)
        return
    before = fs.read_json(path)
    if before != record:
        what = "settings" if before.get("files") == record["files"] else "input files"
        raise CurateError(f"extract: {sd.path} holds an extract of other {what}; use another run directory "
                          "(or remove it to start again)")
