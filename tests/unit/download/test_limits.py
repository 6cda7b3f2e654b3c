"""The fetch limits at the urllib level (the opener each worker installs), against the misbehaving server."""

from __future__ import annotations

import io
import time
import urllib.error

import pytest

from curate.download.guard import BLOCKED_PREFIX, AddressPolicy, build_opener
from curate.download.limits import DEADLINE_PREFIX, TOO_LARGE_PREFIX, BodyTooLarge, FetchLimits, PixelCap


def _opener(server, **kw):
    return build_opener(AddressPolicy((f"127.0.0.1:{server.port}",)), FetchLimits(**kw))


def test_deadline_is_total_not_per_socket(bad_server):
    opener = _opener(bad_server, deadline=0.5)
    start = time.monotonic()
    with pytest.raises(OSError, match=f"{DEADLINE_PREFIX}|timed out"):  # each byte comes well within 5 s
        with opener.open(f"{bad_server.base}/slow-body", timeout=5) as r:
            r.read()
    assert time.monotonic() - start < 3


def test_body_cap_while_reading_and_from_content_length(bad_server):
    opener = _opener(bad_server, max_body_bytes=100_000)
    with pytest.raises(BodyTooLarge, match=TOO_LARGE_PREFIX), opener.open(f"{bad_server.base}/endless") as r:
        r.read()
    with pytest.raises(BodyTooLarge, match="Content-Length 1000000000"):
        opener.open(f"{bad_server.base}/huge-declared")
    with opener.open(f"{bad_server.base}/img/ok.jpg") as r:  # under the cap: the whole body
        assert r.read()[:2] == b"\xff\xd8"


def test_retries_back_off_and_stop(bad_server):
    opener = _opener(bad_server, retries=3, backoff=0.05, backoff_max=0.1)
    start = time.monotonic()
    with opener.open(f"{bad_server.base}/flaky/k/3") as r:
        assert r.status == 200
    assert bad_server.hits["/flaky/k/3"] == 4
    assert time.monotonic() - start >= 0.05 + 0.1 + 0.1  # backoff doubled, capped
    with pytest.raises(urllib.error.HTTPError, match="404"):
        opener.open(f"{bad_server.base}/missing")
    assert bad_server.hits["/missing"] == 1
    with pytest.raises(urllib.error.URLError, match=BLOCKED_PREFIX):
        opener.open(f"{bad_server.base}/to?url=http://169.254.169.254/")
    assert bad_server.hits["/to"] == 1  # a refusal is final


def test_pixel_cap_refuses_before_the_resizer_runs(bad_server):
    from PIL import Image

    calls = []
    capped = PixelCap(lambda stream, bbox=None: calls.append(1) or ("ok", 1, 1, 1, 1, None), max_pixels=100 * 100)
    big, small = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (200, 100)).save(big, "PNG")
    Image.new("RGB", (100, 100)).save(small, "PNG")
    assert capped(big)[-1].startswith(TOO_LARGE_PREFIX) and calls == []
    assert capped(small)[-1] is None and calls == [1]
    assert capped(io.BytesIO(b"not an image"))[-1] is None  # left to the resizer to call a decode error
