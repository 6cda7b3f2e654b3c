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


def _files(path: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per sample; a sample's files are adjacent, the key is the name up to the
    first dot of the file name (webdataset's rule)."""
    tfs, p = fs.url_to_fs(path)
    key, files = None, {}
    with tfs.open(p, "rb", block_size=1 << 24) as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            base, _, ext = member.name.rpartition("/")[2].partition(".")
            if base != key and key is not None:
                yield key, files
                files = {}
            key = base
            files[ext] = tar.extractfile(member).read()
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
