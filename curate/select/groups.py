"""Run a function over whole groups of rows (all rows sharing a key) on the engine that holds the frame:
`engine.map_groups` (in-process: sorted runs of the key; Spark: `groupBy().applyInArrow`, each group whole in
one Python worker, moved by the shuffle; Ray: `groupby().map_groups`). The driver sees none of the rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa


def map_groups(engine: Any, frame: Any, key: str, fn: Callable[[pa.Table], pa.Table], schema: pa.Schema) -> Any:
    """`fn(rows of one group) -> the same rows with more columns`, over every group; the result has
    `schema`'s columns. Rows whose key is null form one group."""
    return engine.map_groups(frame, key, fn, schema)
