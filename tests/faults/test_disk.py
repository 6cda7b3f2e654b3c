"""A full disk and a read-only run folder: the stage stops with one line naming a path under the run, no
traceback, nothing marked done; given the space back, a rerun resumes into the uninterrupted run's bytes.

A full disk is a small tmpfs mounted on the stage's folder; a read-only run is a read-only bind mount of the
run folder (root ignores permission bits, so chmod proves nothing here). Both need root and a kernel that
lets this container mount: skipped with the reason otherwise."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .harness import STAGES, after, assert_one_line_error, diff, record, run_curate, run_digest, stage_args

CHEAP = ("select", "shard")  # in-process engines: make test; the Spark and Ray stages run under `long`


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def mounts():
    """mount(args...) for the test; every mount made is unmounted in teardown, last first."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs or a bind mount needs root")
    made: list[Path] = []

    def mount(*args: str) -> None:
        try:
            _mount(*args)
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            reason = getattr(exc, "stderr", "") or str(exc)
            pytest.skip(f"this machine does not let us mount ({' '.join(args)}): {reason.strip()}")
        made.append(Path(args[-1]))

    yield mount
    for target in reversed(made):
        if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(target)], capture_output=True)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def full_disk(stage: str, fresh_run, baseline, pool, scratch, mounts) -> None:
    run = fresh_run(stage)
    folder = run / stage
    folder.mkdir()
    room = max(16, _size(baseline / stage) // 3 // 1024)  # KiB: the stage starts, its outputs do not fit
    mounts("-t", "tmpfs", "-o", f"size={room}k", "tmpfs", str(folder))
    result = run_curate(stage_args(stage, run, pool), scratch)
    assert_one_line_error(result, str(run), folder)  # the file being written
    assert "No space left on device" in result.last_line
    mounts("-o", "remount,size=256m", str(folder))  # the space back (the engines' work files too): a rerun resumes
    again = run_curate(stage_args(stage, run, pool), scratch)
    assert again.rc == 0, again.stderr[-3000:]
    got, want = run_digest(run), run_digest(after(baseline, stage))
    assert got == want, diff(got, want)
    record("full disk (tmpfs), then space back", stage, [result.last_line, "rerun: identical to the baseline"])


def read_only_run(stage: str, fresh_run, pool, scratch, mounts) -> None:
    run = fresh_run(stage)
    frozen = run.parent / "frozen"
    frozen.mkdir()
    mounts("--bind", str(run), str(frozen))
    mounts("-o", "remount,bind,ro", str(frozen))
    result = run_curate(stage_args(stage, frozen, pool), scratch)
    assert_one_line_error(result, str(frozen), frozen / stage)  # the stage's folder, or the engines' RUN/_scratch
    assert "Read-only file system" in result.last_line
    record("read-only run folder", stage, [result.last_line])


@pytest.mark.slow
@pytest.mark.parametrize("stage", CHEAP)
def test_full_disk_is_one_line_and_resumes(stage, fresh_run, baseline, pool, scratch, mounts):
    full_disk(stage, fresh_run, baseline, pool, scratch, mounts)


@pytest.mark.slow
@pytest.mark.parametrize("stage", CHEAP)
def test_read_only_run_is_one_line(stage, fresh_run, pool, scratch, mounts):
    read_only_run(stage, fresh_run, pool, scratch, mounts)


@pytest.mark.long  # a Spark or Ray start each; download's and score's bugs here fixed by rawwriter.py, engines/ray.py
@pytest.mark.parametrize("stage", [s for s in STAGES if s not in CHEAP])
def test_full_disk_is_one_line_and_resumes_long(stage, fresh_run, baseline, pool, scratch, mounts):
    full_disk(stage, fresh_run, baseline, pool, scratch, mounts)


@pytest.mark.long
@pytest.mark.parametrize("stage", [s for s in STAGES if s not in CHEAP])
def test_read_only_run_is_one_line_long(stage, fresh_run, pool, scratch, mounts):
    read_only_run(stage, fresh_run, pool, scratch, mounts)
