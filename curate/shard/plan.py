"""The repetition plan: how many times each selected sample is seen, and in what order.

Given per-sample weights w_i and a samples-seen budget S, every sample gets an integer count c_i with
Σc_i = S exactly and |c_i − S·w_i/Σw| < 1: largest-remainder (Hamilton) rounding, remainders tied
broken by uid. The scaling-law study behind this project (Cherti et al., arXiv 2212.07143) found that
~9 passes over a 1.4B-sample set fell short of unique data, so the trainer must know each count.

The planned stream is a sequence of passes: pass p holds every sample with c_i > p (copy p of it), in a
seeded permutation of its own. Copies of a sample therefore always fall in different passes. Pass 0's
order is the seeded order a plain one-pass reshard has always used.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from curate.errors import CurateError


@dataclass(frozen=True)
class PlanRequest:
    """How much to see: a samples-seen budget, or a number of passes (S = round(passes · N)); neither = 1 pass."""

    samples_seen: int | None = None
    passes: float | None = None

    def budget(self, n_unique: int) -> int:
        if self.samples_seen is not None and self.passes is not None:
            raise CurateError("shard: give --samples-seen or --passes, not both")
        if self.samples_seen is not None:
            if self.samples_seen < 0:
                raise CurateError(f"shard: --samples-seen must be >= 0, got {self.samples_seen}")
            return int(self.samples_seen)
        if self.passes is not None:
            if not math.isfinite(self.passes) or self.passes < 0:
                raise CurateError(f"shard: --passes must be >= 0, got {self.passes}")
            return int(round(self.passes * n_unique))
        return n_unique


def counts(uids: Sequence[str], weights: np.ndarray, samples_seen: int) -> np.ndarray:
    """Integer counts (int64, aligned with `uids`) summing to `samples_seen`, each within 1 of its share."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) != len(uids):
        raise CurateError(f"shard: {len(uids)} uids but {len(w)} weights")
    if len(w) == 0:
        if samples_seen:
            raise CurateError("shard: cannot plan a non-zero samples-seen budget over an empty selection")
        return np.zeros(0, dtype=np.int64)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise CurateError("shard: sample weights must be finite and >= 0")
    total = w.sum()
    if total <= 0:
        raise CurateError("shard: all sample weights are zero")
    share = samples_seen * w / total
    base = np.floor(share).astype(np.int64)
    rest = int(samples_seen - base.sum())
    if rest:
        frac = share - base
        # largest remainder first; equal remainders go to the smaller uid (a stable, documented tie-break)
        order = np.lexsort((np.asarray(uids, dtype=object).astype(str), -frac))
        base[order[:rest]] += 1
    return base


def histogram(c: np.ndarray) -> dict[str, int]:
    """{count: number of samples with that count}, keys as strings for JSON."""
    return {str(k): int(v) for k, v in sorted(Counter(np.asarray(c).tolist()).items())}


def _sort_key(seed: int, pass_id: int, uid: str) -> bytes:
    text = f"{seed}:{uid}" if pass_id == 0 else f"{seed}:{pass_id}:{uid}"
    return hashlib.sha256(text.encode()).digest()


def pass_order(uids: Sequence[str], seed: int, pass_id: int) -> np.ndarray:
    """A seeded permutation of `uids` (indices) that depends only on each uid, the seed and the pass."""
    if not len(uids):
        return np.zeros(0, dtype=np.int64)
    keys = np.array([_sort_key(seed, pass_id, u) for u in uids], dtype="S32")
    return np.argsort(keys, kind="stable")


def stream(uids: Sequence[str], c: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The planned stream as (sample index into `uids`, copy/pass number), Σc entries long."""
    c = np.asarray(c, dtype=np.int64)
    idx_parts, pass_parts = [], []
    for p in range(int(c.max()) if len(c) else 0):
        members = np.flatnonzero(c > p)
        perm = pass_order([uids[i] for i in members], seed, p)
        idx_parts.append(members[perm])
        pass_parts.append(np.full(len(members), p, dtype=np.int64))
    if not idx_parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(idx_parts), np.concatenate(pass_parts)


def summary(c: np.ndarray, weights: np.ndarray, samples_seen: int) -> dict:
    """What `plan.json` and `_stats.json` say about a plan."""
    n = int(len(c))
    return {"unique_samples": n, "samples_seen": int(samples_seen),
            "passes": (samples_seen / n) if n else 0.0, "max_count": int(c.max()) if n else 0,
            "weighted": bool(n and not np.all(np.asarray(weights) == np.asarray(weights)[0])),
            "histogram": histogram(c)}
