"""The repetition plan: how many times each selected sample is seen, and in what order.

Given per-sample weights w_i and a samples-seen budget S, every sample gets an integer count c_i with
Σc_i = S exactly and |c_i − S·w_i/Σw| < 1: largest-remainder (Hamilton) rounding, remainders tied
broken by uid. Σw is the correctly rounded sum of the weights (`math.fsum`), which an engine gets
exactly from per-task partial sums (`weight_sum_parts`), so every engine computes the same shares. The
scaling-law study behind this project (Cherti et al., arXiv 2212.07143) found that ~9 passes over a
1.4B-sample set fell short of unique data, so the trainer must know each count.

The planned stream is a sequence of passes: pass p holds every sample with c_i > p (copy p of it), in a
seeded permutation of its own: ordered by sha256 of `seed:uid` (pass 0) or `seed:p:uid`. Copies of a
sample therefore always fall in different passes. Pass 0's order is the seeded order a plain one-pass
reshard has always used.

`counts`, `pass_order` and `stream` work on whole arrays (tests, and the reference the engine program in
`curate.shard.program` must agree with); the vectorised helpers below work on one batch of rows.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from curate.errors import CurateError

_MANTISSA = 53
_HALF = 26  # a 53-bit mantissa summed as two halves: each sum fits an int64 for up to 2^37 rows


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


def check_weights(w: np.ndarray) -> None:
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise CurateError("shard: sample weights must be finite and >= 0")


def weight_sum_parts(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact sum of non-negative doubles as partial sums per binary exponent: (exponent, Σ high halves,
    Σ low halves) of the 53-bit integer mantissas. Partial sums of any split of the rows add up to the same
    parts; `total_from_parts` turns them into the correctly rounded sum."""
    m, e = np.frexp(np.asarray(w, dtype=np.float64))
    mant = (m * float(1 << _MANTISSA)).astype(np.int64)  # exact: a double's mantissa has 53 bits
    exp = e.astype(np.int64) - _MANTISSA
    keys, inverse = np.unique(exp, return_inverse=True)
    hi = np.zeros(len(keys), np.int64)
    lo = np.zeros(len(keys), np.int64)
    np.add.at(hi, inverse, mant >> _HALF)
    np.add.at(lo, inverse, mant & ((1 << _HALF) - 1))
    return keys, hi, lo


def total_from_parts(parts: Iterable[tuple[int, int, int]]) -> float:
    """The correctly rounded sum from (exponent, Σhi, Σlo) parts (what `math.fsum` gives for the rows)."""
    exact = Fraction(0)
    for exp, hi, lo in parts:
        exact += Fraction((int(hi) << _HALF) + int(lo)) * (Fraction(2) ** int(exp))
    return float(exact)


def shares(w: np.ndarray, samples_seen: int, total: float) -> tuple[np.ndarray, np.ndarray]:
    """(floor of each share S·w/Σw, its remainder) for a batch of weights."""
    share = samples_seen * np.asarray(w, dtype=np.float64) / total
    base = np.floor(share).astype(np.int64)
    return base, share - base


def remainder_keys(frac: np.ndarray) -> np.ndarray:
    """uint64 keys ordering remainders descending (remainders are >= 0, so their bits order them)."""
    return ~np.asarray(frac, dtype=np.float64).view(np.uint64)


def counts(uids: Sequence[str], weights: np.ndarray, samples_seen: int) -> np.ndarray:
    """Integer counts (int64, aligned with `uids`) summing to `samples_seen`, each within 1 of its share."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) != len(uids):
        raise CurateError(f"shard: {len(uids)} uids but {len(w)} weights")
    if len(w) == 0:
        if samples_seen:
            raise CurateError("shard: cannot plan a non-zero samples-seen budget over an empty selection")
        return np.zeros(0, dtype=np.int64)
    check_weights(w)
    total = math.fsum(w)
    if total <= 0:
        raise CurateError("shard: all sample weights are zero")
    base, frac = shares(w, samples_seen, total)
    rest = int(samples_seen - base.sum())
    if not 0 <= rest <= len(w):
        raise CurateError(f"shard: rounding left {rest} samples to place among {len(w)}")
    if rest:
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


def digests(uids: Sequence[str], seed: int, pass_id: int) -> np.ndarray:
    """The sort keys of pass `pass_id` (S32: sha256 of `seed:uid` or `seed:pass:uid`)."""
    prefix = f"{seed}:" if pass_id == 0 else f"{seed}:{pass_id}:"
    sha = hashlib.sha256
    return np.array([sha((prefix + u).encode()).digest() for u in uids], dtype="S32")


def buckets(keys: np.ndarray, bits: int) -> np.ndarray:
    """The top `bits` bits of each S32 sort key (int64): buckets in the order of the keys."""
    if bits == 0 or len(keys) == 0:
        return np.zeros(len(keys), np.int64)
    top = np.frombuffer(np.ascontiguousarray(keys).tobytes(), dtype=">u8").reshape(len(keys), 4)[:, 0]
    return (top >> np.uint64(64 - bits)).astype(np.int64)


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


def summary(hist: dict[str, int], weighted: bool, samples_seen: int) -> dict:
    """What `plan.json` and `_stats.json` say about a plan, from its count histogram."""
    n = sum(hist.values())
    return {"unique_samples": n, "samples_seen": int(samples_seen),
            "passes": (samples_seen / n) if n else 0.0, "max_count": max((int(k) for k in hist), default=0),
            "weighted": bool(weighted), "histogram": hist}
