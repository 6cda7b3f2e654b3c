"""The table surface select and audit use (`curate.engines.base.Engine`), on Ray Data, so a Ray job's table work
runs in Ray tasks: frames are Ray Datasets read by the workers from storage, decided batch by batch, asked
pool-wide questions by aggregations, and written back by the workers. The driver sees descriptors, counts
and bounded bands (the k-th value's neighbourhood), never the rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray
import ray.data

from curate.engines.base import StageSpec
from curate.errors import named
from curate.io import dataset, fs
from curate.io.dataset import PART_COL
from curate.stage import build

log = logging.getLogger(__name__)
BAND_ROWS = 50_000  # the k-th largest: rows around the cut brought here to rank exactly (bounded)


def _read(read: Callable[[dict], pa.Table], schema: pa.Schema, batch: pa.Table) -> pa.Table:
    tables = [read(json.loads(text)).select(schema.names).cast(schema) for text in batch.column("item").to_pylist()]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def read_items(items: Sequence[dict], read: Callable[[dict], pa.Table], schema: pa.Schema) -> ray.data.Dataset:
    texts = [{"item": json.dumps(i, sort_keys=True)} for i in items]
    if not texts:
        return ray.data.from_arrow(schema.empty_table())
    ds = ray.data.from_items(texts, override_num_blocks=len(texts))
    return ds.map_batches(partial(_read, named(read), schema), batch_size=1, batch_format="pyarrow", num_cpus=0.5)


_STAGES: dict[int, object] = {}


def _apply(spec: StageSpec, schema: pa.Schema, batch: pa.Table) -> pa.Table:
    stage = _STAGES.get(id(spec))
    if stage is None:  # one per worker process and spec: set up once, then every batch
        stage = _STAGES[id(spec)] = build(spec.stage_cls, spec.config)
    return stage(batch).select(schema.names).cast(schema)


def map_batches(frame: ray.data.Dataset, spec: StageSpec, schema: pa.Schema) -> ray.data.Dataset:
    return frame.map_batches(partial(_apply, spec, schema), batch_size=spec.batch_size, batch_format="pyarrow",
                             num_cpus=0.5)


def _kept(frame: ray.data.Dataset, where_null: str | None) -> ray.data.Dataset:
    if where_null is None:
        return frame
    return frame.map_batches(lambda t: t.filter(pc.is_null(t.column(where_null))), batch_format="pyarrow")


def count_where(frame: ray.data.Dataset, where_null: str | None = None) -> int:
    return _kept(frame, where_null).count()


def _counts(column: str, batch: pa.Table) -> pa.Table:
    col = batch.column(column).combine_chunks() if batch.num_rows else pa.array([], batch.schema.field(column).type)
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        col = col.flatten()
    vc = pc.value_counts(col)
    return pa.table({"value": vc.field("values"), "n": vc.field("counts")})


def value_counts(frame: ray.data.Dataset, column: str, where_null: str | None = None) -> dict:
    partial_counts = _kept(frame, where_null).map_batches(partial(_counts, column), batch_format="pyarrow")
    out: dict = {}
    for row in partial_counts.groupby("value").sum("n").take_all():
        out[row["value"]] = int(row["sum(n)"])
    return out


def _score(column: str, batch: pa.Table) -> pa.Table:
    s = pc.cast(batch.column(column), pa.float64())
    s = pc.if_else(pc.or_(pc.is_null(s), pc.is_nan(s)).fill_null(True), pa.scalar(-np.inf), s)
    return pa.table({"_s": s, "uid": batch.column("uid")})


def kth_largest(frame: ray.data.Dataset, column: str, k: int, where_null: str | None = None) -> tuple[float, str]:
    """The k-th row by (value desc, uid asc): a seeded sample brackets it, one pass counts the rows above the
    bracket, and the rows inside it (about 4 * BAND_ROWS) come here to be ranked exactly."""
    scored = _kept(frame, where_null).map_batches(partial(_score, column), batch_format="pyarrow").materialize()
    n = scored.count()
    if not 1 <= k <= n:
        raise ValueError(f"kth_largest: k={k} outside 1..{n}")
    frac = min(1.0, 4 * BAND_ROWS / n)
    sample = np.sort(np.array([r["_s"] for r in scored.random_sample(frac, seed=0).take_all()], dtype=np.float64))
    p = 1 - k / n
    margin = 2 * max(BAND_ROWS / n, 1 / max(len(sample), 1))
    lo = -np.inf if p - margin <= 0 or not len(sample) else sample[int((p - margin) * (len(sample) - 1))]
    hi = np.inf if p + margin >= 1 or not len(sample) else sample[int((p + margin) * (len(sample) - 1))]
    above = scored.map_batches(lambda t: t.filter(pc.greater(t.column("_s"), hi)), batch_format="pyarrow").count()
    band_ds = scored.map_batches(lambda t: t.filter(pc.and_(pc.greater_equal(t.column("_s"), lo),
                                                            pc.less_equal(t.column("_s"), hi))),
                                 batch_format="pyarrow")
    if above >= k or above + band_ds.count() < k:  # the sample missed: widen to everything
        log.warning("kth_largest: the sampled band missed rank %d of %d; ranking a wider band", k, n)
        above, band_ds = 0, scored
    rows = band_ds.take_all()
    values = np.array([r["_s"] for r in rows], dtype=np.float64)
    uids = np.array([r["uid"] for r in rows], dtype=str)
    i = np.lexsort((uids, -values))[k - above - 1]
    return float(values[i]), str(uids[i])


def smallest_rows(frame: ray.data.Dataset, key: str, n: int, columns: Sequence[str],
                  where_null: str | None = None) -> pa.Table:
    rows = _kept(frame, where_null).sort([key, "uid"]).limit(n).take_all()
    return pa.Table.from_pylist(rows).select(list(columns)) if rows else pa.table({c: [] for c in columns})


def _write_group(folder: str, schema: str | None, version: int, sort_by: Sequence[str], group: pa.Table) -> pa.Table:
    name = group.column(PART_COL)[0].as_py()
    part = group.drop_columns([PART_COL]).sort_by([(c, "ascending") for c in sort_by])
    size = dataset.write_part(part, fs.join(folder, name + dataset.SUFFIX), schema, version)
    return pa.table({"parts": [1], "rows": [part.num_rows], "bytes": [size]})


def _range_part(key: str, bounds: list[str], batch: pa.Table) -> pa.Table:
    """`_part` = the key's range: part i holds the keys in [bounds[i-1], bounds[i])."""
    keys = batch.column(key).to_numpy(zero_copy_only=False).astype(str)
    idx = np.searchsorted(np.array(bounds, dtype=str), keys, side="right") if bounds else np.zeros(len(keys), int)
    return batch.append_column(PART_COL, pa.array([f"part-{i:05d}" for i in idx], pa.string()))


