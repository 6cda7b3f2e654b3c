"""An OSError (no space, permission denied, a missing path) is a one-line `curate: error:` with the path and
exit 2, not an internal error; the traceback only with -v."""

from __future__ import annotations

import errno
import logging

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
