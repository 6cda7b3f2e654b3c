"""Multi-index hashing for 64-bit (pHash) and 256-bit (PDQ) hashes within d bits (Norouzi et al., "Fast
Search in Hamming Space with Multi-Index Hashing", CVPR 2012): the layout math, engine-free.

Cut the 64 (or 256) bits into m equal parts. Two hashes within d bits differ in at most r = d // m bits in some part
(pigeonhole: if every part differed in r + 1 or more, they would differ in m(r + 1) > d bits). So a row
emits, per part, the part's value with every flip of at most r of its bits (the probe keys), and the exact
part values (the index keys); a pair within d shares a key in some part, and recall is exact.

Cost per row: K = m * sum_{i<=r} C(64/m, i) probe keys, and each key meets about n / 2^(64/m) unrelated
rows of the index. `choose_parts` takes the m in {1, 2, 4, 8, 16} with the smallest
K * (PROBE_COST + n / 2^(64/m)): for d = 3 and more than a few thousand hashes that is two 32-bit halves
with one-bit flips (66 keys per row), so candidates stay linear in n (about 66 * n / 2^32 per row: 0.25
at 16M rows, 154 at 10^10) where 4 bands of 16 bits meet n / 65,536 rows per key (244 at 16M).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np

PART_COUNTS = (1, 2, 4, 8, 16)
MAX_KEYS = 4096  # a layout needing more probe keys per row is not offered
PROBE_COST = 0.1  # a probe key's cost against a candidate pair's (measured: numpy search vs pair rows)
# 256-bit hashes (PDQ) are four 64-bit words; a part lies within one word, so parts are 8 to 64 bits wide.
# At d = 31 exact recall needs m (r + 1) > 31: 16 parts of 16 bits with one-bit flips (272 keys a row, each
# meeting n / 65,536 rows: Meta's own PDQ index layout), or 8 parts of 32 bits with up to 3 flips (43,912
# keys a row, each meeting n / 2^32 rows: linear candidates, chosen once n passes about a million hashes).
PART_COUNTS_BY_BITS = {64: PART_COUNTS, 256: (4, 8, 16, 32)}
MAX_KEYS_BY_BITS = {64: MAX_KEYS, 256: 65_536}


@dataclass(frozen=True)
class Layout:
    distance: int
    parts: int  # m
    bits: int = 64  # 64 (pHash, one word) or 256 (PDQ, four words, most significant first)

    @property
    def width(self) -> int:
        return self.bits // self.parts

    @property
    def words(self) -> int:
        return self.bits // 64

    @property
    def radius(self) -> int:
        return self.distance // self.parts

    def shifts(self) -> list[tuple[int, int]]:
        """(right shift, mask) of each part of a 64-bit hash, most significant first."""
        mask = (1 << self.width) - 1
        return [(64 - self.width * (i + 1), mask) for i in range(self.parts)]

    def positions(self) -> list[tuple[int, int, int]]:
        """(word, right shift, mask) of each part, most significant first (any width of hash)."""
        mask = (1 << self.width) - 1
        return [((i * self.width) // 64, 64 - (i * self.width) % 64 - self.width, mask) for i in range(self.parts)]

    def flips(self) -> list[int]:
        """Every mask of at most `radius` bits within one part (0 first)."""
        out = [0]
        for k in range(1, self.radius + 1):
            out += [sum(1 << b for b in bits) for bits in combinations(range(self.width), k)]
        return out

    def keys_per_row(self) -> int:
        return self.parts * sum(comb(self.width, i) for i in range(self.radius + 1))

    def cost(self, n: int) -> float:
        """Work per row: making a probe key is a vectorised XOR and sorted search inside a group (PROBE_COST
        of a candidate), and each key meets about n / 2^width unrelated rows, each a candidate to verify."""
        return self.keys_per_row() * (PROBE_COST + n / 2 ** self.width)


def choose_parts(distance: int, n: int, bits: int = 64) -> Layout:
    """The cheapest exact layout for `n` distinct `bits`-bit hashes within `distance` bits."""
    if bits not in PART_COUNTS_BY_BITS:
        raise ValueError(f"hashes of {bits} bits are not supported (64 or 256)")
    if not 0 <= distance < bits:
        raise ValueError(f"distance must be in 0..{bits - 1}, got {distance}")
    layouts = [Layout(distance, m, bits) for m in PART_COUNTS_BY_BITS[bits]
               if Layout(distance, m, bits).keys_per_row() <= MAX_KEYS_BY_BITS[bits]]
    return min(layouts, key=lambda lay: (lay.cost(max(n, 1)), lay.parts))


def signed(mask: int) -> int:
    """A 64-bit mask as the signed long engines store."""
    return mask - (1 << 64) if mask >= 1 << 63 else mask


# --- blocked search: the probes of a part are made and matched inside one group of rows ------------------
#
# A part's value is cut into a prefix of p bits and a suffix. Two values within r bits differ in t <= r bits
# of the prefix and at most r - t of the suffix. So each row is sent, per part, to the group of its own prefix
# (as an index row, with a budget of r suffix flips) and to the groups of every prefix t bits away (as a
# probe row with a budget of r - t). In a group, the probes (suffix XOR every mask within the budget) are
# matched against the index suffixes with a sorted search. Only sum_{t<=r} C(p, t) rows per part and hash
# cross the engine's shuffle (9 for r = 1, p = 8), not every probe key; groups hold about
# n * rows_per_part / 2^p rows, and `block_bits` picks p to keep that near GROUP_ROWS.

GROUP_ROWS = 1_000_000


def block_bits(layout: Layout, n: int, group_rows: int = GROUP_ROWS) -> int:
    """Prefix bits p per part: the smallest that keeps a group near `group_rows` rows for n hashes."""
    for p in range(1, layout.width):
        per_part = sum(comb(p, t) for t in range(layout.radius + 1))
        if max(n, 1) * per_part / 2**p <= group_rows:
            return p
    return layout.width - 1


def _masks(bits: int, most: int, least: int = 0) -> np.ndarray:
    """Every mask of `least` to `most` set bits among the low `bits` bits."""
    out = [sum(1 << b for b in c) for k in range(least, most + 1) for c in combinations(range(bits), k)]
    return np.array(out, dtype=np.uint64)


def as_words(h: np.ndarray, words: np.ndarray | None) -> np.ndarray:
    """A hash's words as (n, W) uint64: `words` when given (256 bits), else the 64-bit hashes `h`."""
    if words is None:
        return h.astype(np.int64).view(np.uint64)[:, None]
    return np.ascontiguousarray(words).astype(np.int64).view(np.uint64).reshape(len(words), -1)


