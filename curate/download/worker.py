"""One shard in one worker process: curate's downloader (img2dataset's Downloader with curate's own fetch and
checks, curate.download.shardloop) fetches it, then its output is normalised into deterministic files (sorted
tar, our samples schema, a stats sidecar). With `retry`, the shard's input is only some rows of a finished
shard (--retry-failed): their new results are merged into it, under the keys they would have had the first
time."""

from __future__ import annotations

import json
import logging
import math
import tarfile
from collections import Counter
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from curate import schemas
from curate.download.inputs import FACES, OPT_OUT
from curate.download.presets import CARRIED
from curate.download.status import SUCCESS, classify, statuses
from curate.errors import CurateError, cause_text
from curate.io import dataset, fs, tarindex
from curate.io.tario import write_tar_file

log = logging.getLogger(__name__)

SHARD_DIGITS = 5
COLUMNS = ["uid", "caption", "url"]  # the order img2dataset's Reader gives its Downloader
POSITION = "position"  # in a retry input: the row's index in its original shard
SAMPLES_VERSION = 3  # samples.v3: v2 plus `source`


def shard_name(shard_id: int) -> str:
    return f"{shard_id:0{SHARD_DIGITS}d}"


def sample_key(shard_id: int, index: int, shard_size: int) -> str:
    """img2dataset's key for the `index`-th row of shard `shard_id` (downloader.compute_key)."""
    digits = math.ceil(math.log10(shard_size))
    return f"{10 ** digits * shard_id + index:0{digits + SHARD_DIGITS}d}"


@dataclass(frozen=True)
class Layout:
    """Where one download run keeps its files."""

    root: str  # the stage folder

    @property
    def urls_dir(self) -> str:
        """The planned input, one part per shard (curate.download.plan)."""
        return fs.join(self.root, "urls")

    def urls(self, shard_id: int) -> str:
        return fs.join(self.urls_dir, f"{shard_name(shard_id)}.parquet")

    @property
    def raw(self) -> str:
        return fs.join(self.root, "_raw")

    def tar(self, shard_id: int) -> str:
        return fs.join(self.root, "shards", f"{shard_name(shard_id)}.tar")

    def shard_stats(self, shard_id: int) -> str:
        return fs.join(self.root, "shards", f"{shard_name(shard_id)}_stats.json")

    @property
    def samples_dir(self) -> str:
        return fs.join(self.root, "samples")

    def samples(self, shard_id: int) -> str:
        """Written last for a shard: its presence means the shard is complete."""
        return fs.join(self.samples_dir, f"{shard_name(shard_id)}.parquet")


def samples_version(layout: Layout) -> int:
    """The samples version a run's new shards are written in: that of the shards it already has (an older
    curate's, on a resume or --retry-failed), else SAMPLES_VERSION; so one run's shards agree on columns."""
    schema = dataset.read_schema(layout.samples_dir)
    return SAMPLES_VERSION if schema is None else schemas.version_of(schema, "samples") or SAMPLES_VERSION


def _read_tar(path: str) -> dict[str, bytes]:
    rfs, rpath = fs.url_to_fs(path)
    members: dict[str, bytes] = {}
    with rfs.open(rpath, "rb") as fh, tarfile.open(fileobj=fh, mode="r|") as tin:
        for m in tin:
            if m.isfile():
                members[m.name] = tin.extractfile(m).read()
    return members


def _rekey(members: dict[str, bytes], keys: dict[str, str]) -> dict[str, bytes]:
    """Rename members `key.ext` to `keys[key].ext`, and the key inside each `.json`, as img2dataset writes it."""
    out = {}
    for name, data in members.items():
        key, _, ext = name.partition(".")
        new = keys.get(key, key)
        if ext == "json" and new != key:
            meta = json.loads(data)
            meta["key"] = new
            data = json.dumps(meta, indent=4).encode()
        out[f"{new}.{ext}"] = data
    return out


def _write_sorted_tar(members: dict[str, bytes], out_tar: str) -> None:
    """Members sorted by name with fixed metadata, so the same samples give the same bytes; then the
    tar's member index (`NNNNN.idx`, DALI's format), which the shard stage reads instead of the headers."""
    written = write_tar_file(out_tar, ((name, members[name]) for name in sorted(members)))
    if not tarindex.write_index(out_tar, written):
        log.warning("%s: member names with whitespace; no .idx written", out_tar)


