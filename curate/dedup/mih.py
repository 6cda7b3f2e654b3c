"""Multi-index hashing for 64-bit hashes within d bits (Norouzi et al., "Fast Search in Hamming Space with
Multi-Index Hashing", CVPR 2012): the layout math, engine-free.

Cut the 64 bits into m equal parts. Two hashes within d bits differ in at most r = d // m bits in some part
(pigeonhole: if every part differed in r + 1 or more, they would differ in m(r + 1) > d bits). So a row
emits, per part, the part's value with every flip of at most r of its bits (the probe keys), and the exact
part values (the index keys); a pair within d shares a key in some part, and recall is exact.

Cost per row: K = m * sum_{i<=r} C(64/m, i) probe keys, and each key meets about n / 2^(64/m) unrelated
rows of the index. `choose_parts` takes the m in {1, 2, 4, 8, 16} with the smallest K * (1 + n / 2^(64/m)):
for d = 3 that is two 32-bit halves with one-bit flips (66 keys per row), so candidates stay linear in n
(about 66 * (1 + n / 2^32) per row: 66.2 at 16M rows, 220 at 10^10) where 4 bands of 16 bits meet
n / 65,536 rows per key.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb

PART_COUNTS = (1, 2, 4, 8, 16)
MAX_KEYS = 4096  # a layout needing more probe keys per row is not offered


@dataclass(frozen=True)
class Layout:
    distance: int
    parts: int  # m

    @property
    def width(self) -> int:
        return 64 // self.parts

    @property
    def radius(self) -> int:
        return self.distance // self.parts

    def shifts(self) -> list[tuple[int, int]]:
        """(right shift, mask) of each part, most significant first."""
        mask = (1 << self.width) - 1
        return [(64 - self.width * (i + 1), mask) for i in range(self.parts)]

    def flips(self) -> list[int]:
        """Every mask of at most `radius` bits within one part (0 first)."""
        out = [0]
        for k in range(1, self.radius + 1):
            out += [sum(1 << b for b in bits) for bits in combinations(range(self.width), k)]
        return out

    def keys_per_row(self) -> int:
        return self.parts * sum(comb(self.width, i) for i in range(self.radius + 1))

    def cost(self, n: int) -> float:
        return self.keys_per_row() * (1 + n / 2 ** self.width)


def choose_parts(distance: int, n: int) -> Layout:
    """The cheapest exact layout for `n` distinct hashes within `distance` bits."""
    if not 0 <= distance < 64:
        raise ValueError(f"distance must be in 0..63, got {distance}")
    layouts = [Layout(distance, m) for m in PART_COUNTS if Layout(distance, m).keys_per_row() <= MAX_KEYS]
    return min(layouts, key=lambda lay: (lay.cost(max(n, 1)), lay.parts))


def signed(mask: int) -> int:
    """A 64-bit mask as the signed long engines store."""
    return mask - (1 << 64) if mask >= 1 << 63 else mask
