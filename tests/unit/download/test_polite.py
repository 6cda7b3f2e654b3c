"""Politeness per host: the schedule on an injected clock (concurrency, rate, Retry-After, exponential backoff,
give-up), then against the loopback server: a 429 storm with Retry-After, a host that asks to be left alone,
and the per-host and per-error-class counts of the run's stats."""

from __future__ import annotations

import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.download.config import DownloadConfig
from curate.download.failures import error_class
from curate.download.polite import HostGaveUp, PoliteConfig, Politeness, retry_after
from curate.download.run import run_download
from curate.engines.local import LocalEngine


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def _polite(**kw) -> tuple[Politeness, FakeClock]:
    clock = FakeClock()
    return Politeness(PoliteConfig(**kw), clock=clock, sleep=clock.sleep, wall=lambda: 1000.0, record=True), clock


def test_backoff_doubles_per_failure_and_retry_after_wins_when_longer():
    p, clock = _polite(backoff=0.5, backoff_max=3.0, give_up_after=0)
    for _ in range(5):
        p.acquire("h")
        p.release("h", failed=True)
    assert clock.slept == [0.5, 1.0, 2.0, 3.0]  # 0.5 x 2^(k-1), capped at backoff_max
    p.acquire("h")
    p.release("h", failed=True, wait=10.0)  # the server's Retry-After beats the backoff
    p.acquire("h")
    assert clock.slept[-1] == 10.0
    p.release("h", failed=False)  # a success ends the streak: the next start waits nothing
    before = len(clock.slept)
    p.acquire("h")
    assert len(clock.slept) == before
    p.acquire("other")  # per host: another host never waited for this one's trouble
    assert [e for h, e, _ in p.log if h == "other"] == ["start"]


def test_host_is_given_up_after_failures_in_a_row_or_a_long_retry_after():
    p, _ = _polite(backoff=0.0, give_up_after=3)
    for _ in range(3):
        p.acquire("h")
        p.release("h", failed=True)
    assert p.gave_up("h") == "3 failures in a row"
    with pytest.raises(HostGaveUp):
        p.acquire("h")
    p, _ = _polite(retry_after_max=60)
    p.acquire("h")
    p.release("h", failed=True, wait=3600)
    assert "Retry-After of 3600 s" in p.gave_up("h")


def test_rate_cap_spaces_request_starts():
    p, clock = _polite(rate=4.0)
    for _ in range(4):
        p.acquire("h")
        p.release("h", failed=False)
    starts = [t for h, e, t in p.log if e == "start"]
    assert starts == [0.0, 0.25, 0.5, 0.75]


def test_concurrency_cap_blocks_the_next_request_until_one_ends():
    p = Politeness(PoliteConfig(concurrency=2))
    p.acquire("h")
    p.acquire("h")
    got = threading.Event()
    t = threading.Thread(target=lambda: (p.acquire("h"), got.set()))
    t.start()
    assert not got.wait(0.3)  # a third request waits for a slot
    p.release("h", failed=False)
    assert got.wait(5)
    t.join()


def test_retry_after_reads_seconds_and_dates():
    assert retry_after("7", 0.0) == 7.0
    assert retry_after("Thu, 01 Jan 1970 00:01:40 GMT", 40.0) == 60.0
    assert retry_after("soon", 0.0) is None and retry_after(None, 0.0) is None


def _run(tmp_path, server, urls: list[str], name: str = "run", **kw):
    pq.write_table(pa.table({"url": urls, "caption": [f"c{i}" for i in range(len(urls))]}),
                   tmp_path / f"{name}.parquet")
    defaults = {"shard_size": 4, "threads": 4, "timeout": 5, "deadline": 5,
                "allow_addresses": (f"127.0.0.1:{server.port}",)}
    config = DownloadConfig(input=str(tmp_path / f"{name}.parquet"), **(defaults | kw))
    stats = run_download(LocalEngine(), str(tmp_path / name), config)
    rows = {r["url"]: r for r in pq.read_table(tmp_path / name / "download" / "samples").to_pylist()}
    return stats, rows


def test_429_storm_with_retry_after_is_waited_out(bad_server, tmp_path):
    # every request to /storm/6/1 gets 429 + Retry-After: 1 until six have been refused, then an image
    urls = [f"{bad_server.base}/storm/6/1?i={i}" for i in range(4)]
    start = time.monotonic()
    stats, rows = _run(tmp_path, bad_server, urls, retries=4, host_concurrency=2, retry_backoff=0.05)
    took = time.monotonic() - start
    assert {r["status"] for r in rows.values()} == {"success"}
    assert bad_server.hits["/storm/6/1"] == 6 + 4  # no request more than needed: none while told to wait
    assert bad_server.max_in_flight <= 2 + 1  # the host cap (robots.txt/tdmrep.json come before, one at a time)
    assert took >= 2.0  # six 429s, two at a time: at least three Retry-After waits of 1 s in a row (minus one)


def test_a_host_asking_to_be_left_alone_is_given_up(bad_server, tmp_path):
    b, other = bad_server.base, f"http://localhost:{bad_server.port}"
    urls = [f"{other}/always/429/3600?i={i}" for i in range(5)] + [f"{b}/img/fine-{i}.jpg" for i in range(3)]
    stats, rows = _run(tmp_path, bad_server, urls, threads=1, retry_after_max=60)
    statuses = [rows[u]["status"] for u in urls]
    assert statuses[0] == "http_error" and "429" in rows[urls[0]]["error"]
    assert statuses[1:5] == ["host_gave_up"] * 4 and statuses[5:] == ["success"] * 3
    assert bad_server.hits["/always/429/3600"] == 1  # one answer said stay away an hour: nobody asked again
    assert "Retry-After of 3600 s" in rows[urls[1]]["error"]
    failures = stats["failures"]
    assert failures["by_class"] == {"host_gave_up": 4, "http_429": 1}
    assert failures["top_hosts"] == [{"host": "localhost", "rows": 5, "failed": 5}]


def test_failures_are_counted_per_error_class(bad_server, tmp_path):
    b = bad_server.base
    urls = [f"{b}/missing", f"{b}/always/503/none", f"{b}/reset", f"{b}/slow-body", f"{b}/img/ok.jpg",
            "http://no-such-host.invalid/x.jpg"]
    stats, rows = _run(tmp_path, bad_server, urls, shard_size=10, deadline=1.0, host_give_up=0, robots=False,
                       tdmrep=False)
    by_class = stats["failures"]["by_class"]
    assert by_class["http_404"] == 1 and by_class["http_503"] == 1 and by_class["timeout"] == 1
    assert by_class["dns"] == 1 and by_class["connect"] == 1
    assert sum(by_class.values()) == 5 and stats["kept"] == 1
    hosts = {h["host"]: h for h in stats["failures"]["top_hosts"]}
    assert hosts["127.0.0.1"] == {"host": "127.0.0.1", "rows": 5, "failed": 4}


@pytest.mark.parametrize(("status", "error", "expected"), [
    ("network_error", "<urlopen error [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed>", "tls"),
    ("network_error", "<urlopen error [Errno -2] Name or service not known>", "dns"),
    ("network_error", "<urlopen error [Errno 111] Connection refused>", "connect"),
    ("http_error", "HTTP Error 502: Bad Gateway", "http_502"),
    ("timeout", "timed out", "timeout"),
    ("success", None, None), ("robots_disallowed", "robots.txt disallows curate", None)])
def test_error_classes(status, error, expected):
    assert error_class(status, error) == expected
