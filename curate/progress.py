"""Terminal progress for long stages: units done, rate, time left.

Engines call a `Progress` as work completes (shards from `run_tasks`, rows from `map_stages`). The mode
is process-wide, set once by the CLI: "human" (one line on stderr, redrawn in place on a terminal, a
line every few seconds otherwise), "json" (one JSON object per update on stderr, so stdout keeps the
stage's result), or "quiet" (nothing). `CURATE_PROGRESS` in the environment sets it for job scripts.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TypeVar

T = TypeVar("T")
MODES = ("human", "json", "quiet")
ENV = "CURATE_PROGRESS"
_mode: str | None = None


def configure(mode: str) -> None:
    """Set the process-wide mode (and export it, so child processes such as job drivers follow)."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"progress mode {mode!r} is not one of {', '.join(MODES)}")
    _mode = mode
    os.environ[ENV] = mode


def mode() -> str:
    if _mode is not None:
        return _mode
    env = os.environ.get(ENV, "human")
    return env if env in MODES else "human"


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Progress:
    """Counts `unit`s done out of `total` (None when unknown) for `label`; thread-safe."""

    def __init__(self, label: str, total: int | None = None, unit: str = "rows", *, stream: IO[str] | None = None,
                 clock: Callable[[], float] = time.monotonic, every: float = 2.0, mode_: str | None = None) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.mode = mode_ or mode()
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.every = every  # seconds between lines when not redrawing a terminal line
        self.done = 0
        self.start = clock()
        self._last_emit: float | None = None
        self._lock = threading.Lock()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def snapshot(self) -> dict:
        elapsed = max(self.clock() - self.start, 1e-9)
        rate = self.done / elapsed
        left = None
        if self.total is not None and rate > 0:
            left = max(self.total - self.done, 0) / rate
        return {"stage": self.label, "unit": self.unit, "done": self.done, "total": self.total,
                "rate": round(rate, 3), "elapsed_s": round(elapsed, 3),
                "eta_s": None if left is None else round(left, 3)}

    def update(self, n: int = 1) -> None:
        if n <= 0:
            return
        with self._lock:
            self.done += n
            now = self.clock()
            finished = self.total is not None and self.done >= self.total
            if self._last_emit is not None and now - self._last_emit < self.every and not finished \
                    and not (self._tty and self.mode == "human"):
                return
            self._last_emit = now
            self._emit(final=False)

    def close(self) -> None:
        with self._lock:
            self._emit(final=True)

    def _emit(self, final: bool) -> None:
        if self.mode == "quiet":
            return
        snap = self.snapshot()
        if self.mode == "json":
            self.stream.write(json.dumps({"event": "done" if final else "progress", **snap}, sort_keys=True) + "\n")
        else:
            total = f"/{snap['total']}" if snap["total"] is not None else ""
            when = f"took {format_duration(snap['elapsed_s'])}" if final else f"left {format_duration(snap['eta_s'])}"
            line = f"{self.label}: {snap['done']}{total} {self.unit}, {snap['rate']:.1f} {self.unit}/s, {when}"
            if self._tty:
                self.stream.write("\r\x1b[K" + line + ("\n" if final else ""))
            else:
                self.stream.write(line + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable[T], label: str, total: int | None = None, unit: str = "shards",
          size: Callable[[T], int] = lambda _: 1) -> Iterator[T]:
    """Yield `items`, counting `size(item)` units for each once the consumer asks for the next one."""
    with Progress(label, total, unit) as p:
        for item in items:
            yield item
            p.update(size(item))


class poll:  # noqa: N801 (a context manager used like a function)
    """While the block runs, set `progress` to `read_done()` every `interval` seconds from a thread
    (for engines whose work finishes out of our sight, such as a Spark job's tasks)."""

    def __init__(self, progress: Progress, read_done: Callable[[], int], interval: float = 1.0) -> None:
        self.progress, self.read_done, self.interval = progress, read_done, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="curate-progress", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                done = self.read_done()
            except Exception:  # progress is best effort; never fail the work for it
                continue
            if done > self.progress.done:
                self.progress.update(done - self.progress.done)

    def __enter__(self) -> poll:
        if self.progress.mode != "quiet":
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
