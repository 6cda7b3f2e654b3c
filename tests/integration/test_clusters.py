"""The cluster entry points in jobs/ on real clusters started here: a Spark standalone master and worker
(`spark-submit --master spark://127.0.0.1:PORT --py-files curate-*.whl jobs/download.py`, `jobs/dedup.py`)
and a two-node Ray cluster (`ray start --head` with the dashboard, a second `ray start --address`) that runs
`jobs/score.py`, `jobs/selection.py` and `jobs/shard.py` sent through the job API (`ray job submit
--working-dir jobs --runtime-env-json '{"py_modules": [<the wheel's curate>]}'`). curate is shipped as its
wheel, as operators do, and the jobs' logs must show that copy ran. Each stage's folder must equal, byte for
byte, a local run of the same YAML config (in-process engines); JSON files may differ only in the engine's
name and the run's path."""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import pytest
import yaml

from curate.config import from_mapping, load_yaml

_spec = importlib.util.spec_from_file_location("curate_test_clusters", Path(__file__).with_name("clusters.py"))
clusters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(clusters)

pytestmark = [pytest.mark.slow]
ROOT = Path(__file__).parents[2]
JOBS = ROOT / "jobs"
POOL_ROWS = 80  # small: at this size the time is the clusters' start-up, not the work


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """curate's wheel, built once per test session (tests/unit/test_wheel.py shares it)."""
    return clusters.build_wheel(tmp_path_factory.getbasetemp() / "curate-wheel")


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    from curate.demo.pool import PoolConfig, generate_pool
    from curate.demo.run import _free_port
    from curate.demo.server import LoopbackServer

    root = tmp_path_factory.mktemp("pool")
    port = _free_port()
    generate_pool(root, f"http://127.0.0.1:{port}", PoolConfig(n=POOL_ROWS, seed=4))
    with LoopbackServer(root / "site", port=port) as server:
        yield root, server


@pytest.fixture(scope="module")
def config(pool, tmp_path_factory) -> Path:
    root, server = pool
    path = tmp_path_factory.mktemp("cfg") / "pipeline.yaml"
    path.write_text(yaml.safe_dump({
        "download": {"input": str(Path(root) / "urls.parquet"), "shard_size": 40, "threads": 16, "timeout": 5,
                     "allow_addresses": [f"127.0.0.1:{server.port}"]},
        "score": {"clip": {"model": "tiny"}},
        "select": {"clip_fraction": None, "clip_threshold": 0.7},
        "shard": {"samples_per_shard": 20},
    }))
    return path


@pytest.fixture(scope="module")
def reference(config, tmp_path_factory) -> Path:
    """The local run: the same YAML through curate.config, in-process engines."""
    from curate.dedup.run import DedupConfig, run_dedup
    from curate.download.config import DownloadConfig
    from curate.download.run import run_download
    from curate.engines.local import LocalEngine
    from curate.engines.ray import RayEngine
    from curate.engines.spark import SparkEngine
    from curate.score.run import ScoreConfig, run_score
    from curate.select.run import SelectConfig, run_select
    from curate.shard.run import ShardConfig, run_shard

    data = load_yaml(str(config))
    run = str(tmp_path_factory.mktemp("local") / "run")
    run_download(LocalEngine(), run, from_mapping(DownloadConfig, data["download"]))
    with SparkEngine() as spark:  # dedup runs on Spark only (a local one here)
        run_dedup(spark, run, from_mapping(DedupConfig, data.get("dedup")))
    with RayEngine(address="local") as ray_engine:  # a new local Ray, never a running cluster
        run_score(ray_engine, run, from_mapping(ScoreConfig, data["score"]))
    run_select(run, from_mapping(SelectConfig, data["select"]))
    run_shard(run, from_mapping(ShardConfig, data["shard"]))
    return Path(run)


def _files(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _normalised(path: Path, run: Path) -> object:
    """A JSON file with the fields that legitimately differ between two runs taken out: the run's own
    location (select/selection.json records it) and the engine's name (`engine`, at any depth)."""
    def strip(obj: object) -> object:
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k != "engine"}
        if isinstance(obj, list):
            return [strip(v) for v in obj]
        return obj

    return strip(json.loads(path.read_text().replace(str(run), "RUN")))


def assert_same_stage(local: Path, cluster: Path, stage: str) -> None:
    a, b = _files(local / stage), _files(cluster / stage)
    assert sorted(a) == sorted(b), f"{stage}: different files"
    for name, path in a.items():
        if name.endswith(".json"):
            assert _normalised(path, local) == _normalised(b[name], cluster), f"{stage}/{name} differs"
        else:
            assert path.read_bytes() == b[name].read_bytes(), f"{stage}/{name} differs"


def _last_json(stdout: bytes) -> dict:
    return json.loads(stdout.decode().strip().splitlines()[-1])


def _last_json_text(log: str) -> dict:
    """The stage's stats line in a job's log (stdout and stderr together): the last JSON object that is not a
    progress event."""
    objects = [json.loads(line) for line in log.splitlines() if line.startswith("{") and line.rstrip().endswith("}")]
    stats = [obj for obj in objects if "event" not in obj]
    assert stats, log[-3000:]
    return stats[-1]


