"""The dedup stage. Rule: within a group of duplicates the survivor is the row with the smallest uid.

Order of checks: first canonical URL (a URL fetched twice), then image sha256 among the URL
survivors. Every other member of a group is rejected with `duplicate_url` or `duplicate_image` and
the uid of its group's survivor in `duplicate_of`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from curate import schemas
from curate.dedup.url import CanonicalUrl
from curate.download.status import SUCCESS
from curate.engines.base import Engine, StageSpec
from curate.io import fs
from curate.io.stagedir import StageDir
from curate.stage import StageStats

log = logging.getLogger(__name__)

NAME = "dedup"


@dataclass(frozen=True)
class DedupConfig:
    by_url: bool = True
    by_image: bool = True


def decide(engine: Engine, samples: pa.Table, config: DedupConfig) -> pa.Table:
    """The dedup decisions table for the successfully downloaded rows of `samples`."""
    ok = samples.filter(pc.equal(samples.column("status"), SUCCESS)).select(["uid", "url", "sha256"])
    frame = engine.from_arrow(ok)
    out_schema = pa.schema([("uid", pa.string()), ("url", pa.string()), ("sha256", pa.string()),
                            ("url_canonical", pa.string())])
    frame = engine.map_batches(frame, StageSpec(CanonicalUrl, None, batch_size=4096), out_schema)
    frame = engine.rank_in_groups(frame, "url_canonical", ["uid"], "url_rank", "url_first", "uid")
    # Among URL survivors (url_rank 0) the smallest uid wins the image group; URL losers sort after
    # every survivor of their image. Without URL dedup every row competes for its image on uid alone.
    order = ["url_rank", "uid"] if config.by_url else ["uid"]
    frame = engine.rank_in_groups(frame, "sha256", order, "img_rank", "img_first", "uid")
    table = engine.to_arrow(frame).sort_by([("uid", "ascending")])
    rows = []
    for r in table.to_pylist():
        if config.by_url and r["url_rank"] > 0:
            reason, of = "duplicate_url", r["url_first"]
        elif config.by_image and r["img_rank"] > 0:
            reason, of = "duplicate_image", r["img_first"]
        else:
            reason, of = None, None
        rows.append({"uid": r["uid"], "url_canonical": r["url_canonical"], "sha256": r["sha256"],
                     "reason": reason, "duplicate_of": of})
    return pa.Table.from_pylist(rows, schema=schemas.load("dedup"))


def run_dedup(engine: Engine, run_dir: str, config: DedupConfig | None = None) -> dict:
    config = config or DedupConfig()
    sd, finished = StageDir.start(run_dir, NAME, requires="download")
    if finished is not None:
        return finished
    samples = fs.read_table(fs.join(run_dir, "download", "samples"), schema="samples")
    decisions = decide(engine, samples, config)
    fs.write_table(decisions, sd.file("decisions.parquet"), schema="dedup")
    stats = StageStats.from_table(decisions)
    groups = pc.count_distinct(pc.drop_null(decisions.column("duplicate_of"))).as_py()
    result = {"stage": NAME, "engine": engine.name, "duplicate_groups": groups, **stats.to_dict()}
    sd.finish(result)
    return result