def emit(h: np.ndarray, layout: Layout, p: int, words: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The rows each hash sends to the groups: part, prefix (the group), suffix, h, budget, and for hashes
    wider than 64 bits their words w0..w{W-1} (`h` is then the hash's id, a distinct int64)."""
    u = as_words(h, words)
    w, r = layout.width, layout.radius
    low = np.uint64((1 << (w - p)) - 1)
    extra = [f"w{j}" for j in range(u.shape[1])] if words is not None else []
    cols: dict[str, list] = {k: [] for k in ("part", "prefix", "suffix", "h", "budget", *extra)}
    for i, (word, shift, mask) in enumerate(layout.positions()):
        v = (u[:, word] >> np.uint64(shift)) & np.uint64(mask)
        prefix, suffix = v >> np.uint64(w - p), v & low
        for t in range(r + 1):
            for flip in _masks(p, t, least=t):
                cols["part"].append(np.full(len(u), i, dtype=np.int32))
                cols["prefix"].append((prefix ^ flip).view(np.int64))
                cols["suffix"].append(suffix.view(np.int64))
                cols["h"].append(h.astype(np.int64))
                cols["budget"].append(np.full(len(u), r - t, dtype=np.int8))
                for j, name in enumerate(extra):
                    cols[name].append(u[:, j].view(np.int64))
    return {k: np.concatenate(v) if v else np.empty(0) for k, v in cols.items()}


def _equal(q: np.ndarray, rows_q: np.ndarray, s_idx: np.ndarray, rows_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probe row, index row) for every probe value equal to an index suffix (`s_idx` sorted)."""
    lo = np.searchsorted(s_idx, q, "left")
    counts = np.searchsorted(s_idx, q, "right") - lo
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    starts = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    return np.repeat(rows_q, counts), rows_idx[starts + np.arange(total)]


def _one_bit_pairs(s: np.ndarray, rows: np.ndarray, h: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Unordered pairs of `rows` (the lower hash's row first) whose suffixes `s` are equal or differ in one
    bit: rows equal once bit k is cleared, for each k (and equal ones once), found by sorting."""
    a_parts, b_parts = [], []
    for k in range(-1, bits):
        key = s if k < 0 else s & ~np.uint64(1 << k)
        order = np.argsort(key, kind="stable")
        ks = key[order]
        start = np.flatnonzero(np.concatenate([[True], ks[1:] != ks[:-1]]))
        length = np.diff(np.append(start, len(ks)))
        for size in np.unique(length[length > 1]):  # runs of equal keys: every pair inside each
            first = start[length == size]
            i, j = np.triu_indices(int(size), 1)
            x, y = order[(first[:, None] + i).ravel()], order[(first[:, None] + j).ravel()]
            if k >= 0:  # pairs with equal suffixes were taken at k = -1
                differ = s[x] != s[y]
                x, y = x[differ], y[differ]
            x, y = rows[x], rows[y]
            swap = h[x] > h[y]
            a_parts.append(np.where(swap, y, x))
            b_parts.append(np.where(swap, x, y))
    if not a_parts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(a_parts), np.concatenate(b_parts)


def group_pairs(part: int, suffix: np.ndarray, h: np.ndarray, budget: np.ndarray, layout: Layout,
                p: int, words: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(a, b, candidates) of one group: pairs of hashes a < b (or of ids, for hashes given as `words`) within
    `layout.distance` bits found in this part and in no earlier one, and the probe-index matches between
    different hashes before verification."""
    u = as_words(h, words)
    r, w = layout.radius, layout.width
    index = np.flatnonzero(budget == r)
    index = index[np.argsort(suffix[index], kind="stable")]
    s_idx = suffix[index].view(np.uint64)
    x_parts, y_parts, candidates = [], [], 0
    for b in range(r + 1):
        rows = np.flatnonzero(budget == b)
        s_rows = suffix[rows].view(np.uint64)
        if b == 1 and r == 1:  # index rows against each other: one sort per suffix bit, not a search per probe
            x, y = _one_bit_pairs(s_idx, index, h, w - p)
            candidates += 2 * len(x)  # each pair met from both sides, as the probes would
            x_parts.append(x)
            y_parts.append(y)
            continue
        for mask in _masks(w - p, b):
            x, y = _equal(s_rows ^ mask, rows, s_idx, index)
            candidates += int((h[x] != h[y]).sum())
            if b == r:  # both rows index rows: met from both sides, keep the lower as the probe
                keep = h[x] < h[y]
                x, y = x[keep], y[keep]
            x_parts.append(x)
            y_parts.append(y)
    if not x_parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), candidates
    x, y = np.concatenate(x_parts), np.concatenate(y_parts)
    a, b = h[x].astype(np.int64), h[y].astype(np.int64)
    diff = u[x] ^ u[y]
    keep = (a < b) & (np.bitwise_count(diff).sum(axis=1) <= layout.distance)
    for word, shift, mask in layout.positions()[:part]:  # found already in an earlier part: drop
        keep &= np.bitwise_count((diff[:, word] >> np.uint64(shift)) & np.uint64(mask)) > r
    return a[keep], b[keep], candidates
