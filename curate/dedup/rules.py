"""Dedup decisions as one Spark program over the run's datasets: every successfully downloaded sample is kept
or rejected with one reason, and the decisions are written by the executors, one part per download shard.

Checks, in order; a sample gets the reason of the first check it fails, and each later check only sees the
samples still kept:
  1. safety_hash_list   md5, sha1 or sha256 on a supplied hash list, or pHash within `hash_list_distance`
                        bits of a listed pHash, or PDQ within `hash_list_pdq_distance` bits of a listed PDQ hash.
                        Wins over everything. The stage then removes these samples' files from the download
                        tars (`curate.dedup.purge`).
  2. eval_contamination image sha256 equal to, or perceptual hash (`near_hash`: pHash or PDQ) within
                        `eval_distance` bits of, an image of the evaluation set.
  3. placeholder_image  the image's sha256 (or its pHash) is shared by at least `placeholder_min_urls`
                        distinct canonical URLs (counted over every sample): a host's "image not available"
                        picture. Every member is rejected, none kept.
  4. duplicate_url      same canonical URL as a kept sample.
  5. duplicate_pair     same image sha256 and same caption as a kept sample.
  6. duplicate_image    same image sha256 as a kept sample.
  7. near_duplicate     pHash within `near_distance` bits (or with `near_hash` "pdq", PDQ within `pdq_distance`
                        bits) of a kept sample's, transitively.
Survivor rule (4-7): within a group, the sample with the smallest uid among those still kept survives;
`duplicate_of` names it, and a sample whose survivor later became a near-duplicate points to that group's
survivor. Rules 1-3 leave `duplicate_of` empty.

How each runs (../shared/DATAPLANE.md): a shard's samples and hashes parts are joined in the task that reads
them; hash lists and the eval set are a broadcast index of the reference side only (`near_refs`);
placeholders are group-bys; rules 4-6 are windows (rows ordered so that rows an earlier check rejected come
last); near duplicates collapse identical hashes, pair the distinct ones by multi-index hashing
(`near_pairs`, exact recall, linear candidates) and group them by connected components checkpointed under
the stage's `_work/` folder. Nothing on the driver grows with the rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.dedup.phash import hex_to_int64
from curate.dedup.url import canonical_urls
from curate.download.status import SUCCESS
from curate.io import dataset, fs
from curate.io.dataset import PART_COL

REASONS = ("safety_hash_list", "eval_contamination", "placeholder_image", "duplicate_url", "duplicate_pair",
           "duplicate_image", "near_duplicate")
BASE = pa.schema([("uid", pa.string()), ("url_canonical", pa.string()), ("sha256", pa.string()),
                  ("caption", pa.string()), ("md5", pa.string()), ("sha1", pa.string()), ("h", pa.int64()),
                  ("pdq", pa.string()), (PART_COL, pa.string())])
DECIDED = pa.schema([("uid", pa.string()), ("url_canonical", pa.string()), ("sha256", pa.string()),
                     ("h", pa.int64()), ("pdq", pa.string()), ("reason", pa.string()), ("duplicate_of", pa.string()),
                     (PART_COL, pa.string())])
HASHES = pa.schema([("h", pa.int64())])
_SAMPLE_COLS = ["uid", "url", "caption", "status", "sha256", "shard"]


class ShardRows:
    """Runs in an executor: one download shard's successful rows, joined with its hashes, with the
    canonical URL, the pHash as a signed 64-bit integer (`h`) and, with `pdq`, the PDQ hash's hex (else null:
    rows that need no PDQ do not carry 64 characters through the shuffles)."""

    def __init__(self, pdq: bool = False) -> None:
        self.pdq = pdq

    def __call__(self, item: dict) -> pa.Table:
        samples = dataset.read_part(item["samples"], _SAMPLE_COLS, only_present=True)
        for name in _SAMPLE_COLS:
            if name not in samples.column_names:
                samples = samples.append_column(name, pa.nulls(samples.num_rows, pa.string()))
        ok = samples.filter(pc.equal(samples.column("status"), SUCCESS)).select(_SAMPLE_COLS)
        hash_cols = ["uid", "md5", "sha1", "phash", "pdq"]
        if fs.exists(item["hashes"]):  # a hashes.v1 part has no pdq column: its rows' PDQ is null
            ok = ok.join(dataset.read_part(item["hashes"], hash_cols, only_present=True), "uid", join_type="left outer")
        for name in hash_cols[1:]:
            if name not in ok.column_names or (name == "pdq" and not self.pdq):
                ok = ok.drop_columns([name]) if name in ok.column_names else ok
                ok = ok.append_column(name, pa.nulls(ok.num_rows, pa.string()))
        phash = ok.column("phash").combine_chunks()
        valid = phash.is_valid().to_numpy(zero_copy_only=False)
        ints = np.zeros(len(phash), dtype=np.int64)
        ints[valid] = hex_to_int64(phash.drop_null().to_pylist())
        h = pa.array(ints, pa.int64(), mask=~valid)
        canon = canonical_urls(ok.column("url"))
        part = pc.replace_substring_regex(ok.column("shard"), r"\.tar$", "")
        return pa.table({"uid": ok.column("uid"), "url_canonical": canon, "sha256": ok.column("sha256"),
                         "caption": ok.column("caption"), "md5": ok.column("md5"), "sha1": ok.column("sha1"),
                         "h": h, "pdq": ok.column("pdq"), PART_COL: part}, schema=BASE)
