"""An in-memory index of reference hashes (a safety hash list's pHashes or PDQ hashes) that answers "is this hash
within d bits of any reference?" with exact recall, for a batch of query hashes at once.

Only the reference side is indexed (DATAPLANE: reference lists are probed, pool pairs never generated): each
part of the references' hashes (`curate.dedup.mih`'s layout for the list's size) is kept sorted, and a query
probes each part with every flip of at most r bits of its own part value (pigeonhole: a reference within d
bits shares a probed value in some part), then verifies the full distance. Small lists are compared by brute
force. Used by the download's write-time check and by dedup's PDQ reference probe on the executors.
"""

from __future__ import annotations

import numpy as np

from curate.dedup.mih import _equal, choose_parts

BRUTE_FORCE = 4096  # references up to this many are compared with every query directly
_CHUNK = 1024


def hex_words(hexes: list[str], bits: int) -> np.ndarray:
    """Hex hashes of `bits` bits as (n, bits / 64) uint64 words, most significant first."""
    words = bits // 64
    if not hexes:
        return np.empty((0, words), dtype=np.uint64)
    raw = np.frombuffer(bytes.fromhex("".join(hexes)), dtype=">u8")
    return raw.astype(np.uint64).reshape(len(hexes), words)


class RefIndex:
    def __init__(self, refs: np.ndarray, distance: int) -> None:
        self.refs = np.ascontiguousarray(refs, dtype=np.uint64)
        self.distance = distance
        n, words = self.refs.shape
        self.layout = choose_parts(distance, n, 64 * words) if n > BRUTE_FORCE else None
        self.parts: list[tuple[int, int, int, np.ndarray, np.ndarray]] = []
        if self.layout is not None:
            for word, shift, mask in self.layout.positions():
                values = (self.refs[:, word] >> np.uint64(shift)) & np.uint64(mask)
                order = np.argsort(values, kind="stable")
                self.parts.append((word, shift, mask, values[order], order.astype(np.int64)))
            self.flips = np.array(self.layout.flips(), dtype=np.uint64)

    @classmethod
    def from_hex(cls, hexes, distance: int, bits: int) -> RefIndex:
        return cls(hex_words(sorted(hexes), bits), distance)

    def __len__(self) -> int:
        return len(self.refs)

    def within(self, queries: np.ndarray) -> np.ndarray:
        """For each query (rows of uint64 words), the smallest distance to a reference, or -1 when none is
        within `distance` bits."""
        q = np.ascontiguousarray(queries, dtype=np.uint64).reshape(-1, self.refs.shape[1])
        best = np.full(len(q), -1, dtype=np.int64)
        if not len(self.refs) or not len(q):
            return best
        if self.layout is None:
            for start in range(0, len(q), _CHUNK):
                x = q[start:start + _CHUNK, None, :] ^ self.refs[None, :, :]
                d = np.bitwise_count(x).sum(axis=2, dtype=np.int64)
                low = d.min(axis=1)
                best[start:start + _CHUNK] = np.where(low <= self.distance, low, -1)
            return best
        rows = np.arange(len(q), dtype=np.int64)
        for word, shift, mask, values, order in self.parts:
            v = (q[:, word] >> np.uint64(shift)) & np.uint64(mask)
            for flip in self.flips:
                x, y = _equal(v ^ flip, rows, values, order)
                if not len(x):
                    continue
                d = np.bitwise_count(q[x] ^ self.refs[y]).sum(axis=1, dtype=np.int64)
                ok = d <= self.distance
                for i, di in zip(x[ok].tolist(), d[ok].tolist(), strict=True):
                    if best[i] < 0 or di < best[i]:
                        best[i] = di
        return best
