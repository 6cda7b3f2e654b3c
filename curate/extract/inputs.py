"""Which files to read: a file, a folder, an fsspec glob, or a listing (Common Crawl's `wat.paths.gz`).

The driver lists once and holds one entry per input file (never per record). Each file's index in the sorted
listing (a listing file's own order) names its output part, so the same input gives the same parts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from curate.errors import CurateError
from curate.extract.config import ExtractConfig
from curate.io import fs

LISTING_SUFFIXES = (".paths", ".paths.gz", ".txt", ".txt.gz")
# files a folder input is read for, by source format
FILE_SUFFIXES = {"wat": (".wat.gz", ".wat"), "warc": (".warc.gz", ".warc")}
_CRAWL = re.compile(r"CC-MAIN-\d{4}-\d{2}")


@dataclass(frozen=True)
class InputFile:
    index: int  # its place in the listing: the output part is part-{index:05d}.parquet
    path: str  # as fsspec opens it
    key: str  # what its uids are salted with: the path from crawl-data/ on, or the whole path
    crawl: str | None


def file_key(path: str) -> str:
    at = path.find("crawl-data/")
    return path[at:] if at >= 0 else path


def crawl_of(path: str) -> str | None:
    found = _CRAWL.search(path)
    return found.group(0) if found else None


def expand(config: ExtractConfig) -> list[InputFile]:
    """The input files, in part order; a one-line CurateError when there are none or the input is unreadable."""
    paths = _paths(config)
    if config.limit is not None:
        paths = paths[:config.limit]
    seen: dict[str, str] = {}
    out = []
    for path in paths:
        key = file_key(path)
        if key in seen:
            if seen[key] == path:
                continue  # listed twice: read once
            raise CurateError(f"extract: {seen[key]} and {path} are the same Common Crawl file ({key}); "
                              "list one copy")
        seen[key] = path
        out.append(InputFile(len(out), path, key, config.crawl or crawl_of(path)))
    return out


def _paths(config: ExtractConfig) -> list[str]:
    text = config.input.strip()
    if not text:
        raise CurateError("extract: --input is empty")
    if text.lower().endswith(LISTING_SUFFIXES):
        return _listing(text, config.paths_prefix)
    ffs, p = fs.url_to_fs(text)
    if any(ch in p for ch in "*?["):
        found = [f for f, info in sorted(ffs.glob(p, detail=True).items()) if info.get("type") != "directory"]
        if not found:
            raise CurateError(f"extract: no files match {text}")
        return [_full(ffs, text, f) for f in found]
    if ffs.isdir(p):
        suffixes = FILE_SUFFIXES[config.source_format]
        found = sorted(f for f in ffs.find(p) if f.lower().endswith(suffixes))
        if not found:
            raise CurateError(f"extract: no {' or '.join(suffixes)} files in {text}")
        return [_full(ffs, text, f) for f in found]
    if not ffs.exists(p):
        raise CurateError(f"extract: no such file or folder: {text}")
    return [text]


def _full(ffs, given: str, path: str) -> str:
    """A path from a listing of `ffs`, with its protocol again unless the input was a local path."""
    return path if fs.is_local(given) and "://" not in given else ffs.unstrip_protocol(path)


def _listing(path: str, prefix: str) -> list[str]:
    """The lines of a listing file (gzip or not); relative lines are under `prefix`."""
    ffs, p = fs.url_to_fs(path)
    try:
        with ffs.open(p, "rt", compression="infer", encoding="utf-8") as fh:
            lines = [line.strip() for line in fh]
    except FileNotFoundError as exc:
        raise CurateError(f"extract: no such listing: {path}") from exc
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise CurateError(f"extract: cannot read listing {path}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
                          ) from exc
    out = [line if "://" in line or line.startswith("/") else fs.join(prefix.rstrip("/"), line)
           for line in lines if line and not line.startswith("#")]
    if not out:
        raise CurateError(f"extract: the listing {path} names no files")
    return out
