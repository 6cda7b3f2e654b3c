"""Politeness per host, in one worker process: at most `concurrency` requests at a time, request starts at
least 1 / `rate` seconds apart, `Retry-After` honoured on a 429 or 503, exponential backoff after failures, and
a host that keeps failing given up (its remaining rows get `host_gave_up` without a request).

A host is `scheme://host:port`. A failure is an answer or an error that says the host is in trouble: 429,
5xx, a timeout, a refused or dropped connection; any other answer (200, 404, ...) ends a failure streak. After
the k-th failure in a row the host's next request waits `backoff * 2 ** (k - 1)` seconds (at most
`backoff_max`), or the server's Retry-After when that is longer (Retry-After beyond `retry_after_max` gives
the host up at once: it asked us to stay away longer than a download should wait). After `give_up_after`
failures in a row the host is given up for the rest of this process's work.

The clock and the sleep are injected (`clock`, `sleep`), so tests check the schedule that was kept (`log`)
without waiting in real time.
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PoliteConfig:
    # requests in flight per host and worker process; img2dataset has no per-host limit (its threads all
    # may hit one host), DataComp's pool spreads over ~millions of hosts so a cap rarely binds there
    concurrency: int = 16
    rate: float = 0.0  # request starts per second per host and worker process; 0 = no cap
    backoff: float = 0.5  # seconds after a host's first failure, doubled per failure in a row ...
    backoff_max: float = 30.0  # ... up to this
    retry_after_max: float = 120.0  # a longer Retry-After gives the host up instead of waiting
    give_up_after: int = 8  # failures in a row that give a host up (0 = never)

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.rate < 0 or self.backoff < 0 or self.give_up_after < 0:
            raise ValueError("host concurrency must be >= 1; rate, backoff and give-up count >= 0")


class HostGaveUp(Exception):
    """The host was given up: no more requests to it in this process."""


@dataclass
class _Host:
    in_flight: int = 0
    next_start: float = 0.0  # the earliest start allowed by the rate cap and any backoff
    failures: int = 0  # in a row
    gave_up: str | None = None  # why, once given up
    cond: threading.Condition = field(default_factory=threading.Condition)


def retry_after(value: str | None, now_wall: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_wall)


class Politeness:
    """Per-host gates of one worker process (shared by its download threads and its tasks)."""

    def __init__(self, config: PoliteConfig, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, wall: Callable[[], float] = time.time,
                 record: bool = False) -> None:
        self.config = config
        self.clock, self.sleep, self.wall = clock, sleep, wall
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()
        self.record = record  # keep `log` (tests): (host, event, time), event start/failure/success/gave_up
        self.log: list[tuple[str, str, float]] = []

    def _host(self, host: str) -> _Host:
        with self._lock:
            return self._hosts.setdefault(host, _Host())

    def gave_up(self, host: str) -> str | None:
        state = self._hosts.get(host)
        return state.gave_up if state else None

    def acquire(self, host: str) -> None:
        """Wait for a slot and for the host's next allowed start; raise HostGaveUp if it was given up."""
        state = self._host(host)
        with state.cond:
            while state.gave_up is None and state.in_flight >= self.config.concurrency:
                state.cond.wait()
            if state.gave_up is not None:
                raise HostGaveUp(state.gave_up)
            now = self.clock()
            start = max(now, state.next_start)
            state.next_start = start + (1.0 / self.config.rate if self.config.rate else 0.0)
            state.in_flight += 1
        if start > now:
            self.sleep(start - now)
        self._note(host, "start")

    def release(self, host: str, failed: bool, wait: float | None = None) -> None:
        """End a request: `failed` when the host was in trouble, with the server's Retry-After as `wait`."""
        state = self._host(host)
        c = self.config
        with state.cond:
            state.in_flight -= 1
            if not failed:
                state.failures = 0
            else:
                state.failures += 1
                delay = min(c.backoff * 2 ** (state.failures - 1), c.backoff_max)
                if wait is not None and wait > c.retry_after_max:
                    state.gave_up = f"Retry-After of {wait:g} s is over the limit of {c.retry_after_max:g} s"
                elif c.give_up_after and state.failures >= c.give_up_after:
                    state.gave_up = f"{state.failures} failures in a row"
                state.next_start = max(state.next_start, self.clock() + max(delay, wait or 0.0))
            state.cond.notify_all()
        self._note(host, "gave_up" if state.gave_up else "failure" if failed else "success")

    def _note(self, host: str, event: str) -> None:
        if not self.record:
            return
        with self._lock:
            self.log.append((host, event, self.clock()))
