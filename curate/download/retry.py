"""--retry-failed: fetch again only the rows of finished shards whose status may change on another try.

Each shard's task finds its own retryable rows (`failed_rows`, in the worker: the driver never sees rows)
with their positions in the shard; the worker merges the new results into the shard under the keys the
rows would have had the first time, so a shard whose failures all succeed on retry has the same bytes as
if they had succeeded at once. Merging is idempotent, so a retry killed half way finishes on a rerun.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from curate.download.config import RETRYABLE_HTTP, RETRYABLE_STATUSES
from curate.download.worker import POSITION


def failed_rows(samples: pa.Table, urls: pa.Table) -> pa.Table:
    """The shard's planned rows (`urls`, in shard order) whose samples status is retryable, with POSITION."""
    status, error = samples.column("status"), pc.fill_null(samples.column("error"), "")
    failed = samples.filter(pc.or_(pc.is_in(status, pa.array(RETRYABLE_STATUSES)),
                                   pc.and_(pc.equal(status, "http_error"),
                                           pc.match_substring_regex(error, RETRYABLE_HTTP))))
    positions = pa.array(range(urls.num_rows), pa.int64())
    rows = urls.append_column(POSITION, positions)
    return rows.filter(pc.is_in(rows.column("uid"), value_set=failed.column("uid")))
