"""Repeated identical failures are logged once in full, then counted ("... and N more like it")."""

from __future__ import annotations

import errno
import logging

import pytest

from curate.download.shardloop import CuratedDownloader
from curate.repeats import Repeats, kind

log = logging.getLogger("curate.test_repeats")


def _raised(exc: Exception) -> Exception:
    try:  # raised, so it has a traceback to log
        raise exc
    except Exception as got:
        return got


def _full(path: str) -> OSError:
    return _raised(OSError(errno.ENOSPC, "No space left on device", path))


def test_the_first_of_a_kind_is_logged_with_its_traceback_then_counted(caplog):
    repeats = Repeats(log, "shard 3: sample")
    with caplog.at_level(logging.ERROR, logger=log.name):
        for i in range(600):
            repeats.failed(f"{i:09d}", _full(f"/run/download/_raw/00003/{i}.jpg"))
        repeats.failed("000000601", _raised(ValueError("bad value 7")))
        assert repeats.flush() == {"No space left on device: /run/download/_raw/00003/0.jpg": 600,
                                   "ValueError: bad value 7": 1}
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "shard 3: sample 000000000 failed: No space left on device: /run/download/_raw/00003/0.jpg",
        "shard 3: sample 000000601 failed: ValueError: bad value 7",
        "shard 3: sample: ... and 599 more like it (No space left on device: /run/download/_raw/00003/0.jpg)",
    ]
    assert caplog.records[0].exc_info is not None and caplog.records[1].exc_info is not None
    assert caplog.text.count("Traceback") == 2
    assert repeats.flush() == {}  # flushed: forgotten


def test_alike_means_same_type_and_errno_or_message_up_to_numbers():
    assert kind(_full("/a")) == kind(_full("/b")) != kind(OSError(errno.EACCES, "Permission denied", "/a"))
    assert kind(ValueError("row 3 bad")) == kind(ValueError("row 41 bad")) != kind(ValueError("other"))
    assert kind(ValueError("x")) != kind(KeyError("x"))


def _downloader(fetch_one) -> CuratedDownloader:
    d = object.__new__(CuratedDownloader)  # just what _sample uses
    d.column_list, d.compute_hash = ["uid", "url", "caption"], "sha256"
    d._fetch_one = fetch_one
    return d


def test_a_sample_that_fails_is_a_row_once_logged_but_a_full_disk_stops_the_shard(caplog):
    def refused(row, meta, *args):
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    repeats = Repeats(log, "shard 0: sample")
    with caplog.at_level(logging.ERROR, logger=log.name):
        for i in range(5):
            img, meta = _downloader(refused)._sample({"uid": str(i), "url": "u"}, f"k{i}", None, None, None, repeats)
            assert img is None and meta["status"] == "download_error"
        repeats.flush()
    assert [r.getMessage() for r in caplog.records] == [
        "shard 0: sample k0 failed: Connection refused", "shard 0: sample: ... and 4 more like it (Connection refused)"]

    def full(row, meta, *args):
        raise _full("/run/download/consent/h.json")

    with pytest.raises(OSError, match="No space left on device"):
        _downloader(full)._sample({"uid": "1", "url": "u"}, "k1", None, None, None, repeats)
