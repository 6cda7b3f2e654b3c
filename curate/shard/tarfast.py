"""Tar I/O at copy speed for resharding: the per-member work of Python's `tarfile` (header objects,
checksums field by field) costs more than moving a 30 kB image, so headers are built and read here with
byte templates. The output is byte-identical to `curate.io.tario.DeterministicTarWriter` (a test checks);
anything unusual (long names, pax or GNU headers) falls back to `tarfile`."""

from __future__ import annotations

import os

import numpy as np

from curate.io import fs
from curate.io.tario import index

BLOCK = 512
RECORD = 20 * BLOCK  # tarfile pads an archive to a multiple of its record size
_ZERO = bytes(BLOCK)

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


def write_tar(fh, members: list[tuple[str, bytes | memoryview]]) -> int:
    """Write a whole archive to `fh`; return the bytes written."""
    sizes = [memoryview(data).nbytes for _, data in members]
    heads = headers([name for name, _ in members], sizes)
    if heads is None:
        return _write_slow(fh, members)
    parts: list = []
    for i, ((_, data), size) in enumerate(zip(members, sizes, strict=True)):
        parts += [heads[i * BLOCK:(i + 1) * BLOCK], data, bytes(-size % BLOCK)]
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


def headers(names: list[str], sizes: list[int]) -> bytes | None:
    """The USTAR headers of many members at once (numpy), concatenated: the bytes `tarfile` writes for
    DeterministicTarWriter, or None when one needs more than a plain USTAR header."""
    if not names:
        return b""
    try:
        raw = np.array(names, dtype="S")  # ASCII names, NUL-padded to the longest
    except UnicodeEncodeError:
        raw = np.array([n.encode("utf-8") for n in names], dtype="S")
    size = np.asarray(sizes, dtype=np.int64)
    if raw.itemsize > 100 or int(size.max()) >= 8 ** 11:
        return None
    n = len(raw)
    out = np.empty((n, BLOCK), dtype=np.uint8)
    out[:] = np.frombuffer(_TEMPLATE, np.uint8)
    name = raw.view(np.uint8).reshape(n, raw.itemsize)
    digits = ((size[:, None] >> _OCTAL11) % 8 + ord("0")).astype(np.uint8)  # 11 octal digits, then a NUL
    out[:, :raw.itemsize] = name
    out[:, 124:135] = digits
    # the checksum: the template (its own field counted as spaces), the name and the size digits
    chk = _BASE_SUM + name.sum(axis=1, dtype=np.int64) + digits.sum(axis=1, dtype=np.int64)
    out[:, 148:154] = (chk[:, None] >> _OCTAL6) % 8 + ord("0")
    out[:, 154] = 0  # "%06o\0 ": the space at 155 stays
    return out.tobytes()


_OCTAL11 = np.arange(30, -1, -3, dtype=np.int64)
_OCTAL6 = np.arange(15, -1, -3, dtype=np.int64)
