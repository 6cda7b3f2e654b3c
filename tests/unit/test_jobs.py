"""jobs/ entry points take the stage commands' --redo and --force-unlock, applied by the CLI's own code."""

from __future__ import annotations

import json
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
