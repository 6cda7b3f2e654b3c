"""The raw shard writer on failing storage: /dev/full stands in for a full disk (every write of a buffer
to it fails with ENOSPC), linked in place of one raw file at a time."""

from __future__ import annotations

import errno
import gc
import io
import json
import os
import sys
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from img2dataset.writer import WebDatasetSampleWriter

from curate.download.rawwriter import RawShardWriter

SCHEMA = pa.schema([("uid", pa.string()), ("key", pa.string()), ("status", pa.string())])
FULL = "/dev/full"


def _write(writer_cls, folder, n: int = 3) -> None:
    writer = writer_cls(7, str(folder), True, 5, SCHEMA, "jpg")
    try:
        for i in range(n):
            meta = {"uid": f"u{i}", "key": f"0000700{i}", "status": "success"}
            writer.write(bytes([i]) * 5000, meta["key"], f"caption {i}", meta)
    finally:
        writer.close()


def _failure(writer_cls, folder) -> tuple[int, str | None]:
    """(errno, filename) of the error `_write` raised; the error and its frames, which hold the writer, go
    (so gc can finalize it)."""
    try:
        _write(writer_cls, folder)
    except OSError as exc:
        return exc.errno, exc.filename
    raise AssertionError("the write did not fail")


@pytest.fixture
def unraisable(monkeypatch):
    """What finalizers failed with ("Exception ignored in ..."), collected after a gc pass."""
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(repr(u.exc_value)))
    yield seen


def _full(path) -> None:
    if not os.path.exists(FULL):
        pytest.skip("no /dev/full on this machine")
    os.symlink(FULL, path)


def test_same_members_and_rows_as_img2dataset_writer(tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for folder, cls in ((ours, RawShardWriter), (theirs, WebDatasetSampleWriter)):
        folder.mkdir()
        _write(cls, folder)

    def members(folder):
        with tarfile.open(folder / "00007.tar") as tar:
            return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}

    got = members(ours)
    assert got == members(theirs)
    assert sorted(got) == [f"0000700{i}.{ext}" for i in range(3) for ext in ("jpg", "json", "txt")]
    assert json.loads(got["00007001.json"])["uid"] == "u1"
    assert pq.read_table(ours / "00007.parquet").equals(pq.read_table(theirs / "00007.parquet"))


FILES = ("00007.tar", "00007.parquet")


@pytest.mark.parametrize("full", [FILES[:1], FILES[1:], FILES], ids=["tar", "parquet", "both"])
def test_a_full_disk_names_the_file_and_leaves_nothing_for_finalizers(tmp_path, full, unraisable):
    for name in full:
        _full(tmp_path / name)
    failure = _failure(RawShardWriter, tmp_path)
    gc.collect()
    assert failure[0] == errno.ENOSPC
    assert failure[1] in {f"{tmp_path}/{name}" for name in full}
    assert unraisable == []  # no tar stream or parquet writer left to write again at exit


def test_img2dataset_writer_alone_leaves_a_finalizer_traceback(tmp_path, unraisable):
    """Why the wrapper exists: on a full disk img2dataset's writer names no file, and its close stops at the
    parquet's failure with the tar stream open, whose finalizer fails again (the `Exception ignored in`
    tracebacks a user saw)."""
    for name in FILES:
        _full(tmp_path / name)
    failure = _failure(WebDatasetSampleWriter, tmp_path)
    gc.collect()
    assert failure == (errno.ENOSPC, None)
    assert unraisable, "img2dataset's writer closed everything: RawShardWriter's close may no longer be needed"


def test_the_tar_is_whole_when_only_the_parquet_failed(tmp_path, unraisable):
    _full(tmp_path / "00007.parquet")
    with pytest.raises(OSError):
        _write(RawShardWriter, tmp_path)
    with tarfile.open(fileobj=io.BytesIO((tmp_path / "00007.tar").read_bytes())) as tar:
        assert len([m for m in tar if m.isfile()]) == 9
