"""Errors a user can act on. The CLI prints them as one line; anything else is a bug."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


class CurateError(Exception):
    """Bad input, bad config or a failed precondition, with a message that says what to do."""


class SchemaError(CurateError):
    """A table does not match its versioned schema in schemas/."""


def os_error_text(exc: OSError) -> str:
    """`strerror: filename` (`-> filename2` for a rename or link), on one line."""
    text = exc.strerror or str(exc) or type(exc).__name__
    names = [os.fsdecode(n) if isinstance(n, bytes) else str(n) for n in (exc.filename, exc.filename2)]
    if exc.filename is not None:
        text += f": {names[0]}"
    if exc.filename2 is not None:
        text += f" -> {names[1]}"
    return " ".join(text.split())


def cause_text(exc: BaseException) -> str:
    """What went wrong, on one line: an OSError as the system said it (with its path), else `Type: message`."""
    if isinstance(exc, OSError) and (exc.strerror or exc.filename):
        return os_error_text(exc)
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


_NAMES = ("tar", "path", "part", "file", "samples", "shard", "uid", "url")


def input_name(item: Any) -> str:
    """The input a task works on, as a user knows it: a descriptor's tar or part path (or shard, uid), a path."""
    if isinstance(item, dict):
        for key in _NAMES:
            if item.get(key) not in (None, ""):
                return str(item[key])
    if isinstance(item, (list, tuple)) and item:
        return input_name(item[0]) + (f" (and {len(item) - 1} more)" if len(item) > 1 else "")
    text = str(item)
    return text if len(text) <= 200 else text[:197] + "..."


class Named:
    """`fn(item)`, where a failure that is not already a CurateError (which names its input) becomes one that
    does: `<stage>: <input>: <cause>`. Engines wrap the per-task functions they ship to workers with it, so a
    failed Spark or Ray task reaches the user as the input it failed on, not a worker's traceback."""

    def __init__(self, fn: Callable[[Any], Any], stage: str | None = None) -> None:
        self.fn = fn
        self.stage = stage

    def __call__(self, item: Any) -> Any:
        try:
            return self.fn(item)
        except CurateError:
            raise
        except Exception as exc:
            prefix = f"{self.stage}: " if self.stage else ""
            raise CurateError(f"{prefix}{input_name(item)}: {cause_text(exc)}") from exc


def named(fn: Callable[[Any], Any]) -> Named:
    """`Named(fn)` labelled with the stage this process runs (curate.engines.scratch.configure), if any."""
    if isinstance(fn, Named):
        return fn
    from curate.engines.scratch import current_stage

    return Named(fn, current_stage())
