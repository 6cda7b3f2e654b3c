"""A stage's folder in a run directory: outputs under deterministic names, `_stats.json`, `_SUCCESS` last."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from curate.errors import CurateError
from curate.io import fs

log = logging.getLogger(__name__)

SUCCESS = "_SUCCESS"
STATS = "_stats.json"


@dataclass(frozen=True)
class StageDir:
    run: str
    name: str

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
        """Write the stage's stats, then the completion marker: a reader that sees `_SUCCESS` sees all."""
        fs.write_json(self.file(STATS), stats)
        fs.write_bytes(self.file(SUCCESS), b"")
        log.info("%s: done (%s)", self.name, self.path)

    def stats(self) -> dict:
        return fs.read_json(self.file(STATS))

    @classmethod
    def start(cls, run: str, name: str, requires: str | None = None) -> tuple[StageDir, dict | None]:
        """Open stage `name` of `run`: (folder, stats) when it already finished (rerunning is a no-op);
        otherwise check that stage `requires` finished, prepare the folder and return (folder, None)."""
        sd = cls(run, name)
        if sd.done():
            log.info("%s: already complete in %s", name, sd.path)
            return sd, sd.stats()
        cls.check_ready(run, name, requires)
        sd.begin()
        return sd, None

    @classmethod
    def check_ready(cls, run: str, name: str, requires: str | None) -> None:
        """Raise the one-line error `start` would when stage `requires` has not finished: a CLI calls it
        before it starts an engine, so the error is all the user sees."""
        if requires is not None and not cls(run, requires).done():
            raise CurateError(f"{name}: {fs.join(run, requires)} is not complete; run `curate {requires}` first")
