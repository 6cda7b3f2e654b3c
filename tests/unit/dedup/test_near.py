"""Near-duplicate search: the multi-index layout (pigeonhole, cost), pairs and reference matches on Spark
against brute force, connected components against a union-find, and a degenerate hash that cannot explode."""

from __future__ import annotations

import numpy as np
import pytest

from curate.dedup.mih import Layout, choose_parts
from curate.engines import sparkgraph


def test_layout_for_three_bits_is_two_halves_with_one_bit_flips():
    layout = choose_parts(3, 16_000_000)
    assert (layout.parts, layout.width, layout.radius) == (2, 32, 1)
    assert layout.keys_per_row() == 2 * 33 and len(layout.flips()) == 33
    assert layout.shifts() == [(32, 0xFFFFFFFF), (0, 0xFFFFFFFF)]
    assert choose_parts(0, 10**10).parts == 1  # identical hashes only: the whole hash is the key
    for d in range(0, 12):  # pigeonhole: parts * (radius + 1) > d, so exact recall
        lay = choose_parts(d, 10**8)
        assert lay.parts * (lay.radius + 1) > d and lay.keys_per_row() <= 4096
    # the banding the stage used before: 4 bands of 16 bits meet n / 65,536 rows per key
    assert Layout(3, 4).cost(16_000_000) > 10 * choose_parts(3, 16_000_000).cost(16_000_000)


def _hashes(n: int, planted: int, max_flip: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**63, size=n, dtype=np.int64) * 2 + rng.integers(0, 2, size=n)  # all 64 bits
    for i in rng.choice(n - 1, size=planted, replace=False):
        flips = rng.choice(64, size=rng.integers(0, max_flip + 1), replace=False)
        h[i + 1] = h[i] ^ np.int64(sum(1 << int(b) for b in flips) - (1 << 64 if 63 in flips else 0))
    return np.unique(h)


def _bits(x: int) -> int:
    """Set bits of a signed 64-bit value (Python ints are unbounded: mask to 64 bits first)."""
    return (x & (2**64 - 1)).bit_count()


def _brute(h: np.ndarray, d: int) -> set[tuple[int, int]]:
    x = np.bitwise_count((h[:, None] ^ h[None, :]).view(np.uint64))
    i, j = np.nonzero(np.triu(x <= d, 1))
    return {(int(min(h[a], h[b])), int(max(h[a], h[b]))) for a, b in zip(i, j, strict=True)}


def _frame(spark_engine, values, name="h"):
    return spark_engine.session.createDataFrame([(int(v),) for v in values], f"{name} long")


@pytest.mark.spark
@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_pairs_have_exact_recall_each_pair_once(spark_engine, d):
    h = _hashes(2000, planted=300, max_flip=d + 1, seed=d)
    got = sparkgraph.near_pairs(_frame(spark_engine, h), choose_parts(d, len(h)), len(h)).collect()
    want = _brute(h, d)
    assert len(want) > 50
    assert len(got) == len(want) and {(r["a"], r["b"]) for r in got} == want
    assert all(r["distance"] == _bits(r["a"] ^ r["b"]) for r in got)


@pytest.mark.spark
def test_hashes_sharing_a_half_are_still_compared_exactly(spark_engine):
    # 300 distinct hashes with one identical upper half (a low-entropy image family), plus noise
    rng = np.random.default_rng(4)
    family = (np.int64(0x0F0F0F0F) << np.int64(32)) | rng.integers(0, 2**32, size=300, dtype=np.int64)
    h = np.unique(np.concatenate([family, _hashes(500, 50, 3, 5)]))
    got = sparkgraph.near_pairs(_frame(spark_engine, h), choose_parts(3, len(h)), len(h)).collect()
    assert {(r["a"], r["b"]) for r in got} == _brute(h, 3)


@pytest.mark.spark
def test_reference_matches_probe_only_the_reference_index(spark_engine):
    rng = np.random.default_rng(7)
    pool = _hashes(1500, 0, 0, 8)
    refs = np.concatenate([pool[:20] ^ np.int64(0b101), rng.integers(-(2**63), 2**63 - 1, 30, dtype=np.int64)])
    got = sparkgraph.near_refs(_frame(spark_engine, pool), _frame(spark_engine, refs), choose_parts(3, len(refs)))
    want = {int(p) for p in pool if any(_bits(int(p) ^ int(r)) <= 3 for r in refs)}
    assert {r["h"] for r in got.collect()} == want and len(want) >= 20


def _union_find(edges) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


@pytest.mark.spark
def test_connected_components_match_a_union_find(spark_engine, tmp_path):
    rng = np.random.default_rng(11)
    chain = [(i + 1, i) for i in range(40)]  # a path: many rounds of min-label propagation
    star = [(1000, 1000 + k) for k in range(1, 30)]
    random_edges = [tuple(int(x) for x in rng.integers(2000, 2300, 2)) for _ in range(250)]
    edges = [e for e in chain + star + random_edges if e[0] != e[1]]
    frame = spark_engine.session.createDataFrame(edges, "a long, b long")
    got = sparkgraph.connected_components(spark_engine, frame, str(tmp_path / "cc")).collect()
    assert {r["node"]: r["component"] for r in got} == _union_find(edges)
    assert len(got) == len({x for e in edges for x in e})  # one row per node
