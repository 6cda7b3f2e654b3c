"""The shard program gives the same bytes wherever it runs: in this process (the fast path at demo size),
on Spark and on Ray, and whether the samples' bytes travel through the engine's shuffle or each output tar
gathers its byte ranges from the source tars itself."""

import json
from pathlib import Path

import pytest

from curate.shard.run import ShardConfig, run_shard
from curate.shard.synthetic import SyntheticRun, make_run

# repeats (passes 1.5: auto streams), weights, refusals, a remainder cut and blocks cut under the byte cap
STREAMED = ShardConfig(samples_per_shard=16, seed=3, passes=1.5, max_shard_bytes=12_000)
MATERIALISED = ShardConfig(samples_per_shard=16, seed=3, passes=1.5, max_shard_bytes=12_000,
                           repetition="materialised")
RUN = SyntheticRun(weights=True, safety_every=7)


def _outputs(run) -> dict[str, bytes]:
    """What a trainer and the loader read: tars and their stats, manifest and stream parts, sizes, plan."""
    shard = Path(run) / "shard"
    out = {str(p.relative_to(shard)): p.read_bytes() for p in sorted(shard.rglob("*")) if p.is_file()
           and (p.suffix in (".tar", ".parquet") or p.name.endswith("_stats.json") and p.name != "_stats.json"
                or p.name in ("sizes.json", "plan.json"))}
    assert not (shard / "_work").exists()
    return out


def _check_layout(files: dict[str, bytes], streamed: bool) -> None:
    """The outputs really exercise what the comparison is about: cut blocks, several parts, the stream."""
    plan = json.loads(files["plan.json"])
    assert plan["repetition"] == ("streamed" if streamed else "materialised")
    assert plan["cut_blocks"] > 0 and plan["tars"] > plan["blocks"] > 1
    assert sum(n.startswith("manifest/part-") for n in files) == plan["blocks"]
    assert sum(n.startswith("stream/part-") for n in files) == (plan["stream_blocks"] if streamed else 0)
    assert sum(n.endswith(".tar") for n in files) == plan["tars"] == len(json.loads(files["sizes.json"]))


def _local(tmp_path, name, cfg, move_bytes=None):
    make_run(str(tmp_path / name), RUN)
    run_shard(str(tmp_path / name), cfg, move_bytes=move_bytes)
    return _outputs(tmp_path / name)


@pytest.mark.parametrize("cfg", [STREAMED, MATERIALISED], ids=["streamed", "materialised"])
def test_moving_the_bytes_through_the_shuffle_writes_the_same_bytes(tmp_path, cfg):
    gathered = _local(tmp_path, "gathered", cfg, move_bytes=False)
    moved = _local(tmp_path, "moved", cfg, move_bytes=True)
    _check_layout(gathered, cfg.repetition != "materialised")
    assert moved == gathered


@pytest.mark.spark
def test_spark_writes_the_in_process_bytes(tmp_path, spark_engine):
    """Both layouts on Spark, the streamed one with the bytes carried by Spark's shuffle."""
    for cfg, move in ((STREAMED, True), (MATERIALISED, False)):
        want = _local(tmp_path, f"local-{cfg.repetition}", cfg)
        run = tmp_path / f"spark-{cfg.repetition}"
        make_run(str(run), RUN)
        stats = run_shard(str(run), cfg, spark_engine, move_bytes=move)
        assert stats["engine"] == "spark"
        assert _outputs(run) == want, cfg.repetition


@pytest.mark.ray
@pytest.mark.long  # ~50 s of Ray start-up and actors: make test-long; Spark's bytes are checked in CI
def test_ray_writes_the_in_process_bytes(tmp_path):
    from curate.engines.ray import RayEngine

    want = _local(tmp_path, "local", STREAMED)
    make_run(str(tmp_path / "ray"), RUN)
    with RayEngine(num_cpus=2) as engine:
        stats = run_shard(str(tmp_path / "ray"), STREAMED, engine, move_bytes=True)
    assert stats["engine"] == "ray"
    assert _outputs(tmp_path / "ray") == want
