"""Tar I/O at copy speed for resharding: the per-member work of Python's `tarfile` (header objects,
checksums field by field) costs more than moving a 30 kB image, so headers are built and read here with
byte templates. The output is byte-identical to `curate.io.tario.DeterministicTarWriter` (a test checks);
anything unusual (long names, pax or GNU headers) falls back to `tarfile`."""

from __future__ import annotations

import errno
import os
import uuid

from curate.io import fs
from curate.io.tario import index

BLOCK = 512
RECORD = 20 * BLOCK  # tarfile pads an archive to a multiple of its record size
_ZERO = bytes(BLOCK)
SMALL = 16 * 1024  # files under this size (captions, json) are read and written with the headers

# A USTAR header as tarfile writes it for DeterministicTarWriter (mode 0444, owner 0/0, mtime 0, no
# user or group names): only the name, the size and the checksum change from member to member.
_TEMPLATE = bytearray(BLOCK)
_TEMPLATE[100:108] = b"0000444\0"  # mode
_TEMPLATE[108:116] = b"0000000\0"  # uid
_TEMPLATE[116:124] = b"0000000\0"  # gid
_TEMPLATE[136:148] = b"00000000000\0"  # mtime
_TEMPLATE[148:156] = b"        "  # checksum, counted as spaces
_TEMPLATE[156:157] = b"0"  # regular file
_TEMPLATE[257:265] = b"ustar\x0000"
# devmajor, devminor, user and group names stay NUL, as tarfile leaves them for a regular file
_TEMPLATE = bytes(_TEMPLATE)
_BASE_SUM = sum(_TEMPLATE)
_MODE_TO_SIZE, _MTIME, _TAIL = _TEMPLATE[100:124], _TEMPLATE[136:148], _TEMPLATE[156:]


def header(name: str, size: int) -> bytes | None:
    """The member header, or None when the name or size needs more than a plain USTAR header."""
    raw = name.encode("utf-8")
    if len(raw) > 100 or size >= 8 ** 11:
        return None
    size_field = b"%011o\0" % size
    chk = _BASE_SUM + sum(raw) + sum(size_field)
    return b"".join((raw, bytes(100 - len(raw)), _MODE_TO_SIZE, size_field, _MTIME, b"%06o\0 " % chk, _TAIL))


def write_tar(fh, members: list[tuple[str, bytes | memoryview]]) -> int:
    """Write a whole archive to `fh`; return the bytes written."""
    parts: list[bytes] = []
    for name, data in members:
        h = header(name, memoryview(data).nbytes)
        if h is None:
            return _write_slow(fh, members)
        parts += [h, data, b"\0" * (-memoryview(data).nbytes % BLOCK)]
    body = sum(map(len, parts))
    parts.append(b"\0" * (2 * BLOCK + (-(body + 2 * BLOCK) % RECORD)))  # end-of-archive blocks, record padding
    for part in parts:  # no joined copy of the whole shard: the file's buffer takes the pieces
        fh.write(part)
    return body + len(parts[-1])


def _write_slow(fh, members: list[tuple[str, bytes]]) -> int:
    from curate.io.tario import DeterministicTarWriter

    start = fh.tell()
    w = DeterministicTarWriter(fh)
    for name, data in members:
        w.add(name, data)
    w.close()
    return fh.tell() - start


def scan(path: str) -> dict[str, dict[str, tuple[int, int]]]:
    """key -> {extension: (data offset, size)}, like `tario.index`, reading only the headers."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    tfs, p = fs.url_to_fs(path)
    with tfs.open(p, "rb") as fh:
        pos = 0
        local = local_path(path)
        fd = os.open(local, os.O_RDONLY) if local is not None else -1
        try:
            while True:
                if fd >= 0:
                    h = os.pread(fd, BLOCK, pos)
                else:
                    fh.seek(pos)
                    h = fh.read(BLOCK)
                if len(h) < BLOCK or h == _ZERO:
                    return out
                kind = h[156:157]
                if kind not in (b"0", b"\0", b"5") or h[124] & 0x80 or h[345] and h[257:262] == b"ustar":
                    return index(path)  # pax/GNU headers, base-256 sizes or prefixed names: tarfile knows them
                size = int(h[124:136].split(b"\0", 1)[0] or b"0", 8)
                if kind != b"5":
                    key, _, ext = h[:100].rstrip(b"\0").decode("utf-8").partition(".")
                    out.setdefault(key, {})[ext] = (pos + BLOCK, size)
                pos += BLOCK + size + (-size % BLOCK)
        finally:
            if fd >= 0:
                os.close(fd)
    return out


def local_path(path: str) -> str | None:
    """The OS path of a local file (fsspec's file:// or a plain path), None for any other filesystem."""
    sfs, p = fs.url_to_fs(path)
    return p if "file" in (sfs.protocol if isinstance(sfs.protocol, tuple) else (sfs.protocol,)) else None


def copy_tar_local(dest: str, entries: list[tuple[str, str, tuple[tuple[str, int, int], ...]]]) -> int | None:
    """Write the archive of `entries` ((new key, local source tar, files)) to the local path `dest`, moving
    file data in the kernel (`os.copy_file_range`) and writing only headers and padding from Python.
    Same bytes as `write_tar`. Returns the archive size, or None (nothing written) where the names need
    more than USTAR or the kernel cannot copy between these files."""
    heads = []
    for key, _, members in entries:
        for ext, _, size in members:
            h = header(f"{key}.{ext}", size)
            if h is None:
                return None
            heads.append(h)
    folder, _, name = dest.rpartition("/")
    tmp = f"{folder}/{fs.TMP_PREFIX}{uuid.uuid4().hex[:8]}.{name}"
    fds: dict[str, int] = {}
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        pending: list[bytes] = []  # headers, padding and small files, written together before a big file
        written, k = 0, 0
        for _, src, members in entries:
            if src not in fds:
                fds[src] = os.open(src, os.O_RDONLY)
            for _, off, size in members:
                pending.append(heads[k])
                k += 1
                if size < SMALL:
                    pending.append(os.pread(fds[src], size, off))
                else:
                    written += _write_all(out, b"".join(pending))
                    pending = []
                    written += _copy_all(fds[src], out, off, size)
                pending.append(bytes(-size % BLOCK))
        tail = b"".join(pending)
        written += _write_all(out, tail + bytes(2 * BLOCK + (-(written + len(tail) + 2 * BLOCK) % RECORD)))
        os.close(out)
        out = -1
        os.replace(tmp, dest)
        return written
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            return None
        raise
    finally:
        if out >= 0:
            os.close(out)
        for fd in fds.values():
            os.close(fd)
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_all(fd: int, data: bytes) -> int:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return len(data)


def _copy_all(src: int, dst: int, offset: int, size: int) -> int:
    left = size
    while left:
        n = os.copy_file_range(src, dst, left, offset + size - left)
        if n == 0:
            raise ValueError(f"tar member at offset {offset} is cut short")
        left -= n
    return size
