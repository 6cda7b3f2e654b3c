"""The same policy gives the same decisions on Spark and in-process; the engines' exact k-th search."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.engines.local import LocalEngine
from curate.select.execute import select_frame, widen_halves
from curate.select.policy import policy_from_dict

POLICIES = [
    {"target_size": 23, "steps": ["datacomp_basic", {"step": "clip_score", "column": "clip_vit_l_14"}]},
    {"steps": [{"step": "clip_score", "fraction": 0.3}, {"step": "datacomp_image", "reference": "REF", "k": 6,
                                                         "train_rows": 150}]},
    {"steps": [{"step": "dfn"}, {"step": "language_rebalance", "targets": {"de": 0.3}}]},
    {"steps": [{"step": "metaclip", "t": 8}, {"step": "probe", "column": "nsfw", "max_value": 0.7}]},
    {"target_size": 11, "steps": ["laion_clip"]},
    {"steps": [{"step": "metaclip", "match": "metaclip", "t": 5},
               {"step": "semdedup", "eps": 0.3, "k": 4, "train_rows": 150, "niter": 10}]},
    {"steps": ["datacomp_basic", {"step": "semdedup", "eps": 0.2, "k": 3, "train_rows": 100, "niter": 10}]},
]


def _decisions(engine, frame, data):
    out, resolved = select_frame(engine, frame, policy_from_dict(data))
    table = engine.to_arrow(out).sort_by([("uid", "ascending")])
    return table.select(["uid", "_reason", "_step", "_weight"]).to_pylist(), resolved


@pytest.mark.spark
@pytest.mark.slow
def test_spark_and_in_process_decide_identically(pool, tmp_path):
    from curate.engines.spark import SparkEngine

    ref = tmp_path / "ref.npy"
    np.save(ref, np.array(pool.column("image_embedding").to_pylist(), dtype=np.float32)[:4])
    with SparkEngine() as spark:
        frame = spark.from_arrow(widen_halves(pool))
        for data in POLICIES:
            data = {**data, "steps": [{**s, "reference": str(ref)} if isinstance(s, dict) and "reference" in s
                                      else s for s in data["steps"]]}
            local, resolved_local = _decisions(LocalEngine(), pool, data)
            remote, resolved_remote = _decisions(spark, frame, data)
            assert remote == local, data
            assert resolved_remote == resolved_local
            assert sum(r["_reason"] is None for r in local) == data.get("target_size", sum(
                r["_reason"] is None for r in local))


@pytest.mark.spark
def test_spark_kth_largest_is_exact_with_a_narrow_band():
    from curate.engines.spark import SparkEngine

    rng = np.random.default_rng(1)
    n = 5000
    table = pa.table({"uid": [f"{i:032x}" for i in rng.permutation(n)],
                      "s": np.round(rng.normal(size=n), 1).astype(np.float32)})  # heavy ties
    table = table.append_column("r", pa.array([None if i % 3 else "x" for i in range(n)], pa.string()))
    with SparkEngine() as spark:
        frame = spark.from_arrow(table)
        for k in (1, 17, 1000, 3333):
            assert spark.kth_largest(frame, "s", k, "r", band_rows=5) == LocalEngine().kth_largest(table, "s", k, "r")
