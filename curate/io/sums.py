"""Checksum sidecars: every parquet part and tar a stage writes has `<folder>/_sums/<name>.json`.

The sidecar holds `{"sha256": ..., "size": ...}` of the bytes as written (`{"crc32c": ...}` for tars: see
`curate.io.crc` for why), computed by the task that wrote them (whole-buffer writers hash the buffer,
streamed writers hash while writing; nothing is read back), and written as bytes that depend only on the
part's bytes, so reruns and engines give identical folders. Names starting with `_` are not parts
(`dataset.is_part`), so `_sums/` never reads as part of a dataset.

Order of a write: the old sidecar (if any) is removed, the part is committed, then its sidecar is written.
A kill in between leaves a part without a sidecar (read as before, listed as unverified by `curate verify`),
never a part that disagrees with its sidecar.

Readers verify before use (`read_verified`): the part's bytes are read once, hashed, and compared with
the sidecar; a part without one was written before sidecars existed and is read as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from curate.errors import CurateError
from curate.io import crc, fs

log = logging.getLogger(__name__)

SUMS_DIR = "_sums"
SUFFIX = ".json"
CHUNK = 4 << 20  # bytes per read when hashing a file in a stream (`file_digest`)


def sidecar_path(path: str) -> str:
    """`.../folder/00017.parquet` -> `.../folder/_sums/00017.parquet.json`."""
    folder, _, name = str(path).rstrip("/").rpartition("/")
    return f"{folder}/{SUMS_DIR}/{name}{SUFFIX}" if folder else f"{SUMS_DIR}/{name}{SUFFIX}"


def target_path(sidecar: str) -> str:
    """The inverse of `sidecar_path`."""
    sums_dir, _, name = sidecar.rpartition("/")
    folder = sums_dir.rpartition("/")[0]
    name = name.removesuffix(SUFFIX)
    return f"{folder}/{name}" if folder else name


ALGORITHMS = ("sha256", "crc32c")


def algorithm(path: str) -> str:
    """What a new sidecar of `path` holds: CRC32C for tars (cheap enough for a copy at disk speed and
    composable across the threads that write one tar; `curate.io.crc`), sha256 for everything else."""
    return "crc32c" if str(path).endswith(".tar") else "sha256"


def new_hash(algo: str):
    """A hashlib-like object (`update`, `hexdigest`) for `algo`."""
    return crc.Crc32c() if algo == "crc32c" else hashlib.sha256()


def encode(size: int, digest: str, algo: str = "sha256", members: list | None = None) -> bytes:
    record: dict[str, Any] = {algo: digest, "size": int(size)}
    if members is not None:
        record["members"] = members
    return (json.dumps(record, sort_keys=True, separators=(",", ":") if members else None) + "\n").encode()


def write_sidecar(path: str, size: int, digest: str, algo: str | None = None, members: list | None = None) -> None:
    """`members`: for a tar, [data offset, CRC32C of the data] of each file, so that a reader of byte ranges
    (the shard stage) checks what it copies without reading the whole tar."""
    fs.write_bytes(sidecar_path(path), encode(size, digest, algo or algorithm(path), members))


def drop_sidecar(path: str) -> None:
    """Remove the sidecar of `path` if there is one (before the part is rewritten)."""
    sfs, p = fs.url_to_fs(sidecar_path(path))
    try:
        sfs.rm_file(p)
    except FileNotFoundError:
        pass


def read_sidecar(path: str) -> dict | None:
    """{"algorithm", "digest", "size", "members"} of the part at `path` ("members": a tar's [data offset,
    CRC32C] per file, or None), or None when it has no sidecar."""
    sfs, p = fs.url_to_fs(sidecar_path(path))
    try:
        with sfs.open(p, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        return None
    try:
        got = json.loads(raw)
        algo = next(a for a in ALGORITHMS if a in got)
        return {"algorithm": algo, "digest": str(got[algo]), "size": int(got["size"]), "members": got.get("members")}
    except (ValueError, KeyError, TypeError, StopIteration) as exc:
        raise CurateError(f"checksum sidecar {sidecar_path(path)} is unreadable ({exc}); remove it and "
                          f"its part {path}, then rerun the stage that wrote them") from exc


def write_bytes(path: str, data: bytes) -> None:
    """`data` to `path` atomically, with its sidecar."""
    drop_sidecar(path)
    fs.write_bytes(path, data)
    digest = new_hash(algorithm(path))
    digest.update(data)
    write_sidecar(path, len(data), digest.hexdigest())


class HashingWriter:
    """A write-only file that passes bytes to `fh` and hashes them on the way (tarfile and pyarrow's
    ParquetWriter write through it). Closing it leaves `fh` open: its owner commits it."""

    def __init__(self, fh: IO[bytes], algo: str = "sha256") -> None:
        self.fh, self.hash, self.size = fh, new_hash(algo), 0
        self.members: list | None = None  # a tar writer's [data offset, CRC32C] per file, for the sidecar

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.fh.write(view)
        self.hash.update(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.fh.flush()

    def close(self) -> None:
        self.fh.flush()

    @property
    def closed(self) -> bool:
        return self.fh.closed

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def hexdigest(self) -> str:
        return self.hash.hexdigest()


@contextmanager
def open_part(path: str) -> Iterator[HashingWriter]:
    """`fs.atomic_open(path, "wb")` for a streamed part or tar: hashed while written; the sidecar follows
    the commit. A failed block commits neither."""
    drop_sidecar(path)
    with fs.atomic_open(path, "wb") as fh:
        writer = HashingWriter(fh, algorithm(path))
        yield writer
    write_sidecar(path, writer.size, writer.hexdigest(), members=writer.members)


def mismatch(path: str, expected: dict, size: int, digest: str) -> str | None:
    """A one-line description of how (size, digest) differs from `expected` (digest computed with the
    sidecar's algorithm); None when they agree."""
    if size == expected["size"] and digest == expected["digest"]:
        return None
    n = 12 if digest[:12] != expected["digest"][:12] else len(digest)  # in full where the prefixes agree
    return (f"{path}: {expected['algorithm']} {digest[:n]}, expected {expected['digest'][:n]}; "
            f"{size} bytes, expected {expected['size']}")


def _raise_on(problem: str | None) -> None:
    if problem is not None:
        raise CurateError(f"checksum mismatch in {problem}: the file or its sidecar is corrupt; remove both, "
                          f"then rerun the stage that wrote them")


def check(path: str, data: bytes) -> None:
    """Raise when `data` (the bytes read from `path`) disagree with the part's sidecar."""
    expected = read_sidecar(path)
    if expected is None:
        return
    digest = new_hash(expected["algorithm"])
    digest.update(data)
    _raise_on(mismatch(path, expected, len(data), digest.hexdigest()))


def check_member(tar: str, offset: int, data, want: int | None) -> None:
    """Raise when a file read out of `tar` by its byte range (its data at `offset`) disagrees with the
    CRC32C the tar's sidecar lists for it (`want`; None or negative: not listed, nothing to check)."""
    if want is not None and want >= 0 and crc.value(data) != want:
        raise CurateError(f"checksum mismatch in {tar}: the file at byte {offset} differs from the CRC32C its "
                          f"sidecar lists: the tar is corrupt; remove it and its sidecar, then rerun the stage "
                          f"that wrote it")


def read_verified(path: str) -> bytes:
    """The bytes of the part at `path` (one read), checked against its sidecar when it has one."""
    ffs, p = fs.url_to_fs(path)
    with ffs.open(p, "rb") as fh:
        data = fh.read()
    check(path, data)
    return data


class HashingReader:
    """A file read in a stream (tarfile's `r|` mode) that hashes what passes through it."""

    def __init__(self, fh: IO[bytes], algo: str | None) -> None:
        self.fh, self.hash, self.size = fh, new_hash(algo) if algo else None, 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        if self.hash is not None:
            self.hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


@contextmanager
def open_verified(path: str) -> Iterator[HashingReader]:
    """Open a file to read it once from start to end (a tar a stage streams through); when the block is
    done, the rest is read and the whole is checked against the file's sidecar (when it has one), so a
    task that read a corrupt file fails, naming it, before it writes what it made of it."""
    expected = read_sidecar(path)
    ffs, p = fs.url_to_fs(path)
    with ffs.open(p, "rb") as fh:
        reader = HashingReader(fh, expected and expected["algorithm"])
        yield reader
        if expected is None:
            return
        reader.drain()
    _raise_on(mismatch(path, expected, reader.size, reader.hash.hexdigest()))


def file_digest(path: str, algo: str = "sha256") -> tuple[int, str]:
    """(size, digest) of a file, read in a stream (for `curate verify`)."""
    ffs, p = fs.url_to_fs(path)
    h, size = new_hash(algo), 0
    with ffs.open(p, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()

