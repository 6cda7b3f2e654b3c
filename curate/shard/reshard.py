"""Resharding work units that any engine can run: index a source tar, write one output tar.

Both are plain picklable values and module-level functions (Spark tasks, Ray tasks or in-process): the
bytes of an output shard depend only on its job, so every engine writes the same bytes.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass

from curate.io import fs
from curate.io.tario import read_member
from curate.shard.tarfast import copy_tar_local, local_path, scan, write_tar

log = logging.getLogger(__name__)

Members = tuple[tuple[str, int, int], ...]  # (extension, data offset, size) per file of a sample


@dataclass(frozen=True)
class Source:
    folder: str
    shard: str

    @property
    def path(self) -> str:
        return fs.join(self.folder, self.shard)


def index_source(source: Source) -> tuple[Source, dict[str, Members]]:
    """key -> the sample's files in one source tar (one task per source shard)."""
    return source, {k: tuple(sorted((ext, off, size) for ext, (off, size) in files.items()))
                    for k, files in scan(source.path).items()}


@dataclass(frozen=True)
class ShardJob:
    """One output shard: its file names and, in order, (new key, source tar path, files) per sample."""

    tar: str
    stats: str
    name: str
    entries: tuple[tuple[str, str, Members], ...]
    info: tuple[tuple[str, int], ...] = ()  # extra integers for the shard's _stats.json


def write_shard(job: ShardJob) -> dict:
    """Write the tar (temporary name, then rename) and then its `_stats.json`; skip the work when both
    exist from the same job (its fingerprint covers every key, source tar name and byte range)."""
    # keys, source tar names and byte ranges; not the folders, so a moved or copied run gives the same stats
    fingerprint = hashlib.sha256(repr([(k, src.rsplit("/", 1)[-1], m) for k, src, m in job.entries])
                                 .encode()).hexdigest()[:16]
    if fs.exists(job.stats) and fs.exists(job.tar):
        done = fs.read_json(job.stats)
        if done.get("fingerprint") == fingerprint and done.get("tar_bytes") == _size(job.tar):
            return done
    total = sum(size for _, _, members in job.entries for _, _, size in members)
    if not _copy_local(job):
        _write_through_python(job)
    stats = {"shard": job.name, "samples": len(job.entries), "bytes": total, "tar_bytes": _size(job.tar),
             "fingerprint": fingerprint, **dict(job.info)}
    fs.write_json(job.stats, stats)
    log.info("shard: wrote %s (%d samples, %d bytes)", job.tar, len(job.entries), total)
    return stats


def _size(path: str) -> int:
    sfs, p = fs.url_to_fs(path)
    return int(sfs.size(p))


def _copy_local(job: ShardJob) -> bool:
    """Local files: file data moves in the kernel. False where that does not apply (nothing written)."""
    dest = local_path(job.tar)
    srcs = {src: local_path(src) for src in {e[1] for e in job.entries}}
    if dest is None or None in srcs.values():
        return False
    fs.makedirs(job.tar.rpartition("/")[0])
    return copy_tar_local(dest, [(k, srcs[s], m) for k, s, m in job.entries]) is not None


def _write_through_python(job: ShardJob) -> None:
    """Any fsspec filesystem: read each sample's byte range, write the archive through Python."""
    by_src: dict[str, list[int]] = defaultdict(list)
    for i, (_, src, _) in enumerate(job.entries):
        by_src[src].append(i)
    blobs: list[list[memoryview]] = [[] for _ in job.entries]
    for src in sorted(by_src):  # each source tar opened once, read in offset order, one read per sample
        spans = sorted((_span(job.entries[i][2]), i) for i in set(by_src[src]))
        sfs, p = fs.url_to_fs(src)
        with sfs.open(p, "rb") as fh:
            for (start, end), i in spans:
                buf = memoryview(read_member(fh, start, end - start))
                blobs[i] = [buf[off - start:off - start + size] for _, off, size in job.entries[i][2]]
    files = [(f"{key}.{ext}", blob) for (key, _, members), data in zip(job.entries, blobs, strict=True)
             for (ext, _, _), blob in zip(members, data, strict=True)]
    with fs.atomic_open(job.tar, "wb") as fh:
        write_tar(fh, files)


def _span(members: Members) -> tuple[int, int]:
    """The byte range holding all of a sample's files (tar members of one key are adjacent)."""
    return min(off for _, off, _ in members), max(off + size for _, off, size in members)


def split(sizes: list[int], max_samples: int, max_bytes: int) -> list[tuple[int, int]]:
    """Cut a stream of samples (their byte sizes, in order) into [start, end) shards: at most `max_samples`
    each, and at most `max_bytes` unless one sample alone is bigger."""
    bounds, start, nbytes = [], 0, 0
    for i, s in enumerate(sizes):
        if i > start and (i - start >= max_samples or nbytes + s > max_bytes):
            bounds.append((start, i))
            start, nbytes = i, 0
        nbytes += s
    if start < len(sizes) or not bounds:
        bounds.append((start, len(sizes)))
    return bounds
