"""scripts/need_disk.py: `make` refuses, in one line, to start a virtualenv the disk cannot hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "scripts" / "need_disk.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def test_enough_room_says_nothing(tmp_path):
    done = _run("0", str(tmp_path / "venv"))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_too_little_room_is_one_line_naming_the_nearest_existing_folder(tmp_path):
    more = int(shutil.disk_usage(tmp_path).free / 2**30) + 10**6  # a million GiB more than this disk has free
    done = _run(str(more), str(tmp_path / "not" / "yet" / "venv"))
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"make: installing the virtualenv needs about {more} GiB free; {tmp_path} has ")


def test_make_checks_before_it_creates_the_venv(tmp_path):
    venv = tmp_path / "venv"
    done = subprocess.run(["make", "-C", str(ROOT), "venv", f"VENV={venv}", "VENV_GIB=1000000000"],
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "make: installing the virtualenv needs about 1000000000 GiB free" in done.stderr
    assert not venv.exists()


def test_a_size_that_is_not_a_number_is_one_line(tmp_path):
    done = _run("ten", str(tmp_path))
    assert (done.returncode, done.stderr) == (2, "make: VENV_GIB must be a number of GiB, not 'ten'\n")
