"""One output tar gathered from byte ranges of local source tars, at close to `cp` speed.

Per sample one `preadv` brings its files (adjacent in the source tar) into a reused 2 MiB buffer; when
the buffer is full, one gathered `os.pwritev` sends headers (built for the whole shard at once, numpy),
the files straight from the buffer, and padding. So a sample costs one system call plus a share of a
write, and the bytes are copied twice in memory (page cache to buffer, buffer to page cache): cheaper
than an in-kernel copy per file, whose fixed cost per call dominates at ~60 kB files (bench/RESULTS.md
has the measurements). Same bytes as `tarfast.write_tar`.
"""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

from curate.errors import CurateError
from curate.io import crc, fs, sums
from curate.shard.tarfast import BLOCK, RECORD, headers

if TYPE_CHECKING:
    from curate.shard.reshard import ShardJob

BUFFER = 2 << 20  # bytes of sample files gathered per write; measured best of 0.5-8 MiB (fits a CPU cache)
MAX_OPEN = 256  # source tars open at once; a job drawing from more closes them all and opens again
_IOV = 510  # buffers per gathered write, below every platform's IOV_MAX (1024)
_PADS = [bytes(n) for n in range(BLOCK)]


def copy_tar_local(dest: str, job: ShardJob, sources: list[str], parts: int = 1) -> tuple[int, int] | None:
    """Write the archive of `job` to the local path `dest` (temporary name, then rename), reading the
    job's sources at the local paths `sources`. Every sample's place in the archive is known beforehand,
    so `parts` threads can write contiguous runs of samples at once (positional writes into one file),
    and one shard's copy uses every core. Returns (archive size, its CRC32C), or None (nothing written)
    where the names need more than USTAR or the platform has no `preadv`/`pwritev`. Each thread checksums
    the bytes it writes while they are in its buffer; the runs' values combine into the archive's
    (`curate.io.crc.combine`), so nothing is read back."""
    if not (hasattr(os, "preadv") and hasattr(os, "pwritev")):
        return None
    counts = job.count.tolist()
    starts = (np.cumsum(job.count, dtype=np.int64) - job.count).tolist()  # each sample's first file
    names = [f"{key}.{ext}" for key, c, f in zip(job.keys, counts, starts, strict=True)
             for ext in job.exts[f:f + c]]
    heads = headers(names, job.sizes)
    if heads is None:
        return None
    file_len = BLOCK + job.sizes + (-job.sizes % BLOCK)  # header, data, padding
    at = np.zeros(len(counts) + 1, np.int64)  # where each sample starts in the archive, and the body's end
    if counts:
        np.cumsum(np.add.reduceat(file_len, starts), out=at[1:])
    cuts = _cuts(at, min(parts, max(1, int(at[-1]) // (4 * BUFFER))))
    folder, _, name = dest.rpartition("/")
    tmp = f"{folder}/{fs.TMP_PREFIX}{uuid.uuid4().hex[:8]}.{name}"
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with fs.naming(dest):  # a full disk: the kernel names no file; the one-line error names the tar
            return _gather(out, tmp, dest, job, sources, heads, at, starts, cuts)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _gather(out: int, tmp: str, dest: str, job: ShardJob, sources: list[str], heads: bytes, at: np.ndarray,
            starts: list[int], cuts: list[int]) -> tuple[int, int]:
    """The writes of `copy_tar_local` into the open temporary file `out`, closed here; renamed to `dest`."""
    body = int(at[-1])
    try:
        runs = [(a, b, int(at[a]), starts[a] if a < len(starts) else 0) for a, b in pairwise(cuts)]
        if len(runs) == 1:
            crcs = [_write_run(out, job, sources, memoryview(heads), *runs[0])]
        else:
            with ThreadPoolExecutor(len(runs), thread_name_prefix="curate-gather") as pool:
                crcs = list(pool.map(lambda r: _write_run(out, job, sources, memoryview(heads), *r), runs))
        total = 0
        for (a, b), run_crc in zip(pairwise(cuts), crcs, strict=True):
            total = crc.combine(total, run_crc, int(at[b] - at[a]))
        tail = bytes(2 * BLOCK + (-(body + 2 * BLOCK) % RECORD))  # end-of-archive blocks, record padding
        _pwritev_all(out, [tail], body)
        total = crc.value(tail, total)
        os.close(out)
        out = -1
        os.replace(tmp, dest)
        return body + len(tail), total
    finally:
        if out >= 0:
            os.close(out)


def _cuts(at: np.ndarray, parts: int) -> list[int]:
    """Sample indices cutting the archive into `parts` runs of about equal bytes."""
    n = len(at) - 1
    if parts <= 1 or n < 2:
        return [0, n]
    inner = np.searchsorted(at, [at[-1] * k // parts for k in range(1, parts)]).tolist()
    return sorted({0, n, *(min(max(c, 1), n - 1) for c in inner)})


def _write_run(out: int, job: ShardJob, sources: list[str], heads: memoryview, a: int, b: int, pos: int,
               f: int) -> int:
    """Samples [a, b) of the job, whose first file is file `f`, written from archive offset `pos` on;
    returns the CRC32C of the bytes written."""
    offs, sizes = job.offsets.tolist(), job.sizes.tolist()
    want = job.crcs.tolist() if job.crcs is not None else None  # each file's CRC32C in its source's sidecar
    fds: dict[int, int] = {}
    buf = memoryview(bytearray(BUFFER))
    run_crc = 0
    try:
        parts: list = []  # what the next write sends, in order; sample files are views of `buf`
        used = 0
        for s, c, lo, hi in zip(job.src[a:b].tolist(), job.count[a:b].tolist(), job.lo[a:b].tolist(),
                                job.hi[a:b].tolist(), strict=True):
            fd = fds.get(s)
            if fd is None:
                if len(fds) >= MAX_OPEN:
                    _close(fds)
                fd = fds[s] = os.open(sources[s], os.O_RDONLY)
            need = hi - lo if lo >= 0 else sum(sizes[f:f + c])
            if used + need > BUFFER or len(parts) >= _IOV:
                run_crc = _crc(parts, run_crc)
                pos += _pwritev_all(out, parts, pos)
                parts, used = [], 0
            if need > BUFFER:  # a sample bigger than the buffer gets its own
                space, base = memoryview(bytearray(need)), 0
            else:
                space, base = buf, used
                used += need
            if lo >= 0:  # one read for all the sample's files
                view = space[base:base + need]
                if os.preadv(fd, [view], lo) != need:
                    _pread_into(fd, view, lo, sources[s])  # a short read: finish it, or say the tar is cut short
                base -= lo
                for j in range(f, f + c):
                    start = base + offs[j]
                    parts += (heads[j * BLOCK:(j + 1) * BLOCK], space[start:start + sizes[j]], _PADS[-sizes[j] % BLOCK])
                    if want is not None:
                        sums.check_member(sources[s], offs[j], space[start:start + sizes[j]], want[j])
            else:
                for j in range(f, f + c):
                    view = space[base:base + sizes[j]]
                    _pread_into(fd, view, offs[j], sources[s])
                    if want is not None:
                        sums.check_member(sources[s], offs[j], view, want[j])
                    parts += (heads[j * BLOCK:(j + 1) * BLOCK], view, _PADS[-sizes[j] % BLOCK])
                    base += sizes[j]
            f += c
        run_crc = _crc(parts, run_crc)
        _pwritev_all(out, parts, pos)
    finally:
        _close(fds)
    return run_crc


def _crc(parts: list, value: int) -> int:
    for part in parts:
        value = crc.value(part, value)
    return value


def _pread_into(fd: int, view: memoryview, offset: int, src: str) -> None:
    got = 0
    while got < len(view):  # short reads happen only at the end of the file: the tar is shorter than listed
        more = os.preadv(fd, [view[got:]], offset + got)
        if more == 0:
            raise CurateError(f"shard: {src} is cut short: a sample's files end at byte {offset + len(view)}, "
                              f"the file at {offset + got}")
        got += more


def _close(fds: dict[int, int]) -> None:
    for fd in fds.values():
        os.close(fd)
    fds.clear()


def _pwritev_all(fd: int, parts: list, pos: int) -> int:
    """Write the buffers in order from file offset `pos`, `_IOV` at a time, whatever the kernel takes per
    call; returns the bytes written."""
    total = 0
    for i in range(0, len(parts), _IOV):
        chunk = parts[i:i + _IOV]
        want = sum(map(len, chunk))
        done = os.pwritev(fd, chunk, pos + total)
        if done < want:  # a partial gathered write (rare for files): finish with the flat remainder
            rest = memoryview(b"".join(chunk))[done:]
            while rest:
                n = os.pwrite(fd, rest, pos + total + want - len(rest))
                rest = rest[n:]
        total += want
    return total
