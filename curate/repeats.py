"""Repeated identical failures, summarised: the first of a kind is logged in full (with its traceback), the
ones like it are counted, and `flush` logs one line per kind, "... and 599 more like it".

A download on a full disk used to log one traceback per sample; now it logs one, then a count. Failures are
"alike" when they have the same type and, for an OSError, the same errno (paths and URLs differ from sample to
sample), else the same message with its numbers masked. Thread-safe: a shard's fetch threads share one.
"""

from __future__ import annotations

import logging
import re
import threading

from curate.errors import cause_text

_NUMBER = re.compile(r"\d+")


def kind(exc: BaseException) -> tuple[str, str]:
    """What makes two failures alike (see the module)."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return type(exc).__name__, f"errno {exc.errno}"
    return type(exc).__name__, _NUMBER.sub("N", str(exc).strip().splitlines()[0] if str(exc).strip() else "")


class Repeats:
    """Failures of `what` (e.g. "download shard 00003: sample") logged once per kind, then counted."""

    def __init__(self, logger: logging.Logger, what: str, level: int = logging.ERROR) -> None:
        self.log = logger
        self.what = what
        self.level = level
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], list] = {}  # kind -> [count, first cause text]

    def failed(self, subject: str, exc: BaseException) -> None:
        """`subject` (a sample's key, a URL) failed with `exc`: logged in full if it is the first of its kind."""
        key = kind(exc)
        with self._lock:
            entry = self._seen.setdefault(key, [0, cause_text(exc)])
            entry[0] += 1
            first = entry[0] == 1
        if first:
            self.log.log(self.level, "%s %s failed: %s", self.what, subject, cause_text(exc), exc_info=exc)

    def flush(self) -> dict[str, int]:
        """Log "... and N more like it" for each kind seen more than once; forget them; {cause: count}."""
        with self._lock:
            seen, self._seen = self._seen, {}
        for count, text in seen.values():
            if count > 1:
                self.log.log(self.level, "%s: ... and %d more like it (%s)", self.what, count - 1, text)
        return {text: count for count, text in seen.values()}
