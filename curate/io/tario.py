"""Tar helpers: an index of member offsets for random access, and a deterministic writer."""

from __future__ import annotations

import io
import tarfile
from collections import defaultdict
from collections.abc import Iterable
from typing import BinaryIO

from curate.io import crc, fs, sums


def index(path: str) -> dict[str, dict[str, tuple[int, int]]]:
    """key -> {extension: (data offset, size)} for every file member of an uncompressed tar."""
    out: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    tfs, p = fs.url_to_fs(path)
    with tfs.open(p, "rb") as fh, tarfile.open(fileobj=fh, mode="r:") as tar:
        for m in tar:
            if m.isfile():
                key, _, ext = m.name.partition(".")
                out[key][ext] = (m.offset_data, m.size)
    return dict(out)


def read_member(fh: BinaryIO, offset: int, size: int) -> bytes:
    fh.seek(offset)
    return fh.read(size)


class DeterministicTarWriter:
    """USTAR members with fixed owner, mode and mtime: the same samples give the same bytes. `members`
    lists (name, data offset, size) of what was written, for the archive's index (`tarindex`)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.tar = tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT)
        self.members: list[tuple[str, int, int]] = []
        self.crcs: list[list[int]] = []  # [data offset, CRC32C of the data] per member, for the sidecar

    def add(self, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), 0, 0o444
        self.tar.addfile(info, io.BytesIO(data))
        padded = info.size + (-info.size % tarfile.BLOCKSIZE)
        self.members.append((name, self.tar.offset - padded, info.size))  # the data ends the member
        self.crcs.append([self.tar.offset - padded, crc.value(data)])

    def close(self) -> None:
        self.tar.close()


def write_tar_file(path: str, members: Iterable[tuple[str, bytes]]) -> list[tuple[str, int, int]]:
    """Write `members` ((name, data), in order) as a deterministic tar at `path` (temporary name, then
    rename), with its checksum sidecar; returns (name, data offset, size) of each, for the archive's index."""
    with sums.open_part(path) as fh:
        writer = DeterministicTarWriter(fh)
        for name, data in members:
            writer.add(name, data)
        writer.close()
        fh.members = writer.crcs
    return writer.members
