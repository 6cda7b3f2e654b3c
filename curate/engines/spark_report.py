"""The report's table work on Spark (see `curate.report.data`): per-part results folded on the executors,
and the duplicate groups' sizes as two group-bys. The driver receives one small dict from each."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa
from pyspark.sql import functions as F


def fold_each(engine, fn: Callable, items: Sequence, combine: Callable[[dict, dict], dict],
              per_task: int = 1) -> dict:
    """`fn(item)` for every item, `per_task` items to a task; each task merges its results with `combine`,
    and the tasks' results are merged pairwise on the executors (`treeReduce`), so one dict reaches the
    driver, whatever the number of tasks. `combine` may do what `merge_stats` cannot (a min, a max, the
    first few uids). Failed tasks are retried by Spark; one that still fails is a one-line CurateError."""
    items = list(items)
    if not items:
        return {}
    slices = max(1, -(-len(items) // max(1, per_task)))

    def task(part: Iterator) -> Iterator[dict]:
        yield functools.reduce(combine, (fn(item) for item in part), {})

    return engine._job("report tasks", slices,
                       lambda sc: sc.parallelize(items, slices).mapPartitions(task).treeReduce(combine))


def group_sizes(engine, paths: list[str], column: str) -> dict[int, int]:
    """Groups per size over the rows of `paths` whose `column` is set, a group being the rows that share a
    value, plus one (the row they name: a duplicate's survivor): {size: groups}."""
    frame = engine.read_dataset(paths, pa.schema([(column, pa.string())]))
    sizes = (frame.where(F.col(column).isNotNull()).groupBy(column).count()
             .groupBy((F.col("count") + 1).alias("size")).count())
    return {int(row["size"]): int(row["count"]) for row in sizes.collect()}