def range_bounds(frame: ray.data.Dataset, key: str, partitions: int) -> list[str]:
    """partitions - 1 cut points of `key` from a seeded sample (at most ~100 keys per part reach the driver)."""
    n = frame.count()
    if partitions <= 1 or n == 0:
        return []
    frac = min(1.0, 100 * partitions / n)
    sample = np.sort(np.array([r[key] for r in frame.select_columns([key]).random_sample(frac, seed=0).take_all()],
                              dtype=str))
    if not len(sample):
        return []
    cuts = [sample[min(len(sample) - 1, (i * len(sample)) // partitions)] for i in range(1, partitions)]
    return sorted(set(cuts))


def write_dataset(frame: ray.data.Dataset, folder: str, schema: str | None = None, version: int = 1,
                  sort_by: Sequence[str] = (), partitions: int | None = None, key: str | None = None,
                  by_range: bool = False, **_: object) -> dict:
    """Parts named by `_part` (one Ray group each, written by the worker holding it: the bytes Spark's
    writer gives), or `partitions` ranges of `key` (`by_range`: `part-KKKKK`, every key of part i before
    part i + 1's; cut points from a seeded sample, so a part holds about n / partitions rows)."""
    if partitions is not None:
        if not by_range or key is None:
            raise ValueError("RayEngine.write_dataset: only ranges of a key (by_range) are stated partitions")
        frame = frame.materialize()
        bounds = range_bounds(frame, key, partitions)
        frame = frame.map_batches(partial(_range_part, key, bounds), batch_format="pyarrow")
    written = frame.groupby(PART_COL).map_groups(partial(_write_group, folder, schema, version, tuple(sort_by)),
                                                 batch_format="pyarrow")
    stats = {"parts": 0, "rows": 0, "bytes": 0}
    for row in written.take_all():  # one small row per part: O(parts)
        for k in stats:
            stats[k] += int(row[k])
    return stats


def _group(fn: Callable[[pa.Table], pa.Table], schema: pa.Schema, group: pa.Table) -> pa.Table:
    return fn(group).select(schema.names).cast(schema)


def map_groups(frame: ray.data.Dataset, key: str, fn: Callable[[pa.Table], pa.Table],
               schema: pa.Schema) -> ray.data.Dataset:
    return frame.groupby(key).map_groups(partial(_group, fn, schema), batch_format="pyarrow")
