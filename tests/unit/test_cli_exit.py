"""How the `curate` command leaves (curate.cli.entry): Python's exit work runs, then `os._exit` with the
command's status, skipping only the native libraries' exit-time destructors."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import atexit, sys, threading
from curate import cli

def later():  # a non-daemon thread still working when the command returns: joined, as at a normal exit
    total = sum(range(2_000_000))
    print("thread done", total, flush=True)

atexit.register(lambda: print("atexit ran", flush=True))
threading.Thread(target=later).start()
sys.argv = ["curate", *sys.argv[1:]]
cli.entry()
print("not reached")
"""


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120)


def test_a_failing_command_exits_2_after_threads_and_atexit_handlers(tmp_path):
    result = _run("verify", str(tmp_path / "missing"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("curate: error:")
    assert result.stdout.splitlines() == [f"thread done {sum(range(2_000_000))}", "atexit ran"]


def test_usage_errors_keep_argparse_status():
    result = _run("no-such-command")
    assert result.returncode == 2
    assert "usage:" in result.stderr and "not reached" not in result.stdout


def test_help_exits_0():
    result = _run("--help")
    assert result.returncode == 0 and "usage:" in result.stdout
