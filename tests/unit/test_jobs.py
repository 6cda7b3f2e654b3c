"""jobs/ entry points take the stage commands' --redo and --force-unlock, applied by the CLI's own code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curate.errors import CurateError
from curate.io import lock

sys.path.insert(0, str(Path(__file__).parents[2] / "jobs"))
import _common  # noqa: E402


@pytest.fixture(autouse=True)
def _scratch_context():
    """parse() sets the scratch context for this process (as a job's driver does); the tests put it back."""
    from curate.engines import scratch

    previous = scratch.configure(None, "curate")
    yield
    scratch.restore(previous)


def _setup(tmp_path) -> tuple[str, Path]:
    run = tmp_path / "run"
    for stage in ("dedup", "select", "shard"):
        (run / stage).mkdir(parents=True)
        (run / stage / "_SUCCESS").write_text("")
    config = tmp_path / "pipeline.yaml"
    config.write_text(f"run: {run}\n")
    return str(config), run


def test_redo_removes_the_stage_and_later_ones(tmp_path):
    config, run = _setup(tmp_path)
    assert _common.parse("select", ["--config", config]) == (str(run), {"run": str(run)})
    assert (run / "select").exists()
    _common.parse("select", ["--config", config, "--redo"])
    assert sorted(p.name for p in run.iterdir()) == ["dedup"]


def test_a_live_runs_lock_is_refused_unless_force_unlock(tmp_path):
    config, run = _setup(tmp_path)
    (run / "select" / "_SUCCESS").unlink()
    (run / "select" / lock.LOCK).write_text(json.dumps({"owner": "someone", "host": "elsewhere.example",
                                                        "pid": 1, "started": "2026-01-01T00:00:00+00:00"}))
    with pytest.raises(CurateError, match="locked by another run"):
        _common.parse("select", ["--config", config])
    _common.parse("select", ["--config", config, "--force-unlock"])
    assert not (run / "select" / lock.LOCK).exists()


def test_the_jobs_help_lists_the_flags():
    text = _common.parser("shard").format_help()
    assert "--redo" in text and "--force-unlock" in text and "RUN/shard" in text


def test_an_engine_failure_is_one_line_and_exit_2(capsys):
    class Py4JJavaError(Exception):  # as py4j's prints: the JVM's message, the worker's Python traceback in it
        pass

    Py4JJavaError.__module__ = "py4j.protocol"

    def job():
        raise Py4JJavaError("An error occurred while calling o42.collect.\n: org.apache.spark.SparkException: Job "
                            "aborted\nTraceback (most recent call last):\n  File \"x.py\", line 1\n"
                            "curate.errors.CurateError: dedup: cannot read /r/00001.tar: unexpected end of data\n")

    assert _common.main(job) == 2
    assert capsys.readouterr().err == "curate: error: dedup: cannot read /r/00001.tar: unexpected end of data\n"
    with pytest.raises(KeyError):
        _common.main(lambda: {}["x"])


JOBS = Path(__file__).parents[2] / "jobs"


def test_a_job_leaves_like_the_cli(tmp_path):
    """A job script's failure: one line, status 2, after its threads and atexit handlers (curate.cli.leave)."""
    script = (f"import atexit, sys; sys.path.insert(0, {str(JOBS)!r}); import _common\n"
              "atexit.register(lambda: print('atexit ran', flush=True))\n"
              "from curate.errors import CurateError\n"
              "def job():\n    raise CurateError('no such run')\n"
              "_common.run(job)\nprint('not reached')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout, result.stderr) == (2, "atexit ran\n", "curate: error: no such run\n")
    missing = tmp_path / "none.yaml"
    result = subprocess.run([sys.executable, str(JOBS / "shard.py"), "--config", str(missing)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("curate: error:") and str(missing) in result.stderr
