"""Resharding work units that any engine can run: catalog a source tar, write one output tar.

Both are plain picklable values and module-level functions (Spark tasks, Ray tasks or in-process): the
bytes of an output shard depend only on its job, so every engine writes the same bytes. A job holds its
samples column-wise (numpy arrays, one row per sample or per file), so a shard of 10,000 samples is a
few arrays to build, pickle and hash rather than 10,000 Python tuples.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from curate.io import crc, fs, sums
from curate.io.tario import read_member
from curate.shard.catalog import Members, byte_range, catalog
from curate.shard.gather import copy_tar_local
from curate.shard.tarfast import local_path, write_tar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    folder: str
    shard: str

    @property
    def path(self) -> str:
        return fs.join(self.folder, self.shard)


def index_source(source: Source) -> tuple[Source, pa.Table]:
    """The catalog of one source tar (one task per source shard)."""
    return source, catalog(source.path)


@dataclass(frozen=True, eq=False)
class ShardJob:
    """One output shard: its file names and its samples, in order, column-wise."""

    tar: str
    stats: str
    name: str
    keys: tuple[str, ...]  # per sample: its key in the output
    sources: tuple[str, ...]  # the source tars it reads
    src: np.ndarray  # per sample: index into `sources`
    count: np.ndarray  # per sample: its number of files
    exts: tuple[str, ...]  # per file (samples in order, each sample's files by extension)
    offsets: np.ndarray  # per file: its data offset in the source tar
    sizes: np.ndarray  # per file
    lo: np.ndarray  # per sample: start of the byte range holding all its files, -1 when they lie apart
    hi: np.ndarray  # per sample: end of that range
    info: tuple[tuple[str, int], ...] = ()  # extra integers for the shard's _stats.json
    threads: int = 1  # threads copying the shard (parts of it at once), local files only; not in its bytes
    data: tuple[bytes, ...] | None = None  # per sample its files' bytes, concatenated (carried by the shuffle)
    crcs: np.ndarray | None = None  # per file: CRC32C of its data from the source tar's sidecar, -1 unknown

    @classmethod
    def of(cls, tar: str, stats: str, name: str, entries: list[tuple[str, str, Members]],
           info: tuple[tuple[str, int], ...] = ()) -> ShardJob:
        """A job from (new key, source tar path, files) rows, files sorted by extension."""
        sources = tuple(sorted({src for _, src, _ in entries}))
        at = {s: i for i, s in enumerate(sources)}
        files = [f for _, _, members in entries for f in members]
        lo, hi = zip(*(byte_range(members) for _, _, members in entries), strict=True) if entries else ((), ())
        return cls(tar, stats, name, tuple(k for k, _, _ in entries), sources,
                   np.array([at[s] for _, s, _ in entries], np.int32),
                   np.array([len(m) for _, _, m in entries], np.int32), tuple(f[0] for f in files),
                   np.array([f[1] for f in files], np.int64), np.array([f[2] for f in files], np.int64),
                   np.array(lo, np.int64), np.array(hi, np.int64), info)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        return int(self.sizes.sum())

    def rows(self) -> Iterator[tuple[str, str, Members, tuple[int, int] | None]]:
        """(key, source tar path, files, byte range or None) per sample."""
        offs, sizes, f = self.offsets.tolist(), self.sizes.tolist(), 0
        for key, s, c, a, b in zip(self.keys, self.src.tolist(), self.count.tolist(), self.lo.tolist(),
                                   self.hi.tolist(), strict=True):
            yield (key, self.sources[s], tuple(zip(self.exts[f:f + c], offs[f:f + c], sizes[f:f + c], strict=True)),
                   (a, b) if a >= 0 else None)
            f += c

    def digest(self) -> str:
        """Keys, source tar names and every file's place; not the folders, so a moved or copied run gives
        the same stats."""
        h = hashlib.sha256()
        for part in ("\n".join(self.keys), "\n".join(s.rsplit("/", 1)[-1] for s in self.sources),
                     "\n".join(self.exts)):
            h.update(part.encode())
            h.update(b"\0")
        for arr in (self.src, self.count, self.offsets, self.sizes):
            h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]


def write_shard(job: ShardJob) -> dict:
    """Write the tar (temporary name, then rename), its checksum sidecar, then its `_stats.json`; skip the
    work when all three exist from the same job (same fingerprint)."""
    fingerprint = job.digest()
    if fs.exists(job.stats) and fs.exists(job.tar) and fs.exists(sums.sidecar_path(job.tar)):
        done = fs.read_json(job.stats)
        if done.get("fingerprint") == fingerprint and done.get("tar_bytes") == _size(job.tar):
            return done
    total = job.nbytes
    if job.data is not None:
        _write_from_bytes(job)
    elif not _copy_local(job):
        _write_through_python(job)
    stats = {"shard": job.name, "samples": len(job), "bytes": total, "tar_bytes": _size(job.tar),
             "fingerprint": fingerprint, **dict(job.info)}
    fs.write_json(job.stats, stats)
    log.info("shard: wrote %s (%d samples, %d bytes)", job.tar, len(job), total)
    return stats


def _size(path: str) -> int:
    sfs, p = fs.url_to_fs(path)
    return int(sfs.size(p))


def _copy_local(job: ShardJob) -> bool:
    """Local files: gathered by `gather.copy_tar_local`, then the checksum sidecar. False where that does not
    apply (nothing written)."""
    dest = local_path(job.tar)
    srcs = [local_path(src) for src in job.sources]
    if dest is None or None in srcs:
        return False
    fs.makedirs(job.tar.rpartition("/")[0])
    sums.drop_sidecar(job.tar)
    done = copy_tar_local(dest, job, srcs, parts=job.threads)
    if done is None:
        return False
    sums.write_sidecar(job.tar, done[0], crc.hexdigest(done[1]), "crc32c")
    return True


def _write_through_python(job: ShardJob) -> None:
    """Any fsspec filesystem: read each sample's byte range, write the archive through Python."""
    rows = list(job.rows())
    by_src: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_src[row[1]].append(i)
    blobs: list[list[memoryview]] = [[] for _ in rows]
    for src in sorted(by_src):  # each source tar opened once, read in offset order
        sfs, p = fs.url_to_fs(src)
        with sfs.open(p, "rb") as fh:
            for i in sorted(by_src[src], key=lambda i: rows[i][2][0][1]):
                _, _, members, span = rows[i]
                if span is None:
                    blobs[i] = [memoryview(read_member(fh, off, size)) for _, off, size in members]
                    continue
                start, end = span
                buf = memoryview(read_member(fh, start, end - start))
                blobs[i] = [buf[off - start:off - start + size] for _, off, size in members]
    if job.crcs is not None:  # each file as its source tar's sidecar lists it
        want, f = job.crcs.tolist(), 0
        for (_, src, members, _), data in zip(rows, blobs, strict=True):
            for (_, off, _), blob in zip(members, data, strict=True):
                sums.check_member(src, off, blob, want[f])
                f += 1
    files = [(f"{key}.{ext}", blob) for (key, _, members, _), data in zip(rows, blobs, strict=True)
             for (ext, _, _), blob in zip(members, data, strict=True)]
    with sums.open_part(job.tar) as fh:
        write_tar(fh, files)


def _write_from_bytes(job: ShardJob) -> None:
    """The samples' bytes came with the job (read in large ranges by the tasks that read the sources)."""
    files, f = [], 0
    sizes = job.sizes.tolist()
    for key, c, blob in zip(job.keys, job.count.tolist(), job.data, strict=True):
        view, at = memoryview(blob), 0
        for ext, size in zip(job.exts[f:f + c], sizes[f:f + c], strict=True):
            files.append((f"{key}.{ext}", view[at:at + size]))
            at += size
        f += c
    with sums.open_part(job.tar) as fh:
        write_tar(fh, files)


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
