"""Ray Data from storage to storage, shard by shard (../shared/DATAPLANE.md); the score stage runs on it.

The driver holds one small descriptor per input shard. Ray tasks read their shard (`read(item)`: the
rows, with a column saying how many rows the shard has); the rows stream through the stages (stateless
ones in tasks, model stages in actor pools, as `RayEngine.map_stages`); a write task stores each batch's
rows of each shard as a piece and returns one stats row per piece (shard, rows, expected). The driver
only adds up those counts, and as soon as a shard's pieces hold all its rows it starts a commit task
(`commit({"shard", "expected"})`), which assembles and writes the shard's outputs and returns its stats.
Rows never reach the driver; what it keeps grows with the shards in flight, and the commits of finished
shards run while later shards are still being scored, so a killed run keeps every committed shard.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import ray
import ray.data

from curate.engines.base import StageSpec
from curate.engines.ray import _one_line, _Read, _root_cause, _run_task, _user_errors, with_stages
from curate.errors import CurateError
from curate.io.dataset import merge_stats
from curate.progress import Progress

log = logging.getLogger(__name__)

READ_CPUS = 0.25  # reads and writes are I/O: small fractions, so actors and decode tasks keep the cores
WRITE_CPUS = 0.1
COMMIT_CPUS = 0.1


def map_shards(items: Sequence[dict], read: Callable[[dict], pa.Table], specs: Sequence[StageSpec],
               write: Callable[[pa.Table], pa.Table], commit: Callable[[dict], dict], max_retries: int = 2) -> dict:
    """Run the pipeline over `items`; returns the commits' stats, merged."""
    if not items:
        return {}
    ds = ray.data.from_items(list(items), override_num_blocks=len(items))
    ds = ds.map_batches(_Read(read), batch_size=1, batch_format="pyarrow", num_cpus=READ_CPUS)
    ds = with_stages(ds, specs)
    ds = ds.map_batches(write, batch_size=None, batch_format="pyarrow", num_cpus=WRITE_CPUS)
    task = ray.remote(num_cpus=COMMIT_CPUS, max_retries=max_retries, retry_exceptions=True)(_run_task)
    commit_ref = ray.put(commit)
    seen: dict[str, int] = {}  # rows written so far, per shard in flight
    running: list[Any] = []
    merged: dict = {}
    with Progress("ray shards", len(items), "shards") as progress:
        try:
            for batch in _user_errors(ds.iter_batches(batch_format="pyarrow", batch_size=None)):
                cols = [batch.column(c).to_pylist() for c in ("shard", "rows", "expected")]
                for shard, rows, expected in zip(*cols, strict=True):
                    seen[shard] = seen.get(shard, 0) + rows
                    if seen[shard] >= expected:
                        del seen[shard]
                        running.append(task.remote(commit_ref, {"shard": shard, "expected": expected}))
                done, running = ray.wait(running, num_returns=len(running), timeout=0) if running else ([], [])
                merged = merge_stats([merged, *ray.get(done)])
                progress.update(len(done))
            merged = merge_stats([merged, *ray.get(running)])
            progress.update(len(running))
        except Exception as exc:  # a commit task's error: what it raised, in one line
            root = _root_cause(exc)
            if isinstance(root, CurateError):  # ours, or a commit's: its first line
                raise CurateError(str(root).strip().splitlines()[0]) from exc
            raise _one_line(exc, max_retries) from exc
    if seen:
        raise CurateError(f"shards {sorted(seen)[:3]} did not get all their rows through; rerun to resume")
    return merged
