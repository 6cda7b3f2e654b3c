"""Terminal progress: rate and time left from a fake clock; human, JSON and quiet modes."""

from __future__ import annotations

import io
import json
import threading

import pytest

from curate import progress
from curate.progress import Progress, format_duration, poll, track


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_rate_and_eta_from_the_clock():
    clock, out = Clock(), io.StringIO()
    p = Progress("download", total=100, unit="rows", stream=out, clock=clock, every=0, mode_="json")
    clock.t += 10
    p.update(25)
    snap = json.loads(out.getvalue().splitlines()[-1])
    assert snap == {"event": "progress", "stage": "download", "unit": "rows", "done": 25, "total": 100,
                    "rate": 2.5, "elapsed_s": 10.0, "eta_s": 30.0}
    clock.t += 30
    p.update(75)
    p.close()
    last = json.loads(out.getvalue().splitlines()[-1])
    assert last["event"] == "done" and last["done"] == 100 and last["eta_s"] == 0.0


def test_human_lines_are_throttled_and_quiet_prints_nothing():
    clock, out = Clock(), io.StringIO()
    p = Progress("score", total=None, unit="rows", stream=out, clock=clock, every=5, mode_="human")
    for _ in range(10):
        clock.t += 1
        p.update(10)
    p.close()
    lines = out.getvalue().splitlines()
    assert 2 <= len(lines) <= 4  # the first update, one every 5 s, the final line
    assert lines[-1].startswith("score: 100 rows, 10.0 rows/s, took 10s")
    quiet = io.StringIO()
    with Progress("x", 3, stream=quiet, mode_="quiet") as q:
        q.update(3)
    assert quiet.getvalue() == ""


def test_configure_sets_the_process_mode(monkeypatch):
    monkeypatch.setattr(progress, "_mode", None)
    monkeypatch.setenv(progress.ENV, "json")
    assert progress.mode() == "json"
    progress.configure("quiet")
    assert progress.mode() == "quiet"
    with pytest.raises(ValueError):
        progress.configure("loud")
    monkeypatch.setattr(progress, "_mode", None)


def test_track_counts_sizes(monkeypatch, capsys):
    monkeypatch.setattr(progress, "_mode", "json")
    assert list(track([[1, 2], [3]], "t", total=3, unit="rows", size=len)) == [[1, 2], [3]]
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert events[-1]["done"] == 3 and events[-1]["event"] == "done"
    monkeypatch.setattr(progress, "_mode", None)


def test_poll_reads_done_from_a_thread():
    out = io.StringIO()
    p = Progress("spark", total=4, unit="tasks", stream=out, every=0, mode_="json")
    seen = threading.Event()

    def read() -> int:
        seen.set()
        return 4

    with poll(p, read, interval=0.01):
        assert seen.wait(5)
    assert p.done == 4


@pytest.mark.parametrize("s, text", [(None, "?"), (5, "5s"), (65, "1m05s"), (3725, "1h02m05s")])
def test_format_duration(s, text):
    assert format_duration(s) == text


def test_cli_flags_set_the_mode(monkeypatch, capsys):
    from curate.cli import main

    monkeypatch.setenv(progress.ENV, "human")  # restored after the test
    assert main(["--json", "plan"]) == 0 and progress.mode() == "json"
    assert main(["-q", "plan"]) == 0 and progress.mode() == "quiet"
    assert main(["plan"]) == 0 and progress.mode() == "human"
    capsys.readouterr()