def _spark_jobs_on_the_cluster(config: Path, reference: Path, wheel: Path, tmp_path: Path, jobs: tuple) -> None:
    """`jobs` ((job script, stage) pairs) submitted in order to one standalone master on loopback: each is an
    application of that master with executors on its worker (curate never overrides spark-submit's master),
    the driver runs curate from the shipped wheel, and each stage equals the local run's. The stages before
    the first job are the local run's output."""
    run = tmp_path / "run"
    first = STAGES.index(jobs[0][1])
    for stage in STAGES[:first]:
        shutil.copytree(reference / stage, run / stage)
    with clusters.spark_standalone(tmp_path) as (master, state):
        for job, stage in jobs:
            if job is None:  # score is a Ray job (the Ray test): the local run's output stands in
                shutil.copytree(reference / stage, run / stage)
                continue
            out = clusters.spark_submit(master, JOBS / f"{job}.py", ["--config", str(config), "--run", str(run)],
                                        tmp_path, tmp_path / f"{job}.log", py_files=wheel)
            log = (tmp_path / f"{job}.log").read_text(errors="replace")
            assert out.returncode == 0, log[-3000:]
            assert _last_json(out.stdout)["stage"] == stage
            # the driver ran curate from the wheel spark-submit shipped, not the venv's editable install (spark-submit
            # passes the Python driver's stderr, where the job logs, to its own stdout)
            driver = out.stdout.decode(errors="replace")
            assert f"curate package: {wheel}/curate\n" in driver, driver[-3000:]
        apps = state()["completedapps"]
    submitted = [stage for job, stage in jobs if job is not None]
    assert sorted(app["name"] for app in apps) == sorted(f"curate-{stage}" for stage in submitted)
    assert all(app["cores"] >= 1 and app["state"] == "FINISHED" for app in apps)
    for stage in submitted:
        assert_same_stage(reference, run, stage)


STAGES = ("download", "dedup", "score", "select", "shard")


@pytest.mark.spark
@pytest.mark.long  # a standalone cluster and two spark-submits (~2 min): make test-long / make bench
def test_spark_standalone_runs_the_select_and_shard_jobs_on_the_cluster(config, reference, wheel, tmp_path):
    _spark_jobs_on_the_cluster(config, reference, wheel, tmp_path, (("selection", "select"), ("shard", "shard")))


@pytest.mark.spark
@pytest.mark.long  # two more spark-submits (~50 s): make test-long / make bench
def test_spark_standalone_runs_the_download_and_dedup_jobs_on_the_cluster(config, reference, wheel, tmp_path):
    _spark_jobs_on_the_cluster(config, reference, wheel, tmp_path, (("download", "download"), ("dedup", "dedup")))


@pytest.mark.ray
@pytest.mark.long  # ~2.5 min: make test-long / make bench
def test_ray_two_node_score_select_shard(config, reference, wheel, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for stage in ("download", "dedup"):  # the Spark stages' output, as the local run wrote it
        shutil.copytree(reference / stage, run / stage)
    ship = tmp_path / "ship"  # the wheel unpacked (`pip install --no-deps --target ship curate-*.whl`)
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(ship)
    runtime_env = {"py_modules": [str(ship / "curate")]}
    session = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # short: Ray's socket paths live under it
    logs = {}
    try:
        with clusters.ray_two_nodes(tmp_path, session) as (_, api):
            for script in ("score", "selection", "shard"):
                job_id = f"curate-{script}-{tmp_path.name}"
                # the driver runs on the cluster, in the unpacked working_dir: every path is absolute
                rc, info = clusters.ray_job_submit(
                    api, JOBS, ["python", f"{script}.py", "--config", str(config), "--run", str(run)], runtime_env,
                    tmp_path, tmp_path / f"{script}.log", job_id)
                submit_log = (tmp_path / f"{script}.log").read_text(errors="replace")
                assert rc == 0, submit_log[-3000:]
                assert info["status"] == "SUCCEEDED" and info["entrypoint"].startswith(f"python {script}.py"), info
                logs[script] = clusters.ray_job_logs(api, job_id, tmp_path)
    finally:
        shutil.rmtree(session, ignore_errors=True)
    for script, log in logs.items():
        # the job's driver imported curate from the runtime_env's py_modules, not from this checkout
        package = [line for line in log.splitlines() if "curate package:" in line]
        assert package and "runtime_resources" in package[0] and str(ROOT) not in package[0], log[-3000:]
        assert _last_json_text(log)["stage"] == {"selection": "select"}.get(script, script), log[-3000:]
    # the score job joined the 2-node cluster (2 CPUs, the second node's resource), not a local Ray
    assert "'second_node': 1.0" in logs["score"] and "'CPU': 2.0" in logs["score"]
    for stage in ("score", "select", "shard"):
        assert_same_stage(reference, run, stage)


def test_job_config_errors_are_one_line(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.yaml"
    bad.write_text("dedup:\n  by_urll: true\n")
    out = subprocess.run([sys.executable, str(JOBS / "dedup.py"), "--config", str(bad), "--run", str(tmp_path)],
                         capture_output=True, text=True, env=clusters.base_env(tmp_path), timeout=120)
    assert out.returncode == 2
    err = [line for line in out.stderr.splitlines() if line.startswith("curate: error:")]
    assert err and "dedup.by_urll: unknown key" in err[0] and "by_url" in err[0]
    assert "Traceback" not in out.stderr
