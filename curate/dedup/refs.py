"""Reference hashes a pool is checked against: safety hash lists and evaluation image sets.

A hash list (the stand-in for IWF/C3P lists, as Re-LAION used them) is a text file (one hex hash per
line, `#` comments), a CSV (a column named md5, sha1, sha256, phash or hash, else the first column) or
a parquet file (the same column names). Each entry's kind follows from its length: 32 hex digits md5,
40 sha1, 64 sha256, 16 a 64-bit perceptual hash. Evaluation images are hashed by `curate.dedup.phash`,
the same code that hashes the pool.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass, field

from curate.dedup import phash
from curate.errors import CurateError
from curate.io import fs

log = logging.getLogger(__name__)

KIND_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256", 16: "phash"}
COLUMNS = ("md5", "sha1", "sha256", "phash", "hash")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Refs:
    """Hex hashes by kind."""

    md5: frozenset[str] = frozenset()
    sha1: frozenset[str] = frozenset()
    sha256: frozenset[str] = frozenset()
    phash: frozenset[str] = frozenset()
    sources: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.md5) + len(self.sha1) + len(self.sha256) + len(self.phash)


def _entries(path: str) -> list[str]:
    tfs, p = fs.url_to_fs(path)
    if not tfs.exists(p):
        raise CurateError(f"hash list {path}: no such file")
    if p.endswith(".parquet"):
        table = fs.read_table(path)
        name = next((c for c in COLUMNS if c in table.column_names), None)
        if name is None:
            raise CurateError(f"hash list {path}: no column named one of {', '.join(COLUMNS)}")
        return [str(v) for v in table.column(name).to_pylist() if v is not None]
    with tfs.open(p, "rb") as fh:
        text = fh.read().decode("utf-8", errors="replace")
    if p.endswith(".csv"):
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            return []
        header = [c.strip().lower() for c in rows[0]]
        col = next((header.index(c) for c in COLUMNS if c in header), None)
        body = rows[1:] if col is not None else rows
        return [r[col or 0] for r in body if r and len(r) > (col or 0)]
    return [line.split("#", 1)[0] for line in text.splitlines()]


def load_hash_lists(paths: tuple[str, ...] | list[str]) -> Refs:
    """Every entry of every list, by kind; a malformed entry is a one-line CurateError naming it."""
    kinds: dict[str, set[str]] = {k: set() for k in KIND_BY_LENGTH.values()}
    for path in paths:
        for n, raw in enumerate(_entries(path), start=1):
            entry = raw.strip().lower()
            if not entry:
                continue
            kind = KIND_BY_LENGTH.get(len(entry))
            if kind is None or not _HEX.fullmatch(entry):
                raise CurateError(f"hash list {path}: entry {n} ({raw.strip()[:70]!r}) is not an md5, sha1, "
                                  "sha256 or 16-hex-digit phash")
            kinds[kind].add(entry)
    refs = Refs(**{k: frozenset(v) for k, v in kinds.items()}, sources=tuple(paths))
    log.info("hash lists: %d entries (%s)", len(refs), ", ".join(f"{k} {len(v)}" for k, v in kinds.items()))
    return refs


def hash_folder(folder: str) -> Refs:
    """The hashes of every image file under `folder` (an evaluation set, local or on an object store);
    undecodable files are skipped."""
    ffs, root = fs.url_to_fs(folder)
    if not ffs.isdir(root):
        raise CurateError(f"eval images: {folder} is not a folder")
    kinds: dict[str, set[str]] = {k: set() for k in KIND_BY_LENGTH.values()}
    files = sorted(f for f in ffs.find(root) if f.lower().endswith(IMAGE_SUFFIXES))
    skipped = 0
    for f in files:
        with ffs.open(f, "rb") as fh:
            hashes = phash.hash_image(fh.read())
        if hashes["phash"] is None:
            skipped += 1
            continue
        for kind, value in hashes.items():
            kinds[kind].add(value)
    if not files or skipped == len(files):
        raise CurateError(f"eval images: no decodable image files in {folder}")
    log.info("eval images: %d hashed from %s (%d undecodable skipped)", len(files) - skipped, folder, skipped)
    return Refs(**{k: frozenset(v) for k, v in kinds.items()}, sources=(folder,))
