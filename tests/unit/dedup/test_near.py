"""Near-duplicate search: LSH banding finds exactly the pairs brute force finds, connected components
resolve groups transitively, and Spark agrees with the local engine."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.engines.base import band_layout
from curate.engines.local import LocalEngine


def _hashes(n: int, planted: int, max_flip: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**63, size=n, dtype=np.int64) * 2 + rng.integers(0, 2, size=n)  # all 64 bits
    for i in rng.choice(n - 1, size=planted, replace=False):
        flips = rng.choice(64, size=rng.integers(0, max_flip + 1), replace=False)
        h[i + 1] = h[i] ^ np.int64(sum(1 << int(b) for b in flips) - (1 << 64 if 63 in flips else 0))
    return np.unique(h)


def _brute(h: np.ndarray, d: int) -> set[tuple[int, int]]:
    x = np.bitwise_count((h[:, None] ^ h[None, :]).view(np.uint64))
    i, j = np.nonzero(np.triu(x <= d, 1))
    return {(int(min(h[a], h[b])), int(max(h[a], h[b]))) for a, b in zip(i, j, strict=True)}


def _pairs(table: pa.Table) -> set[tuple[int, int]]:
    return set(zip(table.column("src").to_pylist(), table.column("dst").to_pylist(), strict=True))


def test_band_layout_covers_64_bits():
    for bands in (1, 3, 4, 5, 7, 64):
        layout = band_layout(bands)
        assert len(layout) == bands
        assert sum(bin(mask).count("1") for _, mask in layout) == 64
        full = 0
        for shift, mask in layout:
            assert full & (mask << shift) == 0
            full |= mask << shift
        assert full == (1 << 64) - 1


@pytest.mark.parametrize("d", [1, 2, 4])
def test_pigeonhole_banding_has_exact_recall(d):
    h = _hashes(3000, planted=300, max_flip=d + 1, seed=d)
    frame = pa.table({"h": pa.array(h, pa.int64())})
    got = LocalEngine().band_pairs(frame, "h", "h", d + 1, d)
    want = _brute(h, d)
    assert len(want) > 50
    assert _pairs(got) == want
    assert got.num_rows == len(want)  # each pair once, though it may share several bands
    dist = np.bitwise_count((np.array(got.column("src").to_pylist()) ^ np.array(got.column("dst").to_pylist()))
                            .view(np.uint64))
    assert (dist == got.column("distance").to_numpy()).all()


def test_fewer_bands_lose_recall_but_never_precision():
    h = _hashes(3000, planted=400, max_flip=4, seed=9)
    got = _pairs(LocalEngine().band_pairs(pa.table({"h": pa.array(h, pa.int64())}), "h", "h", 2, 4))
    want = _brute(h, 4)
    assert got < want


def test_string_ids_and_identical_hashes():
    frame = pa.table({"id": ["b", "a", "c", "d"], "h": pa.array([5, 5, 7, -1], pa.int64())})
    got = LocalEngine().band_pairs(frame, "id", "h", 2, 1)
    assert sorted(zip(got.column("src").to_pylist(), got.column("dst").to_pylist(), strict=True)) == [
        ("a", "b"), ("a", "c"), ("b", "c")]


def test_connected_components_are_transitive_and_labelled_by_smallest_node():
    edges = pa.table({"s": [5, 3, 9, 20, 11], "d": [3, 1, 5, 21, 12]})
    out = LocalEngine().connected_components(edges, "s", "d")
    got = dict(zip(out.column("node").to_pylist(), out.column("component").to_pylist(), strict=True))
    assert got == {1: 1, 3: 1, 5: 1, 9: 1, 20: 20, 21: 20, 11: 11, 12: 11}
    assert LocalEngine().connected_components(edges.slice(0, 0), "s", "d").num_rows == 0


@pytest.mark.spark
def test_spark_matches_local_and_brute_force(spark_engine):
    h = _hashes(2000, planted=300, max_flip=4, seed=3)
    frame = pa.table({"h": pa.array(h, pa.int64())})
    local = LocalEngine().band_pairs(frame, "h", "h", 4, 3)
    spark = spark_engine.to_arrow(spark_engine.band_pairs(spark_engine.from_arrow(frame), "h", "h", 4, 3))
    assert spark.num_rows == local.num_rows
    assert _pairs(spark) == _pairs(local) == _brute(h, 3)
    # a chain 1-2-3-4 (two rounds of propagation) plus a separate pair
    edges = pa.table({"s": pa.array([4, 3, 2, 10], pa.int64()), "d": pa.array([3, 2, 1, 11], pa.int64())})
    want = LocalEngine().connected_components(edges, "s", "d").sort_by("node")
    for collect_below in (0, 100):  # Spark's own rounds, and the small-graph path on the driver
        cc = spark_engine.connected_components(spark_engine.from_arrow(edges), "s", "d", collect_below=collect_below)
        assert spark_engine.to_arrow(cc).sort_by("node").equals(want)
