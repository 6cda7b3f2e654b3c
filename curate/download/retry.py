"""--retry-failed: fetch again only the rows of finished shards whose status may change on another try.

Each such shard gets a retry input (its retryable rows, with their positions in the shard); the worker
merges the new results into the shard under the keys the rows would have had the first time, so a shard
whose failures all succeed on retry has the same bytes as if they had succeeded at once.
"""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.compute as pc

from curate.download.config import RETRYABLE_HTTP, RETRYABLE_STATUSES
from curate.download.worker import POSITION, Layout
from curate.io import fs

log = logging.getLogger(__name__)


def write_arrow(path: str, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    fs.write_bytes(path, sink.getvalue().to_pybytes())


def plan(layout: Layout, urls: pa.Table, n_shards: int, shard_size: int) -> list[int]:
    """Write a retry input for every finished shard with retryable rows; return those shard ids."""
    shards, rows = [], 0
    for sid in range(n_shards):
        samples = fs.read_table(layout.samples(sid))
        status, error = samples.column("status"), pc.fill_null(samples.column("error"), "")
        failed = samples.filter(pc.or_(pc.is_in(status, pa.array(RETRYABLE_STATUSES)),
                                       pc.and_(pc.equal(status, "http_error"),
                                               pc.match_substring_regex(error, RETRYABLE_HTTP))))
        if failed.num_rows == 0:
            continue
        order = urls.slice(sid * shard_size, shard_size).column("uid").to_pylist()
        position = {uid: i for i, uid in enumerate(order)}
        failed = failed.append_column(POSITION, pa.array([position[u] for u in failed.column("uid").to_pylist()],
                                                         pa.int64()))
        write_arrow(layout.input_arrow(sid), failed.sort_by([(POSITION, "ascending")]))
        shards.append(sid)
        rows += failed.num_rows
    log.info("download: retrying %d failed rows in %d shards (statuses %s, and http_error for 5xx/429)", rows,
             len(shards), ", ".join(RETRYABLE_STATUSES))
    return shards
