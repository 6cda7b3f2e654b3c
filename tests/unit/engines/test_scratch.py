"""Engine temp folders live in RUN/_scratch/<stage>-<pid> (or $CURATE_SCRATCH), are removed when the engine
stops, and a killed run's folder is removed by the next start; nothing lands in the system temp folder."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from curate.engines import scratch


@pytest.fixture(autouse=True)
def _context(monkeypatch):
    monkeypatch.delenv(scratch.ENV, raising=False)
    previous = scratch.configure(None, "curate")
    yield
    scratch.restore(previous)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_root_is_the_env_then_the_local_run_then_the_system_temp(tmp_path, monkeypatch):
    assert scratch.root(str(tmp_path / "run")) == str(tmp_path / "run" / "_scratch")
    assert scratch.root("s3://bucket/run") == scratch.system_root()
    monkeypatch.setenv(scratch.ENV, str(tmp_path / "fast"))
    assert scratch.root(str(tmp_path / "run")) == str(tmp_path / "fast")


def test_create_removes_dead_runs_folders_and_remove_leaves_no_trace(tmp_path, caplog):
    run = tmp_path / "run"
    base = run / "_scratch"
    dead, live = _dead_pid(), os.getppid()
    for name in (f"dedup-{dead}", f"score-{live}", f"select-{dead + 1_000_000}", "notes"):
        (base / name / "spark" / "blockmgr-1").mkdir(parents=True)
    (base / f"select-{dead + 1_000_000}" / ".host").write_text("elsewhere.example\n")  # another machine's
    scratch.configure(str(run), "shard")
    with caplog.at_level(logging.INFO, logger="curate.engines.scratch"):
        one = scratch.Scratch("spark")
        assert one.create() == str(base / f"shard-{os.getpid()}" / "spark")
    assert sorted(p.name for p in base.iterdir()) == sorted(
        ["notes", f"score-{live}", f"select-{dead + 1_000_000}", f"shard-{os.getpid()}"])
    assert f"removed {base / f'dedup-{dead}'}" in caplog.text and f"process {dead} is gone" in caplog.text
    assert (base / f"shard-{os.getpid()}" / ".host").read_text() == socket.gethostname() + "\n"
    one.remove()
    assert not (base / f"shard-{os.getpid()}").exists() and base.exists()  # others' folders keep _scratch
    for name in ("notes", f"score-{live}", f"select-{dead + 1_000_000}"):
        os.system(f"rm -rf {base / name}")
    two = scratch.Scratch("ray")
    two.create()
    two.remove()
    assert not base.exists()  # the last one out removes RUN/_scratch


def test_ray_falls_back_to_a_short_folder_where_the_run_is_too_deep(tmp_path, monkeypatch):
    from curate.engines.ray import ray_scratch

    monkeypatch.setenv(scratch.ENV, str(tmp_path / ("d" * 80)))
    chosen = ray_scratch()
    assert chosen is not None and not chosen.path.startswith(str(tmp_path))
    monkeypatch.setenv(scratch.ENV, "/tmp/s")
    assert ray_scratch().path == f"/tmp/s/curate-{os.getpid()}/ray"


_KILLED = """
import os, signal, sys
from curate.engines import scratch
scratch.configure(sys.argv[1], "dedup")
from curate.engines.spark import SparkEngine
with SparkEngine() as engine:
    engine.session.range(1000).repartition(3).count()
    print(os.getpid(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.spark
@pytest.mark.long  # ~15 s; in make test: the dead-pid test above and the CLI's TMPDIR check (test_cli_errors)
def test_a_killed_spark_runs_folders_are_in_scratch_and_gone_at_the_next_start(tmp_path, caplog):
    run, tmp = tmp_path / "run", tmp_path / "tmp"
    run.mkdir()
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_KILLED), str(run)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    pid = int(done.stdout.split()[0])
    left = run / "_scratch" / f"dedup-{pid}"
    assert (left / "spark").is_dir()  # spark.local.dir and the JVM's tmpdir were here
    assert [p.name for p in tmp.iterdir() if p.name.startswith(("spark-", "blockmgr-"))] == []
    scratch.configure(str(run), "score")
    with caplog.at_level(logging.INFO, logger="curate.engines.scratch"):
        nxt = scratch.Scratch("ray")
        nxt.create()
    assert not left.exists() and f"process {pid} is gone" in caplog.text
    nxt.remove()
    assert not (run / "_scratch").exists()
