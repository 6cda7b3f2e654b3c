"""The accounting identity when the repetition plan repeats samples or gives some none."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate.audit import audit
from curate.io import dataset, fs
from curate.shard.run import ShardConfig, run_shard
from curate.shard.synthetic import SyntheticRun, make_run


def _run(tmp_path, config: ShardConfig) -> str:
    run = str(tmp_path / "run")
    make_run(run, SyntheticRun(n=30, per_shard=10))
    for name in dataset.list_parts(fs.join(run, "download", "samples")):  # the planned input, shard by shard
        uids = dataset.read_part(fs.join(run, "download", "samples", name), ["uid"]).column("uid")
        fs.write_table(pa.table({"uid": uids, "url": [f"http://127.0.0.1/{u}.jpg" for u in uids.to_pylist()],
                                 "caption": ["c"] * len(uids)}), fs.join(run, "download", "urls", name), schema="urls")
    run_shard(run, config)
    return run


def test_materialised_copies_count_once(tmp_path):
    result = audit(_run(tmp_path, ShardConfig(samples_per_shard=16, passes=3)))
    assert result.ok, result.problems
    assert result.kept == 30 and result.stages["shard"]["rejected"] == {}


@pytest.mark.parametrize("budget", [1, 12, 29])
def test_samples_the_plan_leaves_out_are_rejected_with_a_reason(tmp_path, budget):
    result = audit(_run(tmp_path, ShardConfig(samples_per_shard=16, samples_seen=budget)))
    assert result.ok, result.problems
    assert result.kept == budget
    assert result.rejected["zero_repetitions"] == 30 - budget
    assert result.input_rows == result.kept + sum(result.rejected.values())


def test_a_sample_missing_from_the_manifest_is_not_explained_away(tmp_path):
    import pyarrow.parquet as pq

    run = _run(tmp_path, ShardConfig(samples_per_shard=16, samples_seen=20))
    parts = sorted((tmp_path / "run" / "shard").glob("manifest*/*.parquet")) or [
        tmp_path / "run" / "shard" / "manifest.parquet"]
    # one planned sample lost, beside 10 planned out; written as a stage writes it (with its checksum sidecar)
    dataset.write_part(pq.read_table(parts[0]).slice(1), str(parts[0]))
    result = audit(run)
    assert not result.ok
    assert any("neither kept nor rejected" in p for p in result.problems)


@pytest.mark.spark
def test_spark_counts_what_this_process_counts(spark_engine, tmp_path):
    run = _run(tmp_path, ShardConfig(samples_per_shard=16, samples_seen=20))
    assert audit(run, spark_engine).to_dict() == audit(run).to_dict()
    parts = sorted((tmp_path / "run" / "shard").glob("manifest*/*.parquet")) or [
        tmp_path / "run" / "shard" / "manifest.parquet"]
    import pyarrow.parquet as pq

    dataset.write_part(pq.read_table(parts[0]).slice(1), str(parts[0]))
    broken = audit(run, spark_engine)
    assert not broken.ok and broken.to_dict() == audit(run).to_dict()
