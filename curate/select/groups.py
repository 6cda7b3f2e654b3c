"""Run a function over whole groups of rows (all rows sharing a key) on the engine that holds the frame.

In-process the frame is an Arrow table: sorted by the key, cut into runs, and put back in its order.
On Spark it is `groupBy(key).applyInArrow(fn)`: each group reaches one Python worker whole, the rows
move by Spark's shuffle, and the driver sees none of them. An engine that offers `map_groups` itself
is asked first. (This belongs beside map_batches in curate/engines; it lives here until it moves.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ORDER = "_group_order"


def map_groups(engine: Any, frame: Any, key: str, fn: Callable[[pa.Table], pa.Table], schema: pa.Schema) -> Any:
    """`fn(rows of one group) -> the same rows with more columns`, over every group; the result has
    `schema`'s columns. Rows whose key is null form one group."""
    own = getattr(engine, "map_groups", None)
    if own is not None:
        return own(frame, key, fn, schema)
    if isinstance(frame, pa.Table):
        return _local(frame, key, fn, schema)
    ddl = engine.session.createDataFrame(schema.empty_table()).schema
    names = schema.names

    def run(table: pa.Table) -> pa.Table:
        return fn(table).select(names).cast(schema)

    return frame.groupBy(key).applyInArrow(run, ddl)


def _local(frame: pa.Table, key: str, fn: Callable[[pa.Table], pa.Table], schema: pa.Schema) -> pa.Table:
    if frame.num_rows == 0:
        return schema.empty_table()
    table = frame.append_column(ORDER, pa.array(np.arange(frame.num_rows)))
    table = table.take(pc.sort_indices(table, [(key, "ascending"), (ORDER, "ascending")]))
    keys = table.column(key).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    ends = np.append(starts[1:], len(keys))
    parts = [fn(table.slice(int(s), int(e - s))) for s, e in zip(starts, ends, strict=True)]
    out = pa.concat_tables(parts)
    out = out.take(pc.sort_indices(out, [(ORDER, "ascending")]))
    return out.select(schema.names).cast(schema)
