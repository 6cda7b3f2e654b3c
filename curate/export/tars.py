"""Read a webdataset tar sample by sample in one sequential pass (one GET on an object store)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from curate.errors import CurateError
from curate.io import fs

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")  # the first of these a sample has is its image


@dataclass(frozen=True)
class Sample:
    key: str
    uid: str
    caption: str | None
    image: bytes
    image_ext: str


BLOCK = 512


def _octal(field: bytes) -> int:
    return int(field.rstrip(b"\0 ").decode("ascii") or "0", 8)


def _plain_members(fh) -> Iterator[tuple[str, bytes]]:
    """(name, data) of each member of a plain USTAR archive, headers parsed here (Python's tarfile spends
    more per member than reading a 60 kB image); ValueError at anything else (pax or GNU long names, links,
    a bad checksum), for `tarfile` to take over."""
    while True:
        head = fh.read(BLOCK)
        if len(head) < BLOCK or head == bytes(BLOCK):
            return
        if _octal(head[148:156]) != sum(head[:148]) + 256 + sum(head[156:]):
            raise ValueError("tar header checksum mismatch")
        kind, size = head[156:157], _octal(head[124:136])
        if kind not in (b"0", b"\0", b"5"):
            raise ValueError(f"tar member of type {kind!r}")
        name = head[:100].split(b"\0", 1)[0]
        if head[257:262] == b"ustar" and head[345]:
            name = head[345:500].split(b"\0", 1)[0] + b"/" + name
        data = fh.read(size)
        fh.read(-size % BLOCK)
        if kind != b"5":
            yield name.decode("utf-8"), data


def _tarfile_members(fh) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(fileobj=fh, mode="r|") as tar:
        for member in tar:
            if member.isfile():
                yield member.name, tar.extractfile(member).read()


def _members(path: str) -> Iterator[tuple[str, bytes]]:
    """Every file member once: where the fast parser gives up, `tarfile` reads the archive from its start
    and the members already given are skipped."""
    tfs, p = fs.url_to_fs(path)
    given = 0
    with tfs.open(p, "rb", block_size=1 << 24) as fh:
        try:
            for item in _plain_members(fh):
                given += 1
                yield item
            return
        except ValueError:
            fh.seek(0)
        for i, item in enumerate(_tarfile_members(fh)):
            if i >= given:
                yield item


def _files(path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per sample; a sample's files are adjacent, the key is the name up to the
    first dot of the file name (webdataset's rule)."""
    key, files = None, {}
    for name, data in _members(path):
        base, _, ext = name.rpartition("/")[2].partition(".")
        if base != key and key is not None:
            yield key, files
            files = {}
        key = base
        files[ext] = data
    if key is not None:
        yield key, files


def samples(path: str) -> Iterator[Sample]:
    """The samples of tar `path`: the uid from each sample's json (our download and DataComp's write it),
    the caption from its txt (else the json's caption), the bytes of its image file as stored."""
    for key, files in _files(path):
        meta = json.loads(files["json"]) if "json" in files else {}
        uid = meta.get("uid")
        ext = next((e for e in IMAGE_EXTS if e in files), None)
        if uid is None or ext is None:
            raise CurateError(f"export: sample {key} of {path} has no {'uid in its json' if uid is None else 'image'}")
        caption = files["txt"].decode("utf-8") if "txt" in files else meta.get("caption")
        yield Sample(key, str(uid), caption, files[ext], ext)