def normalise(layout: Layout, shard_id: int, inputs: pa.Table, shard_size: int, retry: bool = False,
              version: int = SAMPLES_VERSION) -> Counter:
    """Turn the downloader's raw shard into ours (samples.v`version`); every input row gets exactly one samples
    row. The raw status is curate's own (curate.download.shardloop); anything else is classified."""
    name = shard_name(shard_id)
    positions = inputs.column(POSITION).to_pylist() if retry else range(inputs.num_rows)
    keys = {sample_key(shard_id, j, shard_size): sample_key(shard_id, i, shard_size)
            for j, i in enumerate(positions)}
    raw = pq.read_table(fs.join(layout.raw, f"{name}.parquet")).to_pylist()
    by_uid = {r["uid"]: r for r in raw}
    known = statuses()
    rows = []
    for inp in inputs.to_pylist():
        r = by_uid.get(inp["uid"])
        if r is None:  # a sample whose write raised: keep it, with a status
            status, error, r = "download_error", "missing from the downloader's output", {}
        else:
            status = r["status"] if r["status"] in known else classify(r["status"], r["error_message"])
            error = None if status == SUCCESS else r["error_message"]
        ok = status == SUCCESS
        rows.append({
            "uid": inp["uid"], "url": inp["url"], "caption": inp["caption"], "status": status, "error": error,
            "sha256": r.get("sha256") if ok or status == "safety_hash_list" else None,
            "width": r.get("width") if ok else None, "height": r.get("height") if ok else None,
            "original_width": r.get("original_width") if ok else None,
            "original_height": r.get("original_height") if ok else None,
            "shard": f"{name}.tar" if ok else None, "key": keys.get(r.get("key"), r.get("key")) if ok else None,
            **{c: inp.get(c) for c in CARRIED},
        })
    members = _rekey(_read_tar(fs.join(layout.raw, f"{name}.tar")), keys)
    if retry:  # merge into the finished shard: its other rows and members stay as they are
        retried = {row["uid"] for row in rows}
        old = dataset.read_part(layout.samples(shard_id)).to_pylist()
        rows += [row for row in old if row["uid"] not in retried]
        members = _read_tar(layout.tar(shard_id)) | members
        kept = {row["key"] for row in rows if row["status"] == SUCCESS}  # a half-merged earlier retry left
        members = {n: d for n, d in members.items() if n.partition(".")[0] in kept}  # no stale members
    counts = Counter(row["status"] for row in rows)
    _write_sorted_tar(members, layout.tar(shard_id))
    fs.write_json(layout.shard_stats(shard_id), {"shard": f"{name}.tar", "rows": len(rows),
                                                 "status": dict(sorted(counts.items()))})
    table = schemas.conform(pa.Table.from_pylist(rows), "samples", version)
    dataset.write_part(table.sort_by([("uid", "ascending")]), layout.samples(shard_id))
    return counts


class ShardWorker:
    """A picklable callable that engines map over shard ids (Spark tasks, Ray tasks, or in-process). It reads
    its shard's planned rows (`urls/NNNNN.parquet`) itself and returns a small stats dict; a shard that cannot
    finish raises, so the engine's task retries run it again (per-sample failures are rows, not errors)."""

    def __init__(self, downloader, layout: Layout, retry: bool = False, version: int = SAMPLES_VERSION) -> None:
        self.downloader = downloader
        self.layout = layout
        self.retry = retry
        self.version = version  # the samples schema version written (samples_version)

    def _inputs(self, shard_id: int) -> pa.Table | None:
        """The rows to fetch: the shard's planned rows, or (retry) those of them that failed retryably."""
        urls = dataset.read_part(self.layout.urls(shard_id))
        if not self.retry:
            return None if fs.exists(self.layout.samples(shard_id)) else urls  # a task rerun skips done shards
        from curate.download.retry import failed_rows

        failed = failed_rows(dataset.read_part(self.layout.samples(shard_id)), urls)
        return failed if failed.num_rows else None

    def __call__(self, shard_id: int) -> dict:
        name = shard_name(shard_id)
        try:
            inputs = self._inputs(shard_id)
            if inputs is None:
                return {}
            columns = COLUMNS + [c for c in (OPT_OUT, FACES) if c in inputs.column_names]  # urls.v2 parts lack them
            self.downloader.download_shard((shard_id, inputs.select(columns)))
            counts = normalise(self.layout, shard_id, inputs, self.downloader.number_sample_per_shard, self.retry,
                               self.version)
        except CurateError:
            raise
        except Exception as exc:  # the engine retries the task; its last failure reaches the user in one line
            raise CurateError(f"download shard {name} failed: {cause_text(exc)}") from exc
        rfs, rpath = fs.url_to_fs(self.layout.raw)
        for suffix in (".tar", ".parquet", "_stats.json"):
            if rfs.exists(f"{rpath}/{name}{suffix}"):
                rfs.rm(f"{rpath}/{name}{suffix}")
        log.info("shard %s: %s", name, json.dumps(dict(counts)))
        return {"shards": 1, "rows": inputs.num_rows, "fetched": dict(counts)}
