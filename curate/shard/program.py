"""The shard plan as engine work (`frames.Frames`): every function here runs on one batch of candidate rows
in a worker; the driver keeps scalars and tables that grow with the output shards, never with the rows.

1. `Totals`: rows, refusals by reason, the exact Σw (per-exponent partial sums), the weights' range.
2. `Bases`: Σ floor(S·w/Σw) and the range of the remainders' sort keys. `rest` = S − Σbase samples get one
   more: the top `rest` rows by (remainder desc, uid asc), found exactly by `cut_row`: a radix selection on
   the bytes of (remainder key, uid), 16 bits a round, each round one counting pass, until the rows left
   are at most BAND (65,536), which come here and are sorted. The same counts as `plan.counts`.
3. `Histogram`: samples per count (the plan's histogram) and their bytes: what each repetition mode stores.
4. `Buckets`: per pass p, copies counted by the top bits of their sort key (sha256 of seed, pass, uid),
   about BUCKETS_PER_BLOCK buckets per output block; prefix sums give each bucket's first stream position.
5. `Targets` sends every copy to the block(s) its bucket touches (a bucket across a block boundary goes to
   both); in the block's task `blocks.place` ranks it inside its bucket: its exact stream position.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.shard import plan
from curate.shard.frames import Frames, partial

log = logging.getLogger(__name__)

BAND = 65_536  # rows brought to the driver to finish the exact cut (about 5 MB)
BUCKETS_PER_BLOCK = 8  # sort-key buckets per output block: the rows shuffled twice are ~1/8 of a block's
MAX_BITS = 40
PASS_SHIFT = 40
BAND_SCHEMA = pa.schema([("uid", pa.string()), ("frac", pa.float64())])
TARGET_COLS = [("repetition", pa.int64()), ("pass", pa.int32()), ("digest", pa.binary()), ("start", pa.int64()),
               ("block", pa.int64())]


def _ok(t: pa.Table) -> pa.Table:
    return t.filter(pc.is_null(t.column("refuse"))) if "refuse" in t.column_names else t


def _weights(t: pa.Table) -> np.ndarray:
    return t.column("weight").to_numpy(zero_copy_only=False).astype(np.float64)


@dataclass(frozen=True)
class Budget:
    """S, Σw and the last row (remainder, uid) that gets one more copy: each row's count from its weight."""

    samples_seen: int
    total: float
    cut: tuple[float, str] | None = None

    def counts(self, t: pa.Table) -> np.ndarray:
        if t.num_rows == 0:
            return np.zeros(0, np.int64)
        base, frac = plan.shares(_weights(t), self.samples_seen, self.total)
        if self.cut is None:
            return base
        f, u = self.cut
        tie = pc.less_equal(t.column("uid"), pa.scalar(u, pa.string())).to_numpy(zero_copy_only=False)
        return base + ((frac > f) | ((frac == f) & tie)).astype(np.int64)


class Totals:
    def __call__(self, t: pa.Table) -> pa.Table:
        out = []
        refuse = t.column("refuse")
        for reason, n in zip(*np.unique(refuse.drop_null().to_numpy(zero_copy_only=False).astype(str),
                                        return_counts=True), strict=True):
            out.append(partial(f"refused:{reason}", 0, int(n)))
        t = _ok(t)
        w = _weights(t)
        plan.check_weights(w)
        keys, hi, lo = plan.weight_sum_parts(w)
        out.append(partial("w", keys, 0, hi, lo))
        out.append(partial("rows", 0, t.num_rows))
        if t.num_rows:
            bits = w.view(np.int64)  # non-negative doubles: their bits order them
            length = pc.max(pc.binary_length(t.column("uid").cast(pa.binary()))).as_py()
            out.append(partial("weight", 0, 0, imin=int(bits.min()), imax=int(bits.max())))
            out.append(partial("uidlen", 0, 0, imax=int(length)))
        return pa.concat_tables(out)


def _signed(keys: np.ndarray) -> np.ndarray:
    return (keys ^ np.uint64(1 << 63)).view(np.int64)


@dataclass(frozen=True)
class Bases:
    budget: Budget

    def __call__(self, t: pa.Table) -> pa.Table:
        t = _ok(t)
        base, frac = plan.shares(_weights(t), self.budget.samples_seen, self.budget.total)
        out = [partial("base", 0, int(base.sum()))]
        if t.num_rows:
            keys = _signed(plan.remainder_keys(frac))
            out.append(partial("fkey", 0, 0, imin=int(keys.min()), imax=int(keys.max())))
        return pa.concat_tables(out)


