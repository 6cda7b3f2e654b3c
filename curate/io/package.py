"""Files that ship inside the curate package, as real paths even when curate runs from a zipped wheel.

Spark's `--py-files` puts the wheel itself on `sys.path`, so `Path(__file__)` points inside a zip that
open_clip (`local-dir:`), log4j and `glob` cannot read. `package_path` returns the file or folder in
place when the package is installed, and otherwise a copy extracted once per process into a private
temporary folder.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path


@cache
def _extract_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="curate-package-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


def _copy(src: Traversable, dst: Path) -> None:
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            _copy(child, dst / child.name)
    else:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())


@cache
def package_path(*parts: str) -> Path:
    """The real path of `curate/<parts…>` (a file or a folder)."""
    res = resources.files("curate").joinpath(*parts)
    if isinstance(res, Path):
        return res
    dst = _extract_root().joinpath(*parts)
    if res.is_dir() or res.is_file():
        _copy(res, dst)
    return dst
