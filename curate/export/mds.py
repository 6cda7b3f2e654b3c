"""MDS (MosaicML streaming's format, through the maintained `streaming-community` package): one MDSWriter
per tar into `mds/STEM/` (its `shard.NNNNN.mds` files and `index.json`), then one merged `mds/index.json`
(streaming's `merge_index`) so `streaming.StreamingDataset(local=...)` or `remote=` reads every sample.

A tar's folder is written beside its final name (local disk: `_tmp.<id>.STEM`, renamed into place) or in a
local temporary folder uploaded file by file with `index.json` last (object stores): a folder counts as
written when its `index.json` is there."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid

from curate.export.tars import samples
from curate.io import fs

INDEX = "index.json"
# raw bytes, not streaming's `jpeg` encoding (which re-encodes): a reader gets the stored image bytes
COLUMNS = {"uid": "str", "key": "str", "caption": "str", "image": "bytes"}


def _write_local(tar: str, folder: str, size_limit: int) -> int:
    from streaming import MDSWriter

    n = 0
    with MDSWriter(out=folder, columns=COLUMNS, compression=None, size_limit=size_limit, progress_bar=False) as w:
        for s in samples(tar):
            w.write({"uid": s.uid, "key": s.key, "caption": s.caption or "", "image": s.image})
            n += 1
    return n


def write_shard(tar: str, out_dir: str, stem: str, size_limit: int) -> dict:
    """`out_dir/STEM/` from `tar`; its stats."""
    final = fs.join(out_dir, stem)
    if fs.is_local(out_dir):
        ofs, root = fs.url_to_fs(out_dir)
        tmp = f"{root}/{fs.TMP_PREFIX}{uuid.uuid4().hex[:8]}.{stem}"
        try:
            n = _write_local(tar, tmp, size_limit)
            fs.remove_tree(final)  # a folder without its index.json: an interrupted upload never happens here
            os.rename(tmp, fs.url_to_fs(final)[1])
        finally:
            fs.remove_tree(tmp)
        return {"samples": n}
    with tempfile.TemporaryDirectory(prefix=fs.TMP_PREFIX) as tmp:
        n = _write_local(tar, tmp, size_limit)
        ofs, root = fs.url_to_fs(final)
        names = sorted(os.listdir(tmp), key=lambda name: name == INDEX)  # index.json last: the folder's marker
        for name in names:
            ofs.put_file(os.path.join(tmp, name), f"{root}/{name}")
    return {"samples": n}


def done(files: list[str], out_root: str) -> set[str]:
    """Stems whose folder has its index.json, from one recursive listing (`files`, paths under out_root)."""
    out = set()
    for f in files:
        rel = f[len(out_root):].strip("/").split("/")
        if len(rel) == 2 and rel[1] == INDEX and not rel[0].startswith(fs.TMP_PREFIX):
            out.add(rel[0])
    return out


class _Quiet(logging.Filter):
    """streaming's merge_index announces its temporary folders as warnings: detail, not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("streaming") or record.getMessage().startswith("A temporary folder"))


def merge(out_dir: str, stems: list[str]) -> dict:
    """Write `out_dir/index.json` merging the tars' indexes (read on the driver: one small file per tar)."""
    from streaming.base.util import merge_index

    with tempfile.TemporaryDirectory(prefix="curate-mds-index.") as tmp:
        paths = []
        for stem in stems:
            local = os.path.join(tmp, stem, INDEX)
            os.makedirs(os.path.dirname(local))
            ofs, p = fs.url_to_fs(fs.join(out_dir, stem, INDEX))
            ofs.get_file(p, local)
            paths.append(local)
        quiet, loggers = _Quiet(), (logging.getLogger(), logging.getLogger("streaming.base.storage.upload"))
        for lg in loggers:
            lg.addFilter(quiet)
        try:
            merge_index(paths, tmp, keep_local=True)
        finally:
            for lg in loggers:
                lg.removeFilter(quiet)
        with open(os.path.join(tmp, INDEX), "rb") as fh:
            merged = json.load(fh)
    fs.write_bytes(fs.join(out_dir, INDEX), (json.dumps(merged, sort_keys=True) + "\n").encode())
    return {"mds_shards": len(merged["shards"])}