def key_bytes(t: pa.Table, budget: Budget, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(the first `width` bytes of each row's (remainder key, uid) bytes, its remainder)."""
    _, frac = plan.shares(_weights(t), budget.samples_seen, budget.total)
    fk = plan.remainder_keys(frac).astype(">u8").view(np.uint8).reshape(-1, 8)
    if width <= 8:
        return fk[:, :width], frac
    raw = np.array(pc.cast(t.column("uid"), pa.binary()).to_numpy(zero_copy_only=False), dtype=f"S{width - 8}")
    u = np.frombuffer(raw.tobytes(), np.uint8).reshape(t.num_rows, width - 8)
    return np.hstack([fk, u]), frac


def _starts_with(k: np.ndarray, prefix: bytes) -> np.ndarray:
    """Which rows of key bytes `k` start with `prefix` (every row for an empty one)."""
    if not prefix:
        return np.ones(len(k), bool)
    return np.all(k[:, :len(prefix)] == np.frombuffer(prefix, np.uint8), axis=1)


@dataclass(frozen=True)
class Digits:
    """Rows whose key starts with `prefix`, counted by the next 16 bits of their key."""

    budget: Budget
    prefix: bytes

    def __call__(self, t: pa.Table) -> pa.Table:
        t = _ok(t)
        m = len(self.prefix)
        k, _ = key_bytes(t, self.budget, m + 2)
        hit = _starts_with(k, self.prefix)
        digit = (k[hit, m].astype(np.int64) << 8) | k[hit, m + 1]
        keys, n = np.unique(digit, return_counts=True)
        return partial("digit", keys, n) if len(keys) else partial("digit", np.zeros(0), np.zeros(0))


@dataclass(frozen=True)
class Band:
    budget: Budget
    prefix: bytes

    def __call__(self, t: pa.Table) -> pa.Table:
        t = _ok(t)
        m = len(self.prefix)
        k, frac = key_bytes(t, self.budget, max(m, 1))
        hit = _starts_with(k, self.prefix)
        return pa.table({"uid": t.column("uid").filter(pa.array(hit)), "frac": pa.array(frac[hit])},
                        schema=BAND_SCHEMA)


def cut_row(frames: Frames, cand, budget: Budget, rest: int, rows: int, fkeys: tuple[int, int],
            uid_len: int) -> tuple[float, str]:
    """(remainder, uid) of the rest-th row in the order (remainder desc, uid asc), exactly."""
    lo, hi = (int(x).to_bytes(8, "big", signed=True) for x in fkeys)
    flip = bytes([0x80])  # undo _signed's flip of the top bit (it does not change the common prefix)
    lo, hi = bytes([lo[0] ^ flip[0]]) + lo[1:], bytes([hi[0] ^ flip[0]]) + hi[1:]
    common = 0
    while common < 8 and lo[common] == hi[common]:
        common += 1
    prefix, remaining, group, rounds = lo[:common], rest, rows, 0
    while group > BAND and len(prefix) < 8 + uid_len:
        hist = frames.reduce(cand, Digits(budget, prefix), columns=["uid", "weight", "refuse"])
        hist = hist.filter(pc.equal(hist.column("kind"), "digit"))
        digits, n = hist.column("key").to_numpy(), hist.column("n").to_numpy()
        before = np.concatenate([[0], np.cumsum(n)])
        at = int(np.searchsorted(before, remaining, "left")) - 1  # the digit holding rank `remaining`
        remaining -= int(before[at])
        group = int(n[at])
        prefix += int(digits[at]).to_bytes(2, "big")
        rounds += 1
    band = frames.collect(cand, Band(budget, prefix), BAND_SCHEMA, columns=["uid", "weight", "refuse"])
    uids = np.array(band.column("uid").to_pylist(), dtype=str)
    frac = band.column("frac").to_numpy()
    i = np.lexsort((uids, -frac))[remaining - 1]
    log.info("shard: remainder cut after %d counting rounds and a band of %d rows", rounds, band.num_rows)
    return float(frac[i]), str(uids[i])


@dataclass(frozen=True)
class Histogram:
    budget: Budget

    def __call__(self, t: pa.Table) -> pa.Table:
        t = _ok(t)
        c = self.budget.counts(t)
        keys, inverse = np.unique(c, return_inverse=True)
        nbytes = np.bincount(inverse, weights=t.column("nbytes").to_numpy(zero_copy_only=False),
                             minlength=len(keys)).astype(np.int64) if len(c) else np.zeros(0, np.int64)
        n = np.bincount(inverse, minlength=len(keys)) if len(c) else np.zeros(0, np.int64)
        return partial("count", keys, n, nbytes)


def bits_for(members: int, block: int) -> int:
    """Bucket bits for a pass of `members` copies: about BUCKETS_PER_BLOCK buckets per block."""
    return min(MAX_BITS, max(0, math.ceil(math.log2(max(1.0, members * BUCKETS_PER_BLOCK / block)))))


def _copies(t: pa.Table, c: np.ndarray, seed: int, bits: tuple[int, ...], first_only: bool):
    """(row index, pass, sort key, bucket key) of every copy of every row, pass by pass."""
    uids = t.column("uid").to_pylist()
    for p in range(1 if first_only else int(c.max(initial=0))):
        members = np.flatnonzero(c > p)
        if not len(members):
            continue
        d = plan.digests([uids[i] for i in members], seed, p)
        yield members, p, d, (np.int64(p) << PASS_SHIFT) | plan.buckets(d, bits[p])


@dataclass(frozen=True)
class Buckets:
    budget: Budget
    seed: int
    bits: tuple[int, ...]

    def __call__(self, t: pa.Table) -> pa.Table:
        t = _ok(t)
        c = self.budget.counts(t)
        nbytes = t.column("nbytes").to_numpy(zero_copy_only=False)
        out = [partial("bucket", np.zeros(0), np.zeros(0))]
        for members, _, _, key in _copies(t, c, self.seed, self.bits, False):
            keys, inverse = np.unique(key, return_inverse=True)
            out.append(partial("bucket", keys, np.bincount(inverse, minlength=len(keys)),
                               np.bincount(inverse, weights=nbytes[members], minlength=len(keys)).astype(np.int64)))
        return pa.concat_tables(out)


@dataclass(frozen=True, eq=False)
class Offsets:
    """Every non-empty bucket (pass << 40 | bucket) with its first stream position, rows and bytes, by key."""

    keys: np.ndarray
    start: np.ndarray
    rows: np.ndarray
    nbytes: np.ndarray

    @classmethod
    def of(cls, hist: pa.Table) -> Offsets:
        keys, n = hist.column("key").to_numpy(), hist.column("n").to_numpy()
        start = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64) if len(n) else np.zeros(0, np.int64)
        return cls(keys, start, n, hist.column("hi").to_numpy())

    def first_pass_only(self) -> Offsets:
        keep = (self.keys >> PASS_SHIFT) == 0
        return Offsets(self.keys[keep], self.start[keep], self.rows[keep], self.nbytes[keep])

    def block_bytes(self, size: int, blocks: int) -> np.ndarray:
        """Per block, an upper bound of its samples' bytes: the bytes of every bucket touching it."""
        out = np.zeros(blocks, np.int64)
        first, last = self.start // size, (self.start + self.rows - 1) // size
        for i in np.flatnonzero(last > first):  # few: the buckets across a boundary
            out[first[i] + 1:last[i] + 1] += self.nbytes[i]
        np.add.at(out, first, self.nbytes)
        return out


@dataclass(frozen=True, eq=False)
class Targets:
    """Each copy of each row, once per block its bucket touches, with `pass`, `digest` (its sort key), `start`
    (its bucket's first position), `block`, and `repetition` (the row's count: from the budget, or the rows'
    own column when `budget` is None). `first_only`: pass 0 only; `only`: only these blocks."""

    budget: Budget | None
    seed: int
    bits: tuple[int, ...]
    offsets: Offsets
    size: int
    schema: pa.Schema
    first_only: bool = False
    only: tuple[int, ...] | None = field(default=None)

    def __call__(self, t: pa.Table) -> pa.Table:
        t = _ok(t)
        c = self.budget.counts(t) if self.budget is not None else t.column("repetition").to_numpy()
        idx, cols = [], {n: [] for n in ("pass", "digest", "start", "block")}
        for members, p, d, key in _copies(t, c, self.seed, self.bits, self.first_only):
            at = np.searchsorted(self.offsets.keys, key)
            start, rows = self.offsets.start[at], self.offsets.rows[at]
            first, last = start // self.size, (start + rows - 1) // self.size
            reps = (last - first + 1).astype(np.int64)
            which = np.repeat(np.arange(len(members)), reps)
            block = first[which] + (np.arange(len(which)) - np.repeat(np.cumsum(reps) - reps, reps))
            if self.only is not None:
                keep = np.isin(block, np.array(self.only, np.int64))
                which, block = which[keep], block[keep]
            idx.append(members[which])
            cols["pass"].append(np.full(len(which), p, np.int32))
            cols["digest"].append(d[which])
            cols["start"].append(start[which])
            cols["block"].append(block)
        if not idx:
            return self.schema.empty_table()
        rows = np.concatenate(idx)
        out = t.take(pa.array(rows, pa.int64()))
        if self.budget is not None:
            out = out.append_column("repetition", pa.array(c[rows], pa.int64()))
        digest = np.concatenate(cols["digest"])
        extra = {"pass": pa.array(np.concatenate(cols["pass"])),
                 "digest": binary32(digest),
                 "start": pa.array(np.concatenate(cols["start"])), "block": pa.array(np.concatenate(cols["block"]))}
        for name, arr in extra.items():
            out = out.append_column(name, arr)
        return out.select(self.schema.names).cast(self.schema)


def binary32(keys: np.ndarray) -> pa.Array:
    """S32 sort keys as an Arrow binary array, every value its full 32 bytes."""
    n = len(keys)
    offsets = pa.py_buffer(np.arange(0, 32 * n + 1, 32, dtype=np.int32).tobytes())
    data = pa.py_buffer(np.ascontiguousarray(keys).tobytes())
    return pa.BinaryArray.from_buffers(pa.binary(), n, [None, offsets, data])


def target_schema(source: pa.Schema) -> pa.Schema:
    fields = [f for f in source if f.name not in ("refuse", "repetition")]
    return pa.schema([*fields, *(pa.field(n, t) for n, t in TARGET_COLS)])
