"""fsspec-backed paths and atomic writes: write to a temporary name, then rename."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from curate import schemas
from curate.errors import CurateError

TMP_PREFIX = "_tmp."


def url_to_fs(path: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and path of a local path or URL. On object stores, listings are never cached: parts
    are written by other processes (executors), and a stale listing would hide them from a resume."""
    path = str(path)
    if "://" in path and not path.startswith("file://"):
        return fsspec.core.url_to_fs(path, use_listings_cache=False)
    return fsspec.core.url_to_fs(path)


def join(base: str, *parts: str) -> str:
    return "/".join([str(base).rstrip("/"), *parts])


def exists(path: str) -> bool:
    fs, p = url_to_fs(path)
    return fs.exists(p)


def makedirs(path: str) -> None:
    fs, p = url_to_fs(path)
    fs.makedirs(p, exist_ok=True)


def _tmp_name(p: str) -> str:
    head, _, tail = p.rpartition("/")
    return f"{head}/{TMP_PREFIX}{uuid.uuid4().hex[:8]}.{tail}"


def remove_tree(path: str) -> None:
    """Remove a folder (or file) and everything under it, if it exists. On local disk with shutil, not
    fsspec's rm, which asks for the working folder first (a Ray job's working folder can be gone by then)."""
    ffs, p = url_to_fs(path)
    if not ffs.exists(p):
        return
    if is_local(path):
        if os.path.isdir(p):
            shutil.rmtree(p)
        else:
            os.remove(p)
        return
    ffs.rm(p, recursive=True)


def is_local(path: str) -> bool:
    """True for a path on this machine's disk (a plain path or file://), where rename is atomic."""
    fs, _ = url_to_fs(path)
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


# errors of the storage written to (a full disk, a quota, a read-only mount, ...), not of the data; a failed
# write or flush reports them on a descriptor, naming no file
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO})


@contextmanager
def naming(path: str) -> Iterator[None]:
    """A storage error raised in the block that names no file is raised again naming `path` (the file being
    written), so the one-line error says where."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno not in STORAGE_ERRNOS:
            raise
        raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), path) from exc


@contextmanager
def atomic_open(path: str, mode: str = "wb") -> Iterator[IO[Any]]:
    """See `_atomic_open`; a storage error while writing names `path`."""
    with naming(path), _atomic_open(path, mode) as fh:
        yield fh


@contextmanager
def _atomic_open(path: str, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open `path` for writing so that a reader sees the whole file or none of it.

    On local disk: a temporary name in the same folder, renamed into place only if the block succeeds.
    On an object store: a local temporary file, uploaded with one PUT (or one multipart upload, which
    the store also makes visible only when complete) only if the block succeeds; a failed block uploads
    nothing. Object stores have no rename, and copying a temporary object would double the bytes.
    """
    fs, p = url_to_fs(path)
    if not is_local(path):
        with tempfile.NamedTemporaryFile(prefix=TMP_PREFIX, mode=mode) as fh:
            yield fh
            fh.flush()
            fs.put_file(fh.name, p)
        return
    fs.makedirs(p.rpartition("/")[0] or ".", exist_ok=True)
    tmp = _tmp_name(p)
    try:
        with fs.open(tmp, mode) as fh:
            yield fh
        fs.mv(tmp, p)
    finally:
        if fs.exists(tmp):
            fs.rm(tmp)


def write_bytes(path: str, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def write_json(path: str, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str) -> Any:
    fs, p = url_to_fs(path)
    with fs.open(p, "rb") as fh:
        return json.load(fh)


def write_table(table: pa.Table, path: str, schema: str | None = None) -> None:
    """Write a parquet file atomically, conformed to `schema` (a name in schemas/) when given, with its
    checksum sidecar (`curate.io.sums`)."""
    from curate.io import sums  # sums builds on this module

    if schema is not None:
        table = schemas.conform(table, schema)
    sums.write_bytes(path, encode_table(table))


def encode_table(table: pa.Table) -> bytes:
    """Parquet bytes: zstd, page checksums; the same table gives the same bytes however it is chunked."""
    buf = io.BytesIO()
    pq.write_table(table.combine_chunks(), buf, compression="zstd", write_page_checksum=True)
    return buf.getvalue()


def read_table(path: str, schema: str | None = None, columns: list[str] | None = None) -> pa.Table:
    """Read one parquet file or a folder of them, with a one-line error for a missing or bad file."""
    fs, p = url_to_fs(path)
    if not fs.exists(p):
        raise CurateError(f"no such file or folder: {path}")
    try:
        if fs.isdir(p):
            files = sorted(f for f in fs.ls(p, detail=False)
                           if f.endswith(".parquet") and not os.path.basename(f).startswith(("_", ".")))
            tables = [pq.read_table(f, filesystem=fs, columns=columns, page_checksum_verification=True)
                      for f in files]
            if not tables:
                raise CurateError(f"no parquet files in {path}")
            table = pa.concat_tables(tables)
        else:
            table = pq.read_table(p, filesystem=fs, columns=columns, page_checksum_verification=True)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CurateError(f"cannot read parquet {path}: {str(exc).splitlines()[0]}") from exc
    if schema is not None:
        table = schemas.check(table, schema)
    return table


def read_schema(path: str) -> pa.Schema:
    """The schema of a parquet file (or the first file of a folder), reading only its footer."""
    fs_, p = url_to_fs(path)
    if not fs_.exists(p):
        raise CurateError(f"no such file or folder: {path}")
    if fs_.isdir(p):
        files = sorted(f for f in fs_.ls(p, detail=False) if f.endswith(".parquet"))
        if not files:
            raise CurateError(f"no parquet files in {path}")
        p = files[0]
    try:
        with fs_.open(p, "rb") as fh:
            return pq.read_schema(fh)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CurateError(f"cannot read parquet {path}: {str(exc).splitlines()[0]}") from exc


def remove_tmp_files(folder: str) -> None:
    """Remove leftovers of an interrupted write (files starting with the temporary prefix)."""
    fs, p = url_to_fs(folder)
    if not fs.exists(p):
        return
    for f in fs.find(p):
        if os.path.basename(f).startswith(TMP_PREFIX):
            fs.rm(f)
