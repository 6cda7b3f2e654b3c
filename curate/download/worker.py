"""One shard in one worker process: install the address guard, let img2dataset's Downloader fetch it,
then normalise its output into deterministic files (sorted tar, our samples schema, a stats sidecar)."""

from __future__ import annotations

import json
import logging
import tarfile
from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from curate.download import guard
from curate.download.status import SUCCESS, classify
from curate.io import fs
from curate.io.tario import DeterministicTarWriter

log = logging.getLogger(__name__)

SHARD_DIGITS = 5


def shard_name(shard_id: int) -> str:
    return f"{shard_id:0{SHARD_DIGITS}d}"


@dataclass(frozen=True)
class ShardResult:
    shard_id: int
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class Layout:
    """Where one download run keeps its files."""

    root: str  # the stage folder

    @property
    def inputs(self) -> str:
        return fs.join(self.root, "_input")

    @property
    def raw(self) -> str:
        return fs.join(self.root, "_raw")

    def input_arrow(self, shard_id: int) -> str:
        return fs.join(self.inputs, f"{shard_name(shard_id)}.arrow")

    def tar(self, shard_id: int) -> str:
        return fs.join(self.root, "shards", f"{shard_name(shard_id)}.tar")

    def shard_stats(self, shard_id: int) -> str:
        return fs.join(self.root, "shards", f"{shard_name(shard_id)}_stats.json")

    def samples(self, shard_id: int) -> str:
        """Written last for a shard: its presence means the shard is complete."""
        return fs.join(self.root, "samples", f"{shard_name(shard_id)}.parquet")


def _sorted_tar(raw_tar: str, out_tar: str) -> None:
    """Rewrite img2dataset's tar (written in completion order, stamped with wall time) sorted by
    member name with fixed metadata, so the same download gives the same bytes."""
    rfs, rpath = fs.url_to_fs(raw_tar)
    members: list[tuple[str, bytes]] = []
    with rfs.open(rpath, "rb") as fh, tarfile.open(fileobj=fh, mode="r|") as tin:
        for m in tin:
            if m.isfile():
                members.append((m.name, tin.extractfile(m).read()))
    members.sort(key=lambda x: x[0])
    with fs.atomic_open(out_tar, "wb") as out:
        writer = DeterministicTarWriter(out)
        for name, data in members:
            writer.add(name, data)
        writer.close()


def normalise(layout: Layout, shard_id: int, inputs: pa.Table, content_types: dict[str, str]) -> Counter:
    """Turn img2dataset's raw shard into ours; every input row gets exactly one samples row."""
    name = shard_name(shard_id)
    raw = pq.read_table(fs.join(layout.raw, f"{name}.parquet")).to_pylist()
    by_uid = {r["uid"]: r for r in raw}
    rows, counts = [], Counter()
    for inp in inputs.to_pylist():
        r = by_uid.get(inp["uid"])
        if r is None:  # img2dataset logs and skips a sample whose write raised: keep it, with a status
            status, error, r = "download_error", "missing from the downloader's output", {}
        else:
            status = classify(r["status"], r["error_message"], content_types.get(inp["url"]))
            error = None if status == SUCCESS else r["error_message"]
        ok = status == SUCCESS
        rows.append({
            "uid": inp["uid"], "url": inp["url"], "caption": inp["caption"], "status": status, "error": error,
            "sha256": r.get("sha256") if ok else None,
            "width": r.get("width") if ok else None, "height": r.get("height") if ok else None,
            "original_width": r.get("original_width") if ok else None,
            "original_height": r.get("original_height") if ok else None,
            "shard": f"{name}.tar" if ok else None, "key": r.get("key") if ok else None,
        })
        counts[status] += 1
    _sorted_tar(fs.join(layout.raw, f"{name}.tar"), layout.tar(shard_id))
    fs.write_json(layout.shard_stats(shard_id), {"shard": f"{name}.tar", "rows": len(rows),
                                                 "status": dict(sorted(counts.items()))})
    table = pa.Table.from_pylist(rows)
    fs.write_table(table.sort_by([("uid", "ascending")]), layout.samples(shard_id), schema="samples")
    return counts


class ShardWorker:
    """A picklable callable that engines map over shard ids (Spark tasks, Ray tasks, or in-process)."""

    def __init__(self, downloader, policy: guard.AddressPolicy, layout: Layout) -> None:
        self.downloader = downloader
        self.policy = policy
        self.layout = layout

    def __call__(self, shard_id: int) -> ShardResult:
        guard.install(self.policy)
        name = shard_name(shard_id)
        src = self.layout.input_arrow(shard_id)
        work = fs.join(self.layout.raw, f"{name}.input.arrow")  # the Downloader deletes its input
        try:
            sfs, spath = fs.url_to_fs(src)
            with sfs.open(spath, "rb") as fh:
                data = fh.read()
            fs.write_bytes(work, data)
            inputs = pa.ipc.open_file(pa.BufferReader(data)).read_all()
            self.downloader.download_shard((shard_id, work))
            content_types = {u: guard.CONTENT_TYPES.pop(u, "") for u in inputs.column("url").to_pylist()}
            counts = normalise(self.layout, shard_id, inputs, content_types)
        except Exception as exc:  # a failed shard is retried by the caller, then reported
            log.exception("download shard %s failed", name)
            return ShardResult(shard_id, False, f"{type(exc).__name__}: {exc}")
        rfs, rpath = fs.url_to_fs(self.layout.raw)
        for suffix in (".tar", ".parquet", "_stats.json", ".input.arrow"):
            if rfs.exists(f"{rpath}/{name}{suffix}"):
                rfs.rm(f"{rpath}/{name}{suffix}")
        log.info("shard %s: %s", name, json.dumps(dict(counts)))
        return ShardResult(shard_id, True)
