"""Reference hashes a pool is checked against: safety hash lists and evaluation image sets.

A hash list (the stand-in for IWF/C3P lists, as Re-LAION used them, or PDQ lists as safety organisations
exchange them) is a text file (one hex hash per line, `#` comments), a CSV (columns named md5, sha1, sha256,
phash, pdq or hash, else the first column) or a parquet file (the same column names), local or on an object
store. A column named after a kind gives that kind; otherwise an entry's kind is its `kind:` prefix
(`pdq:<64 hex>`) or follows from its length: 32 hex digits md5, 40 sha1, 64 sha256, 16 a 64-bit pHash.
Evaluation images are hashed by `curate.dedup.phash`, the same code that hashes the pool.
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
KINDS = ("md5", "sha1", "sha256", "phash", "pdq")
COLUMNS = (*KINDS, "hash")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_HEX = re.compile(r"[0-9a-f]+")
_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64, "phash": 16, "pdq": 64}


@dataclass(frozen=True)
class Refs:
    """Hex hashes by kind."""

    md5: frozenset[str] = frozenset()
    sha1: frozenset[str] = frozenset()
    sha256: frozenset[str] = frozenset()
    phash: frozenset[str] = frozenset()
    sources: tuple[str, ...] = field(default=())
    pdq: frozenset[str] = frozenset()  # 256-bit PDQ hashes, 64 hex digits

    def __len__(self) -> int:
        return len(self.md5) + len(self.sha1) + len(self.sha256) + len(self.phash) + len(self.pdq)


def read_list(path: str, columns: tuple[str, ...], what: str) -> list[tuple[str | None, int, str]]:
    """(column, line or row number, entry) of a list file: text (one entry a line, `#` comments), CSV or
    parquet. A CSV or parquet file gives the values of each of `columns` it has (the column named); one
    with none of them gives its first column (column None), as a text file does. Local or object store."""
    tfs, p = fs.url_to_fs(path)
    if not tfs.exists(p):
        raise CurateError(f"{what} {path}: no such file")
    if p.endswith(".parquet"):
        table = fs.read_table(path)
        named = [c for c in columns if c in table.column_names]
        if not named:
            raise CurateError(f"{what} {path}: no column named one of {', '.join(columns)}")
        return [(c, n, str(v)) for c in named for n, v in enumerate(table.column(c).to_pylist(), start=1)
                if v is not None]
    with tfs.open(p, "rb") as fh:
        text = fh.read().decode("utf-8", errors="replace")
    if p.endswith(".csv"):
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            return []
        header = [c.strip().lower() for c in rows[0]]
        named = [(c, header.index(c)) for c in columns if c in header]
        if not named:
            return [(None, n, r[0]) for n, r in enumerate(rows, start=1) if r]
        return [(c, n, r[i]) for c, i in named for n, r in enumerate(rows[1:], start=2) if len(r) > i]
    return [(None, n, line.split("#", 1)[0]) for n, line in enumerate(text.splitlines(), start=1)]


def _kind(column: str | None, entry: str) -> tuple[str | None, str]:
    """(kind, hex) of one hash-list entry: the column's kind, a `kind:` prefix (`pdq:...`), or by length
    (64 hex digits read as sha256: a PDQ list names its column `pdq` or prefixes its entries)."""
    if column in KINDS:
        return column, entry
    prefix, sep, rest = entry.partition(":")
    if sep and prefix in KINDS:
        return prefix, rest.strip()
    return KIND_BY_LENGTH.get(len(entry)), entry


def load_hash_lists(paths: tuple[str, ...] | list[str]) -> Refs:
    """Every entry of every list, by kind; a malformed entry is a one-line CurateError naming it."""
    kinds: dict[str, set[str]] = {k: set() for k in KINDS}
    for path in paths:
        for column, n, raw in read_list(path, COLUMNS, "hash list"):
            entry = raw.strip().lower()
            if not entry:
                continue
            kind, value = _kind(column, entry)
            if kind is None or len(value) != _LENGTH[kind] or not _HEX.fullmatch(value):
                raise CurateError(f"hash list {path}: entry {n} ({raw.strip()[:70]!r}) is not an md5, sha1, "
                                  "sha256, 16-hex-digit phash or 64-hex-digit pdq")
            kinds[kind].add(value)
    refs = Refs(**{k: frozenset(v) for k, v in kinds.items()}, sources=tuple(paths))
    log.info("hash lists: %d entries (%s)", len(refs), ", ".join(f"{k} {len(v)}" for k, v in kinds.items()))
    return refs


def hash_folder(folder: str) -> Refs:
    """The hashes of every image file under `folder` (an evaluation set, local or on an object store);
    undecodable files are skipped."""
    ffs, root = fs.url_to_fs(folder)
    if not ffs.isdir(root):
        raise CurateError(f"eval images: {folder} is not a folder")
    kinds: dict[str, set[str]] = {k: set() for k in KINDS}
    files = sorted(f for f in ffs.find(root) if f.lower().endswith(IMAGE_SUFFIXES))
    skipped = 0
    for f in files:
        with ffs.open(f, "rb") as fh:
            hashes = phash.hash_image(fh.read(), pdq=True)
        if hashes["phash"] is None:
            skipped += 1
            continue
        for kind, value in hashes.items():
            if value is not None:
                kinds[kind].add(value)
    if not files or skipped == len(files):
        raise CurateError(f"eval images: no decodable image files in {folder}")
    log.info("eval images: %d hashed from %s (%d undecodable skipped)", len(files) - skipped, folder, skipped)
    return Refs(**{k: frozenset(v) for k, v in kinds.items()}, sources=(folder,))
