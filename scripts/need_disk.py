"""Refuse, in one line, to build the virtualenv where the disk cannot hold it.

    python3 scripts/need_disk.py GIB PATH [PATH ...]

`make` runs it before it creates `.venv`: a fresh install of `.[dev,cpu,export]` peaks at about 9 GiB (the
CUDA build of torch the stack pins, unpacked in the temp folder beside the venv being filled; measured with
`df` every 2 s during `make venv` in a fresh clone) and leaves 7.4 GiB. Without the check, a full disk
ends pip minutes in with `OSError: [Errno 28] No space left on device` and a half-filled venv. Standard
library only: no venv exists yet.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path


def main(argv: list[str]) -> int:
    try:
        need = float(argv[0])
    except ValueError:
        print(f"make: VENV_GIB must be a number of GiB, not {argv[0]!r}", file=sys.stderr)
        return 2
    for path in [*argv[1:], tempfile.gettempdir()]:
        where = Path(path).resolve()
        while not where.exists():
            where = where.parent
        free = shutil.disk_usage(where).free / 2**30
        if free < need:
            print(f"make: installing the virtualenv needs about {argv[0]} GiB free; {where} has {free:.1f} GiB",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
