"""A stage's `_LOCK`: atomic on local disk and on S3 (a real S3 API: moto's server on loopback), one-line
errors naming the holder, stale locks taken over, released after `_SUCCESS` and after a failure."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from dataclasses import dataclass

import pytest

from curate.cli import main as cli_main
from curate.errors import CurateError
from curate.io import lock
from curate.io.stagedir import StageDir


@dataclass(frozen=True)
class Cfg:
    a: int = 1


def _write_lock(path, **record) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"owner": "someone", "started": "2026-01-01T00:00:00+00:00", **record}))


def test_second_acquisition_in_another_process_fails_naming_the_owner(tmp_path):
    path = tmp_path / "run" / "select" / lock.LOCK
    held = lock.acquire(str(path), "select")
    record = json.loads(path.read_text())
    assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
    assert set(record) == {"owner", "host", "pid", "started"}
    code = f"from curate.io.lock import acquire; acquire({str(path)!r}, 'select')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert f"pid {os.getpid()}" in out.stderr and record["owner"] in out.stderr and "--force-unlock" in out.stderr
    held.release()
    assert not path.exists()
    out = subprocess.run([sys.executable, "-c", code + "; print('taken')"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "taken" in out.stdout
    assert path.exists()  # the other process ended without releasing: the stale case, taken over below


def test_lock_of_a_dead_process_on_this_host_is_taken_over(tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "select" / lock.LOCK
    _write_lock(path, host=socket.gethostname(), pid=dead.pid)
    with caplog.at_level(logging.WARNING, logger="curate.io.lock"):
        held = lock.acquire(str(path), "select")
    assert json.loads(path.read_text())["pid"] == os.getpid()
    assert f"pid {dead.pid}" in caplog.text and "stale" in caplog.text
    held.release()
    assert not path.exists()


@pytest.mark.parametrize("host_is_ours", [True, False])
def test_live_or_foreign_lock_is_not_taken_over(tmp_path, host_is_ours):
    path = tmp_path / "select" / lock.LOCK
    # a live pid on this host (our parent), or any pid on another host (we cannot tell whether it lives)
    _write_lock(path, host=socket.gethostname() if host_is_ours else "elsewhere.example", pid=os.getppid())
    with pytest.raises(CurateError, match=rf"locked by another run: someone on .*pid {os.getppid()}, started 2026"):
        lock.acquire(str(path), "select")
    assert json.loads(path.read_text())["owner"] == "someone"


def test_an_empty_lock_file_is_an_unknown_holder_not_a_free_lock(tmp_path):
    path = tmp_path / "select" / lock.LOCK
    path.parent.mkdir()
    path.write_bytes(b"")  # killed between creating the file and writing it
    with pytest.raises(CurateError, match="locked by another run: an unknown run .*--force-unlock"):
        lock.acquire(str(path), "select")


def test_stage_lock_is_held_while_working_and_gone_after_finish_and_after_an_error(tmp_path):
    run = str(tmp_path)
    sd, finished = StageDir.start(run, "dedup", config=Cfg())
    assert finished is None and (tmp_path / "dedup" / lock.LOCK).exists()
    with pytest.raises(CurateError, match="locked by another run"):  # the same process, a second start
        StageDir.start(run, "dedup", config=Cfg())
    with sd:
        sd.finish({"stage": "dedup"})
        assert (tmp_path / "dedup" / "_SUCCESS").exists() and not (tmp_path / "dedup" / lock.LOCK).exists()
    with pytest.raises(RuntimeError), StageDir.start(run, "score", config=Cfg())[0]:
        assert (tmp_path / "score" / lock.LOCK).exists()
        raise RuntimeError("boom")
    assert not (tmp_path / "score" / lock.LOCK).exists() and not (tmp_path / "score" / "_SUCCESS").exists()
    # a finished stage returns its stats without taking the lock
    _write_lock(tmp_path / "dedup" / lock.LOCK, host="elsewhere.example", pid=1)
    assert StageDir.start(run, "dedup", config=Cfg())[1] == {"stage": "dedup"}


def test_a_real_stage_releases_its_lock_when_it_fails(tmp_path):
    from curate.select.run import SelectConfig, run_select

    (tmp_path / "score").mkdir()
    (tmp_path / "score" / "_SUCCESS").write_bytes(b"")  # finished, but with no tables: select fails reading them
    with pytest.raises(CurateError, match="no scored samples"):
        run_select(str(tmp_path), SelectConfig(engine="local"))
    assert (tmp_path / "select").is_dir() and not (tmp_path / "select" / lock.LOCK).exists()


def test_cli_refuses_a_held_lock_and_force_unlock_removes_it(tmp_path, capsys, monkeypatch):
    (tmp_path / "score").mkdir()
    (tmp_path / "score" / "_SUCCESS").write_bytes(b"")
    path = tmp_path / "select" / lock.LOCK
    _write_lock(path, host="elsewhere.example", pid=4242)
    import curate.select.run

    def no_engine(*args, **kwargs):
        raise AssertionError("the stage started although another run holds its lock")

    with monkeypatch.context() as m:
        m.setattr(curate.select.run, "run_select", no_engine)  # refused before the stage (and its engine) starts
        assert cli_main(["select", str(tmp_path), "--engine", "local"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "curate: error: select:" in err
    assert "someone on elsewhere.example, pid 4242, started 2026-01-01" in err and "--force-unlock" in err
    cli_main(["select", str(tmp_path), "--engine", "local", "--force-unlock"])  # fails later: no tables
    err = capsys.readouterr().err
    assert "locked by another run" not in err and not path.exists()


@pytest.fixture(scope="module")
def s3_run(moto_s3):
    _, s3 = moto_s3
    s3.mkdir("bucket")
    return "s3://bucket/run", s3


def test_s3_lock_is_a_conditional_put(s3_run, caplog):
    run, s3 = s3_run
    with caplog.at_level(logging.WARNING, logger="curate.io.lock"):
        sd, _ = StageDir.start(run, "select", config=Cfg())
    assert "no atomic create" not in caplog.text  # S3 takes the conditional-put path
    record = json.loads(s3.cat_file("bucket/run/select/_LOCK"))
    assert record["pid"] == os.getpid()
    with pytest.raises(CurateError, match=rf"bucket/run/select is locked by another run: .*pid {os.getpid()}"):
        StageDir.start(run, "select", config=Cfg())
    # the put itself is refused by the store, not by an exists-check of ours
    assert lock._create(f"{run}/select/_LOCK", b"{}") is False
    sd.finish({"stage": "select"})
    assert not s3.exists("bucket/run/select/_LOCK") and s3.exists("bucket/run/select/_SUCCESS")
    assert lock._create(f"{run}/other/_LOCK", b"{}") is True
