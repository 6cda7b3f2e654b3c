"""A stage's folder in a run directory: outputs under deterministic names, `_stats.json`, `_SUCCESS` last.

A stage that starts work holds `_LOCK` (curate.io.lock) until `_SUCCESS` is written or it fails, and writes
`_fingerprint.json` (curate.io.fingerprint) first: a finished stage rerun with the same configuration and
inputs is a no-op, with other ones an error that offers `--redo`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from curate.errors import CurateError
from curate.io import fingerprint, fs, lock

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"
STATS = "_stats.json"


@dataclass(frozen=True)
class StageDir:
    run: str
    name: str
    held: lock.StageLock | None = field(default=None, compare=False, repr=False)  # set by `open`

    @property
    def path(self) -> str:
        return fs.join(self.run, self.name)

    def file(self, *parts: str) -> str:
        return fs.join(self.path, *parts)

    def done(self) -> bool:
        return fs.exists(self.file(SUCCESS))

    def begin(self) -> None:
        """Prepare to (re)run: the folder exists and no half-written temporary file is left."""
        fs.makedirs(self.path)
        fs.remove_tmp_files(self.path)

    def finish(self, stats: dict) -> None:
        """Write the stage's stats, then the completion marker: a reader that sees `_SUCCESS` sees all.
        Then the lock goes."""
        fs.write_json(self.file(STATS), stats)
        fs.write_bytes(self.file(SUCCESS), b"")
        self.release()
        log.info("%s: done (%s)", self.name, self.path)

    def release(self) -> None:
        """Remove the stage's lock if this folder holds it (idempotent)."""
        if self.held is not None:
            self.held.release()

    def __enter__(self) -> StageDir:
        return self

    def __exit__(self, *exc) -> None:  # `with sd:` releases the lock however the block ends
        self.release()

    def stats(self) -> dict:
        return fs.read_json(self.file(STATS))

    @classmethod
    def finished(cls, run: str, name: str, config: Any = None) -> dict | None:
        """The stats of stage `name` when it finished with this configuration and inputs (a rerun is a
        no-op); None when it has not finished. Raise when it finished with other ones (`--redo`)."""
        sd = cls(run, name)
        if not sd.done():
            return None
        fingerprint.check(run, name, config)
        log.info("%s: already complete in %s", name, sd.path)
        return sd.stats()

    @classmethod
    def open(cls, run: str, name: str, config: Any = None, again: bool = False) -> StageDir:
        """Start work on stage `name`: take its lock (a one-line error when another run holds it), remove
        half-written temporary files, record the configuration and inputs. Use the result in a `with`
        block, so that the lock goes however the work ends; `finish` releases it too. A stage found done
        once the lock is held (another run finished it meanwhile) keeps that run's record, unless `again`
        (an action that reruns part of a finished stage, such as --retry-failed)."""
        sd = cls(run, name)
        fs.makedirs(sd.path)
        sd = cls(run, name, lock.acquire(sd.file(lock.LOCK), name))
        try:
            fs.remove_tmp_files(sd.path)  # after the lock: another live run's temporaries are not ours
            if again or not sd.done():  # done by the run we waited for: its record stays (callers check it)
                fingerprint.write(run, name, config)
        except BaseException:
            sd.release()
            raise
        return sd

    @classmethod
    def start(cls, run: str, name: str, requires: str | None = None,
              config: Any = None) -> tuple[StageDir, dict | None]:
        """Open stage `name` of `run`: (folder, stats) when it already finished with this `config` and
        inputs (rerunning is a no-op); otherwise check that stage `requires` finished, take the lock,
        prepare the folder and return (folder, None). Callers run the work in `with sd:`."""
        stats = cls.finished(run, name, config)
        if stats is not None:
            return cls(run, name), stats
        cls.check_ready(run, name, requires)
        sd = cls.open(run, name, config)
        if sd.done():  # another run finished it while we waited for the lock
            sd.release()
            return cls(run, name), cls.finished(run, name, config)
        return sd, None

    @classmethod
    def check_ready(cls, run: str, name: str, requires: str | None) -> None:
        """Raise the one-line error `start` would when stage `requires` has not finished: a CLI calls it
        before it starts an engine, so the error is all the user sees."""
        if requires is not None and not cls(run, requires).done():
            raise CurateError(f"{name}: {fs.join(run, requires)} is not complete; run `curate {requires}` first")
