"""Thumbnails for the image grids: read a few samples' images from the download tars, shrink them, and
inline them as base64 JPEG data URIs."""

from __future__ import annotations

import base64
import io
import logging
from collections import defaultdict

import pyarrow as pa
from PIL import Image

from curate.io import fs

log = logging.getLogger(__name__)
THUMB = 96
IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")


def thumbnail(data: bytes, size: int = THUMB) -> str | None:
    """A data URI of a JPEG thumbnail (longest side `size`), or None if the bytes are not an image."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.thumbnail((size, size))
            out = io.BytesIO()
            img.convert("RGB").save(out, format="JPEG", quality=70)
    except Exception:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def load_thumbnails(run: str, wanted: dict[str, dict]) -> dict[str, str]:
    """uid → data URI for the samples in `wanted` (uid → row with shard and key) that have an image."""
    from curate.io import tario

    by_shard: dict[str, dict[str, str]] = defaultdict(dict)
    for uid, row in wanted.items():
        if row.get("shard") is not None and row.get("key") is not None:
            by_shard[str(row["shard"])][str(row["key"])] = uid
    out: dict[str, str] = {}
    for shard, keys in sorted(by_shard.items()):
        name = shard if shard.endswith(".tar") else f"{shard}.tar"
        path = name if "/" in name else fs.join(run, "download", "shards", name)
        if not fs.exists(path):
            continue
        try:
            members = tario.index(path)
            tfs, p = fs.url_to_fs(path)
            with tfs.open(p, "rb") as fh:
                for key, uid in keys.items():
                    exts = members.get(key, {})
                    ext = next((e for e in IMAGE_EXTS if e in exts), None)
                    if ext is None:
                        continue
                    uri = thumbnail(tario.read_member(fh, *exts[ext]))
                    if uri is not None:
                        out[uid] = uri
        except Exception as exc:  # a damaged tar costs its thumbnails, not the report
            log.warning("report: cannot read thumbnails from %s: %s", path, exc)
    return out


def load_examples(item: dict) -> dict:
    """One task's work for the image grids: the download rows of a bounded set of uids (`parts`: samples part
    path → uids) and their thumbnails. Returns {"rows": uid → row, "thumbs": uid → data URI}."""
    import pyarrow.compute as pc

    from curate.io import dataset

    columns = ["uid", "url", "caption", "status", "error", "shard", "key"]
    rows: dict[str, dict] = {}
    for path, uids in sorted(item["parts"].items()):
        table = dataset.read_part(path, columns, only_present=True)
        table = table.filter(pc.is_in(table.column("uid"), value_set=pa.array(uids, pa.string())))
        rows.update({row["uid"]: row for row in table.to_pylist()})
    return {"rows": rows, "thumbs": load_thumbnails(item["run"], rows)}
