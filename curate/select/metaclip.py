"""MetaCLIP's curation (Xu et al. 2023, arXiv 2309.16671; facebookresearch/MetaCLIP): substring-match
each caption against a metadata entry list, count matches per entry over the pool, and balance: an
entry keeps each of its matches with probability min(1, t / count), and a pair survives if any of its
entries keeps it. t = 20,000 at the 400M scale (170,000 for 2.5B).

Sampling is a hash, not a global RNG: the draw for (seed, uid, entry) is blake2b of the three, read as a
uniform number, so it is the same in any process, on any engine, in any batch order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curate.select.policy import PoolView, StepResult, register
from curate.select.text import METACLIP_ENTRIES, LemmaMatcher

MATCHES = "_metaclip_entries"


def uniform(seed: int, uid: str, salt: str | int) -> float:
    """A deterministic uniform number in [0, 1) for (seed, uid, salt)."""
    digest = hashlib.blake2b(f"{seed}:{uid}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@register
@dataclass(frozen=True)
class MetaClip:
    name: ClassVar[str] = "metaclip"
    columns: ClassVar[tuple[str, ...]] = ("uid", "caption")
    annotation_columns: ClassVar[tuple[str, ...]] = (MATCHES,)
    annotation_schema: ClassVar[tuple[pa.Field, ...]] = (pa.field(MATCHES, pa.list_(pa.int32())),)

    entries: str | None = None  # a file, one entry per line; default: curate/select/data/metaclip_entries.txt
    t: int = 20_000  # MetaCLIP 400M: entries matched more than t times are sampled down to t
    seed: int = 0
    _counts: tuple[int, ...] | None = None  # matches per entry over the kept pool, resolved

    @property
    def path(self) -> str:
        return self.entries or str(METACLIP_ENTRIES)

    def needs_pool(self) -> bool:
        return self._counts is None

    def annotate(self, table: pa.Table) -> pa.Table:
        matcher = LemmaMatcher.get(self.path, words=False)
        found = [matcher.find(c or "") for c in table.column("caption").to_pylist()]
        return table.append_column(self.annotation_schema[0], pa.array(found, pa.list_(pa.int32())))

    def resolve(self, pool: PoolView) -> MetaClip:
        if self._counts is not None:
            return self
        n = len(LemmaMatcher.get(self.path, words=False))
        counts = np.zeros(n, dtype=np.int64)
        for entry, c in pool.value_counts(MATCHES, kept_only=True).items():
            if entry is not None:
                counts[int(entry)] = c
        return replace(self, _counts=tuple(int(c) for c in counts))

    def evaluate(self, table: pa.Table) -> StepResult:
        counts = self._counts
        uids = table.column("uid").to_pylist()
        matches = table.column(MATCHES).to_pylist()
        no_match = np.array([not m for m in matches], dtype=bool)
        sampled_out = np.zeros(len(uids), dtype=bool)
        for i, (uid, m) in enumerate(zip(uids, matches, strict=True)):
            if m:
                sampled_out[i] = not any(uniform(self.seed, uid, e) < min(1.0, self.t / counts[e]) for e in m)
        return StepResult([("metaclip_no_match", no_match), ("metaclip_not_sampled", sampled_out)], self.report())

    def report(self) -> dict:
        counts = np.array(self._counts or (), dtype=np.int64)
        return {"entries": self.path, "t": self.t, "seed": self.seed, "n_entries": len(counts),
                "entries_matched": int((counts > 0).sum()), "entries_over_t": int((counts > self.t).sum())}
