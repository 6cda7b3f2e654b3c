"""Helpers of the fault-injection suite (issue 20, "Runs you can trust"); its fixtures are in conftest.py.

Launching a stage in its own session, SIGKILLing that session at the k-th change of the stage folder,
digests of a stage folder, and the one-line error every failure must end with. Every fault test works on a
copy of the baseline run's upstream stages: the stage under test runs into the copy and its folder is
compared byte for byte with the baseline's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("download", "dedup", "score", "select", "shard")
POOL_N, POOL_SEED = 60, 3  # a pool of 60 rows ...
SHARD_SIZE = 5  # ... in 12 download shards: 12 parts in every table, so every stage has many commit points
SAMPLES_PER_SHARD = 4  # several output tars from the ~30 selected samples
CLIP_THRESHOLD = "0.7"  # the demo's cut for the bundled tiny model (curate/demo/run.py)
IGNORED = ("_LOCK",)  # the lock of a killed run: a stale lock is taken over, its bytes name a pid
STAGE_TIMEOUT = 420.0  # seconds one launch may take on a small, shared machine


@dataclasses.dataclass(frozen=True)
class Pool:
    root: Path
    port: int


def stage_args(stage: str, run: Path, pool: Pool, *extra: str) -> list[str]:
    """The `curate STAGE RUN ...` arguments of the suite's run (the demo's configuration at a small size)."""
    own = {
        "download": ["--input", str(pool.root / "urls.parquet"), "--shard-size", str(SHARD_SIZE), "--threads", "4",
                     "--timeout", "5", "--allow-address", f"127.0.0.1:{pool.port}"],
        "dedup": ["--eval-images", str(pool.root / "eval"), "--hash-list", str(pool.root / "hashlist.txt")],
        "score": [],
        "select": ["--engine", "local", "--clip-threshold", CLIP_THRESHOLD],
        "shard": ["--engine", "local", "--samples-per-shard", str(SAMPLES_PER_SHARD)],
    }[stage]
    return [stage, str(run), *own, *extra]


def curate_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "curate.cli", "-q", *args]


def child_env(scratch: Path) -> dict[str, str]:
    return {**os.environ, "TMPDIR": str(scratch), "SPARK_LOCAL_IP": "127.0.0.1", "RAY_USAGE_STATS_ENABLED": "0",
            "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@dataclasses.dataclass
class Result:
    rc: int
    stderr: str
    killed: bool = False
    stdout: str = ""

    @property
    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


def session_pids(sid: int) -> list[int]:
    """The processes of session `sid` (one we created with start_new_session): the stage's driver and
    whatever it started that stayed in its session (JVM, Python workers, Ray's daemons)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid:  # state, ppid, pgrp, session
            pids.append(int(entry.name))
    return pids


def kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL the launch's process group, then any process left in its session, by id."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in session_pids(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Launch:
    """One `curate` child in its own session, its stderr in a file."""

    def __init__(self, args: list[str], scratch: Path) -> None:
        self.out, self.err = tempfile.TemporaryFile(dir=scratch), tempfile.TemporaryFile(dir=scratch)
        self.proc = subprocess.Popen(curate_cmd(*args), env=child_env(scratch), stdout=self.out,
                                     stderr=self.err, start_new_session=True)

    def result(self, killed: bool = False) -> Result:
        texts = []
        for fh in (self.out, self.err):
            fh.seek(0)
            texts.append(fh.read().decode(errors="replace"))
            fh.close()
        return Result(self.proc.returncode, texts[1], killed, texts[0])

    def wait(self, timeout: float = STAGE_TIMEOUT) -> Result:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_session(self.proc)
            self.proc.wait()
            raise AssertionError(f"{self.proc.args} still running after {timeout:.0f} s") from None
        kill_session(self.proc)  # anything it left behind in its session
        return self.result()


def run_curate(args: list[str], scratch: Path, timeout: float = STAGE_TIMEOUT) -> Result:
    return Launch(args, scratch).wait(timeout)


def snapshot(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under `folder`: (inode, size, mtime) by relative path."""
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:  # renamed or removed between the listing and the stat
                continue
            out[os.path.relpath(path, folder)] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return out


def kill_at(args: list[str], folder: Path, k: int, scratch: Path, timeout: float = STAGE_TIMEOUT) -> Result:
    """Launch `curate ARGS` and SIGKILL its session as soon as the k-th file under `folder` has appeared or
    changed since the launch (a lock, a fingerprint, a temporary file, a part, a sidecar, a marker). The
    poll is how we notice the point, not what makes the test pass: wherever the kill lands, the resumed
    output must equal the uninterrupted one. `killed` is False when the stage finished first."""
    launch = Launch(args, scratch)
    before = snapshot(folder)
    changed: set[tuple[str, tuple[int, int, int]]] = set()
    deadline = time.monotonic() + timeout
    while launch.proc.poll() is None:
        now = snapshot(folder)
        changed |= {(p, st) for p, st in now.items() if before.get(p) != st}
        if len(changed) >= k:
            kill_session(launch.proc)
            launch.proc.wait()
            return launch.result(killed=True)
        if time.monotonic() > deadline:
            kill_session(launch.proc)
            launch.proc.wait()
            raise AssertionError(f"{args[0]}: no kill point {k} and no exit in {timeout:.0f} s")
        time.sleep(0.005)  # polling the folder; the outcome does not depend on when the kill lands
    kill_session(launch.proc)
    return launch.result()


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` by relative path, without the lock."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in IGNORED}


def diff(got: dict[str, str], want: dict[str, str]) -> str:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(p for p in set(got) & set(want) if got[p] != want[p])
    return f"missing {missing[:8]}, extra {extra[:8]}, changed {changed[:8]}"


def assert_one_line_error(result: Result, names: str, stage_dir: Path | None = None) -> None:
    """A failure a user can act on: exit 2, no traceback, stderr's last line `curate: error: ...` naming
    `names` (a path or a part of one), and the failing stage not marked done."""
    assert result.rc == 2, f"exit {result.rc}:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.last_line.startswith("curate: error:"), result.stderr[-3000:]
    assert names in result.last_line, result.last_line
    if stage_dir is not None:
        assert not (stage_dir / "_SUCCESS").exists(), f"{stage_dir} marked done after: {result.last_line}"


def after(baseline: Path, stage: str) -> Path:
    """The baseline run's copy as it stood when `stage` finished."""
    return baseline.parent / f"after-{stage}"


def copy_upstream(baseline: Path, run: Path, stage: str) -> None:
    """`run` becomes the baseline run as it stood before `stage` ran (an empty run before download)."""
    index = STAGES.index(stage)
    if index == 0:
        run.mkdir(parents=True, exist_ok=True)
    else:
        shutil.copytree(after(baseline, STAGES[index - 1]), run, symlinks=True)


def run_digest(run: Path) -> dict[str, str]:
    """`digest` of every stage folder of `run` (the engines' scratch space and anything else left out)."""
    out = {}
    for stage in STAGES:
        if (run / stage).is_dir():
            out.update({f"{stage}/{k}": v for k, v in digest(run / stage).items()})
    return out


def record(fault: str, stage: str, outcomes: list[str]) -> None:
    """One JSON line per fault and stage in $CURATE_FAULTS_LOG, when set: the table of faults, tries and
    outcomes that issue 20 closes with. Nothing is written otherwise."""
    path = os.environ.get("CURATE_FAULTS_LOG")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"fault": fault, "stage": stage, "tries": len(outcomes), "outcomes": outcomes}) + "\n")
