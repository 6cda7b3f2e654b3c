"""Where the engines curate starts keep their temporary files: one scratch folder per process, removed on exit.

Spark's `spark-*` and `blockmgr-*` folders (`spark.local.dir`, and the driver JVM's `java.io.tmpdir`) and a
local Ray's session folder (`ray.init(_temp_dir=...)`) go under

    $CURATE_SCRATCH/<stage>-<pid>      when CURATE_SCRATCH is set (a fast local disk, say), else
    RUN/_scratch/<stage>-<pid>         for a run on local disk, else
    <system temp>/curate-scratch/<stage>-<pid>   (a run on an object store)

The folder is removed when the engine stops (a normal exit or an error), except the part that lives as
long as a JVM curate launched (its java.io.tmpdir: `for_process`), removed when the process exits; a run
that was killed leaves it,
and the next start under the same root removes every `<stage>-<pid>` folder whose process is gone (with a
log line). Names starting with `_` are not parts (`curate.io.dataset.is_part`), and an empty `RUN/_scratch`
is removed too, so a finished run's folder holds no trace of it. Sessions curate did not create
(spark-submit's, an existing Ray cluster) are left as they are configured.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import socket
import tempfile

log = logging.getLogger(__name__)

ENV = "CURATE_SCRATCH"
DIR = "_scratch"
_HOST = ".host"  # inside a scratch folder: the machine whose pid it names (a run folder may be shared)
_NAME = re.compile(r"^(?P<stage>[\w.]+)-(?P<pid>\d+)$")
_context = {"run": None, "stage": "curate"}


def configure(run: str | None, stage: str) -> dict:
    """The run and stage the engines this process starts work for (the CLI sets it per command); returns
    the previous setting, for `restore`."""
    previous = dict(_context)
    _context.update(run=run, stage=stage)
    return previous


def restore(previous: dict) -> None:
    _context.update(previous)


def stage() -> str:
    """The stage this process runs (for folder names): what `configure` set, `curate` if nothing did."""
    return str(_context["stage"])


def current_stage() -> str | None:
    """The stage `configure` set (for messages), None if nothing did."""
    return _context["stage"] if _context["run"] is not None or _context["stage"] != "curate" else None


def root(run: str | None = None) -> str:
    """The folder that holds the per-process scratch folders (see the module)."""
    env = os.environ.get(ENV)
    if env:
        return os.path.abspath(env)
    run = run if run is not None else _context["run"]
    if run and (run.startswith("file://") or "://" not in run):
        return os.path.join(os.path.abspath(run.removeprefix("file://")), DIR)
    return system_root()


def system_root() -> str:
    return os.path.join(tempfile.gettempdir(), "curate-scratch")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale(folder: str) -> list[str]:
    """Remove the `<stage>-<pid>` folders under `folder` whose process (on this machine) is gone."""
    removed = []
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return removed
    host = socket.gethostname()
    for name in names:
        found = _NAME.match(name)
        path = os.path.join(folder, name)
        if not found or int(found.group("pid")) == os.getpid() or _alive(int(found.group("pid"))):
            continue
        try:
            with open(os.path.join(path, _HOST)) as fh:
                if fh.read().strip() not in ("", host):
                    continue  # another machine's run: its pid means nothing here
        except OSError:
            pass
        shutil.rmtree(path, ignore_errors=True)
        log.info("scratch: removed %s, left by a run that was stopped (process %s is gone)", path,
                 found.group("pid"))
        removed.append(path)
    return removed


class Scratch:
    """`<root>/<stage>-<pid>/<kind>` for one engine: created (after removing stale siblings) by `create`,
    removed by `remove` with its parents when they are left empty."""

    def __init__(self, kind: str, base: str | None = None) -> None:
        self.base = base or root()
        self.owner = os.path.join(self.base, f"{stage()}-{os.getpid()}")
        self.path = os.path.join(self.owner, kind)

    def create(self) -> str:
        clean_stale(self.base)
        os.makedirs(self.path, exist_ok=True)
        host = os.path.join(self.owner, _HOST)
        if not os.path.exists(host):
            with open(host, "w") as fh:
                fh.write(socket.gethostname() + "\n")
        return self.path

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            if set(os.listdir(self.owner)) <= {_HOST}:
                shutil.rmtree(self.owner, ignore_errors=True)
            if os.path.basename(self.base) == DIR:
                os.rmdir(self.base)  # only when empty: another live run's folder keeps it
        except OSError:
            pass


def for_process(kind: str) -> str:
    """A scratch folder that lives as long as this process (a JVM we launch does): removed at exit."""
    scratch = Scratch(kind)
    path = scratch.create()
    atexit.register(scratch.remove)
    return path
