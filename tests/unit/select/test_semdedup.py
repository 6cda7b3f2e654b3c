"""SemDeDup: planted near-identical embeddings are grouped and one of each group kept (the one farthest
from its centroid); distinct embeddings are not touched; the result is the same on every run."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.engines.local import LocalEngine
from curate.errors import CurateError
from curate.select.execute import select_frame
from curate.select.policy import policy_from_dict
from curate.select.semdedup import duplicates


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def planted(groups: int = 6, copies: int = 4, singles: int = 40, d: int = 32, seed: int = 0):
    """`groups` bases with `copies` near copies each (cosine > 0.999 to their base), and `singles`
    unrelated rows (random directions in 32 dimensions: cosine about 0 +- 0.2)."""
    rng = np.random.default_rng(seed)
    bases = unit(rng.normal(size=(groups, d)))
    rows, group = [], []
    for g, b in enumerate(bases):
        for _ in range(copies):
            rows.append(b + rng.normal(scale=0.005, size=d))
            group.append(g)
    rows += list(rng.normal(size=(singles, d)))
    group += [-1] * singles
    order = rng.permutation(len(rows))
    x = unit(np.array(rows))[order].astype(np.float32)
    return x, np.array(group)[order]


def table(x: np.ndarray) -> pa.Table:
    return pa.table({"uid": [f"{i:032x}" for i in range(len(x))],
                     "image_embedding": pa.array(list(x), pa.list_(pa.float32())),
                     "nsfw": np.linspace(0, 1, len(x)).astype(np.float32)})


def run(t: pa.Table, steps: list[dict]) -> list:
    frame, _ = select_frame(LocalEngine(), t, policy_from_dict({"steps": steps}))
    return frame.column("_reason").to_pylist()


STEP = {"step": "semdedup", "eps": 0.01, "k": 3, "train_rows": 1000, "niter": 20, "seed": 1}


def test_planted_groups_keep_one_each_and_distinct_rows_are_kept():
    x, group = planted()
    reasons = np.array(run(table(x), [STEP]), dtype=object)
    for g in range(6):
        assert (reasons[group == g] == "semantic_duplicate").sum() == 3  # one of the four copies kept
    assert all(r is None for r in reasons[group == -1])
    again = run(table(x), [STEP])
    assert again == reasons.tolist()


def test_the_copy_farthest_from_the_centroid_is_kept():
    """With one cluster, spherical k-means' centroid is the normalised mean of the rows; the kept copy of
    each group is the one least similar to it."""
    x, group = planted(groups=3, copies=5, singles=10)
    reasons = np.array(run(table(x), [{**STEP, "k": 1}]), dtype=object)
    centroid = unit(x.mean(axis=0, keepdims=True))[0]
    for g in range(3):
        rows = np.flatnonzero(group == g)
        farthest = rows[np.argmin(x[rows] @ centroid)]
        assert reasons[farthest] is None and all(reasons[r] == "semantic_duplicate" for r in rows if r != farthest)


def test_rows_rejected_earlier_are_not_compared():
    x, group = planted(groups=2, copies=3, singles=5)
    t = table(x)
    steps = [{"step": "probe", "column": "nsfw", "max_value": 0.5}, {**STEP, "k": 1}]  # 6 kept rows: one cluster
    reasons = np.array(run(t, steps), dtype=object)
    nsfw = t.column("nsfw").to_numpy()
    for g in range(2):
        alive = np.flatnonzero((group == g) & (nsfw <= 0.5))
        if len(alive):
            assert sum(reasons[r] is None for r in alive) == 1  # one survivor among the rows still kept
    assert all(r == "nsfw_probe" for r, s in zip(reasons, nsfw, strict=True) if s > 0.5)


def test_the_pairwise_rule_is_semdedups():
    """Row j goes when max over i < j of x_i . x_j > 1 - eps, whatever happened to row i (SemDeDup's code)."""
    a = np.array([1.0, 0.0])
    b = unit(np.array([[1.0, 0.013]]))[0]  # cos(a, b) ~ 0.99992
    c = unit(np.array([[1.0, 0.026]]))[0]  # cos(a, c) ~ 0.99966, cos(b, c) ~ 0.99992
    x = np.array([a, b, c], dtype=np.float32)
    assert duplicates(x, 0.0002).tolist() == [False, True, True]  # c close enough to b (itself removed)
    assert duplicates(x, 0.00001).tolist() == [False, False, False]
    big = unit(np.random.default_rng(0).normal(size=(5000, 16))).astype(np.float32)
    big[4321] = big[17]
    assert np.flatnonzero(duplicates(big, 1e-4)).tolist() == [4321]  # across column blocks


def test_bad_config_is_a_one_line_error():
    with pytest.raises(CurateError, match="eps"):
        policy_from_dict({"steps": [{"step": "semdedup", "eps": 1.5}]})
    with pytest.raises(CurateError, match="needs columns"):
        run(pa.table({"uid": ["a" * 32]}), [STEP])
