"""An OSError (no space, permission denied, a missing path) is a one-line `curate: error:` with the path and
exit 2, not an internal error; so is a failure inside Spark or Ray workers (the input and the cause); the
traceback only with -v."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys

import pytest

import curate.select.run
from curate.cli import main, os_error_text


@pytest.mark.parametrize("exc, text", [
    (PermissionError(errno.EACCES, "Permission denied", "/runs/a/select/_LOCK"),
     "Permission denied: /runs/a/select/_LOCK"),
    (OSError(errno.ENOSPC, "No space left on device", "/runs/a/shard/00001.tar"),
     "No space left on device: /runs/a/shard/00001.tar"),
    (OSError(errno.EROFS, "Read-only file system", "/ro/x.tmp", None, "/ro/x"),
     "Read-only file system: /ro/x.tmp -> /ro/x"),
    (FileNotFoundError("s3://bucket/run/score"), "s3://bucket/run/score"),  # s3fs: no errno, the path as text
])
def test_os_error_text_names_the_path(exc, text):
    assert os_error_text(exc) == text


def test_main_prints_an_os_error_on_one_line_and_exits_2(tmp_path, monkeypatch, capsys, caplog):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "select" / "uids.npy"))

    monkeypatch.setattr(curate.select.run, "run_select", full)
    assert main(["select", str(tmp_path), "--engine", "local"]) == 2
    err = capsys.readouterr().err
    assert err == f"curate: error: No space left on device: {tmp_path / 'select' / 'uids.npy'}\n"
    assert "Traceback" not in caplog.text
    with caplog.at_level(logging.ERROR, logger="curate"):
        assert main(["-v", "select", str(tmp_path), "--engine", "local"]) == 2
    assert "Traceback" in caplog.text and "No space left on device" in caplog.text


def _truncated_run(root) -> tuple[str, str]:
    """A run ready for dedup (with --redo) and score whose second download tar was cut short: (run, tar)."""
    from curate.score.synthetic import SyntheticRun, make_run

    run = root / "run"
    make_run(str(run), SyntheticRun(n=12, shards=2, corrupt=0, seed=1))
    tar = run / "download" / "shards" / "00001.tar"
    tar.write_bytes(tar.read_bytes()[:1500])
    return str(run), str(tar)


def _curate(run: str, tmp: str, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TMPDIR": tmp}
    env.pop("CURATE_SCRATCH", None)
    return subprocess.run([sys.executable, "-m", "curate.cli", *argv], env=env, capture_output=True, text=True,
                          timeout=300)


def _engine_litter(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(("spark-", "blockmgr-", "ray", "curate")))


@pytest.mark.parametrize("stage", ["dedup", "score"])
def test_a_truncated_tar_fails_the_stage_in_one_line_naming_it(tmp_path, stage):
    """The CLI as a user runs it: the last line names the tar and the cause, exit 2, no traceback without -v;
    the engine's temp folders were in RUN/_scratch (not in TMPDIR) and are gone after the run."""
    run, tar = _truncated_run(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = _curate(run, str(tmp), stage, run, *(["--redo"] if stage == "dedup" else []))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == f"curate: error: {stage}: cannot read {tar}: unexpected end of data"
    assert "Traceback" not in done.stderr
    assert _engine_litter(tmp) == []
    assert not (tmp_path / "run" / "_scratch").exists()


def test_verbose_shows_the_worker_traceback_of_an_engine_failure(spark_engine, tmp_path, caplog, capsys):
    """In this process (the CLI's engine reuses the tests' active Spark session), with -v."""
    run, tar = _truncated_run(tmp_path)
    with caplog.at_level(logging.ERROR, logger="curate"):
        assert main(["-v", "dedup", run, "--redo"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"curate: error: dedup: cannot read {tar}: unexpected end of data")
    assert "Traceback" in caplog.text and "00001.tar" in caplog.text
