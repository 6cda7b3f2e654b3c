"""Hash lists at write time: every fetched body is hashed (md5, sha1, sha256, and the pHash and PDQ hash its
lists need) before anything is written, and a body on a list never reaches a tar or a table: its samples row
keeps only its sha256 and the status `safety_hash_list` (curate.download.shardloop).

The lists are the ones `curate dedup --hash-list` reads (curate.dedup.refs: text, CSV or parquet, local or on
an object store). Exact hashes match by equality; a pHash within `phash_distance` bits and a PDQ hash within
`pdq_distance` bits of a listed one match too (curate.dedup.refindex, exact recall). The perceptual hashes
are computed only when a list has entries of that kind (each costs a decode and a few milliseconds).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from curate.dedup import phash
from curate.dedup.refindex import RefIndex, hex_words
from curate.dedup.refs import Refs, load_hash_lists

log = logging.getLogger(__name__)

PHASH_DISTANCE = 3  # as `curate dedup --hash-list-distance`
# facebook/ThreatExchange pdq/README.md: "Distance Threshold to consider two hashes to be similar/matching: <=31"
PDQ_DISTANCE = 31


@dataclass(frozen=True)
class SafetyConfig:
    hash_lists: tuple[str, ...] = ()
    phash_distance: int = PHASH_DISTANCE
    pdq_distance: int = PDQ_DISTANCE


class SafetyCheck:
    """The loaded lists of one run: `match(body)` -> (sha256 of the body, why it is listed or None)."""

    def __init__(self, refs: Refs, phash_distance: int = PHASH_DISTANCE, pdq_distance: int = PDQ_DISTANCE) -> None:
        self.refs = refs
        self.phash = RefIndex.from_hex(refs.phash, phash_distance, 64) if refs.phash else None
        self.pdq = RefIndex.from_hex(refs.pdq, pdq_distance, 256) if refs.pdq else None

    def match(self, body: bytes) -> tuple[str, str | None]:
        digests = phash.digests(body)
        for kind in ("md5", "sha1", "sha256"):
            if digests[kind] in getattr(self.refs, kind):
                return digests["sha256"], f"its {kind} is on a safety hash list"
        if self.phash is None and self.pdq is None:
            return digests["sha256"], None
        hashes = phash.perceptual(body, phash=self.phash is not None, pdq=self.pdq is not None)
        for kind, index, bits in (("phash", self.phash, 64), ("pdq", self.pdq, 256)):
            value = hashes.get(kind)
            if index is None or value is None:
                continue
            d = int(index.within(hex_words([value], bits))[0])
            if d >= 0:
                return digests["sha256"], f"its {kind} is within {d} bits of a safety hash list entry"
        return digests["sha256"], None


_loaded: dict[SafetyConfig, SafetyCheck] = {}
_lock = threading.Lock()


def for_run(config: SafetyConfig) -> SafetyCheck | None:
    """The check of these lists in this process (read once per worker process), or None without lists."""
    if not config.hash_lists:
        return None
    with _lock:
        if config not in _loaded:
            _loaded[config] = SafetyCheck(load_hash_lists(config.hash_lists), config.phash_distance,
                                          config.pdq_distance)
        return _loaded[config]
