"""A hash list that arrives after the download: the bytes of the samples it matches leave the disk.

The download never writes a body on the hash lists it was given (curate.download.safety). A list given only to
`curate dedup --hash-list` matches samples whose files already lie in `download/shards/NNNNN.tar`; once the
decisions are written, one engine task per download shard that has a decisions part reads that part, and when
it has `safety_hash_list` rows:
  1. writes their hashes (hashes.v2 rows, from the shard's hashes part) to `download/purged/NNNNN.parquet`,
     so that a later hashing pass over the rewritten tar (a dedup run redone from scratch) still has them
     and decides those samples again, although their files are gone;
  2. counts the files it removes into `dedup/_purged/NNNNN.json` (so a run resumed after a kill reports
     what the killed one removed, as an uninterrupted run would; --redo starts the count again), then
     rewrites the shard's tar without those samples' files (every member of their key: image, caption,
     json), streamed member by member to a temporary name and renamed into place (`sums.open_part`: one
     PUT on an object store, and the tar's checksum sidecar rewritten), with the same deterministic member
     headers the download writes, and the tar's member index (`NNNNN.idx`) rewritten after it (removed
     first, so no reader meets a stale one).
The samples table keeps the rows as the download wrote them; the dedup decisions say `safety_hash_list`, and
every later stage reads only the samples dedup kept. Each step is idempotent, so an interrupted task is
finished by a rerun (the decisions are recomputed from the hashes parts). A shard without listed rows is not
touched.
"""

from __future__ import annotations

import logging
import tarfile

import pyarrow as pa
import pyarrow.compute as pc

from curate.dedup.hashes import PURGED
from curate.dedup.hashes import VERSION as HASHES_VERSION
from curate.download.status import SUCCESS
from curate.errors import CurateError
from curate.io import dataset, fs, sums, tarindex
from curate.io.tario import DeterministicTarWriter

log = logging.getLogger(__name__)

REASON = "safety_hash_list"
COUNTED = "_purged"  # dedup/_purged/NNNNN.json: what the purge of download shard NNNNN removed
HASH_COLS = ["uid", "md5", "sha1", "sha256", "phash", "pdq"]


def plan(run_dir: str, decisions_dir: str, hashes_dir: str) -> list[dict]:
    """One descriptor per download shard with a decisions part (one listing)."""
    download = fs.join(run_dir, "download")
    return [{"decisions": fs.join(decisions_dir, name), "samples": fs.join(download, "samples", name),
             "hashes": fs.join(hashes_dir, name), "purged": fs.join(download, PURGED, name),
             "tar": fs.join(download, "shards", name.removesuffix(dataset.SUFFIX) + ".tar"),
             "counted": fs.join(decisions_dir.rstrip("/").rpartition("/")[0], COUNTED,
                                name.removesuffix(dataset.SUFFIX) + ".json")}
            for name in dataset.list_parts(decisions_dir)]


def _count(path: str, drop: set[str]) -> int:
    """How many members of the tar at `path` have a key (the name before the first dot) in `drop`."""
    tfs, p = fs.url_to_fs(path)
    if not tfs.exists(p):
        return 0
    try:
        with sums.open_verified(path) as fh, tarfile.open(fileobj=fh, mode="r|") as tar:
            return sum(1 for m in tar if m.isfile() and m.name.partition(".")[0] in drop)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CurateError(f"dedup: cannot read {path}: {exc}") from exc


def _rewrite_tar(path: str, drop: set[str], removed: int | None = None) -> None:
    """Rewrite the tar at `path` without the members whose key (the name before the first dot) is in `drop`
    (`removed` of them, counted here when not given); a tar with none is left as it was."""
    tfs, p = fs.url_to_fs(path)
    if not (_count(path, drop) if removed is None else removed):
        return
    try:
        had_index = tarindex.read_index_bytes(path) is not None
        if had_index:
            ifs, ip = fs.url_to_fs(tarindex.index_path(path))
            ifs.rm(ip)
        with tfs.open(p, "rb") as fh, tarfile.open(fileobj=fh, mode="r|") as tar, sums.open_part(path) as out:
            writer = DeterministicTarWriter(out)
            for m in tar:
                if m.isfile() and m.name.partition(".")[0] not in drop:
                    writer.add(m.name, tar.extractfile(m).read())
            writer.close()
            out.members = writer.crcs
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise CurateError(f"dedup: cannot rewrite {path}: {exc}") from exc
    if had_index and not tarindex.write_index(path, writer.members):
        log.warning("%s: member names with whitespace; no .idx written", path)


def _record(item: dict, uids: pa.Array) -> None:
    """The listed samples' hashes (hashes.v2) to `download/purged/` (a v1 hashes part gives null PDQ)."""
    hashes = dataset.read_part(item["hashes"], HASH_COLS, only_present=True)
    hashes = hashes.filter(pc.is_in(hashes.column("uid"), value_set=uids))
    if "pdq" not in hashes.column_names:
        hashes = hashes.append_column("pdq", pa.nulls(hashes.num_rows, pa.string()))
    dataset.write_part(hashes.sort_by("uid"), item["purged"], "hashes", HASHES_VERSION)


def purge_shard(item: dict) -> dict:
    """Record one shard's hash-listed samples' hashes, then remove their files from its tar."""
    decisions = dataset.read_part(item["decisions"], ["uid", "reason"])
    listed = decisions.filter(pc.fill_null(pc.equal(decisions.column("reason"), REASON), False)).column("uid")
    if not len(listed):
        return {}
    listed = listed.combine_chunks()
    samples = dataset.read_part(item["samples"], ["uid", "status", "key"])
    mine = samples.filter(pc.fill_null(pc.and_(pc.is_in(samples.column("uid"), value_set=listed),
                                               pc.equal(samples.column("status"), SUCCESS)), False))
    keys = {k for k in mine.column("key").to_pylist() if k}
    _record(item, listed)
    # the count goes to a stats sidecar before the tar is rewritten: a run killed after the rewrite finds
    # nothing left to remove, and reports what the first one removed (the same stats as an uninterrupted run)
    removed = None  # a resumed run's tar may be rewritten already: _rewrite_tar counts what is left
    if fs.exists(item["counted"]):
        stats = fs.read_json(item["counted"])
    else:
        removed = _count(item["tar"], keys) if keys else 0
        stats = {"safety_shards_rewritten": int(removed > 0), "safety_files_removed": removed}
        fs.write_json(item["counted"], stats)
    if keys:
        _rewrite_tar(item["tar"], keys, removed)
    log.info("dedup: %s: %d files of %d hash-listed samples removed", item["tar"], stats["safety_files_removed"],
             mine.num_rows)
    return stats


def purge(engine, run_dir: str, decisions_dir: str, hashes_dir: str) -> dict:
    """Every download shard's hash-listed samples' files out of its tar (their hashes kept)."""
    items = plan(run_dir, decisions_dir, hashes_dir)
    got = engine.for_each(purge_shard, items) if items else {}
    log.info("dedup: %d files of hash-listed samples removed from %d tars", got.get("safety_files_removed", 0),
             got.get("safety_shards_rewritten", 0))
    return got
