"""A DataComp selection (a sorted `u8,u8` .npy of 128-bit uids; a uid listed k times weighs k) looked up
shard by shard, as DataComp's resharder does: each task that reads a source shard finds its uids in the
sorted array by binary search. The array is memory-mapped (a copy on local disk first, once per process,
when it lives on an object store), so a task's memory does not grow with the selection."""

from __future__ import annotations

import logging
import os
import tempfile
import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import CurateError
from curate.io import fs
from curate.shard.tarfast import local_path

log = logging.getLogger(__name__)

DTYPE = np.dtype("u8,u8")
RANGE_ROWS = 1 << 26  # uids per counting task (1 GiB of array)
_HEX = np.full(256, 255, dtype=np.uint8)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)
_POWERS = np.uint64(16) ** np.arange(15, -1, -1, dtype=np.uint64)
_OPEN: dict[str, np.ndarray] = {}
_LOCK = threading.Lock()


def check_header(path: str) -> int:
    """The number of uids in the array at `path`, reading only its .npy header; a one-line error when it is
    not DataComp's u8,u8 array."""
    sfs, p = fs.url_to_fs(path)
    if not sfs.exists(p):
        raise CurateError(f"shard: no such uid file: {path}")
    try:
        with sfs.open(p, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(fh)
    except (ValueError, OSError) as exc:
        raise CurateError(f"shard: {path} is not a .npy file: {exc}") from exc
    if dtype != DTYPE or len(shape) != 1 or fortran:
        raise CurateError(f"shard: {path} is {dtype}, not DataComp's u8,u8 uid array")
    return int(shape[0])


def load(path: str) -> np.ndarray:
    """The array, memory-mapped (once per process)."""
    with _LOCK:
        arr = _OPEN.get(path)
        if arr is None:
            local = local_path(path)
            if local is None:  # an object store: one sequential copy to local disk, then a map of it
                fd, local = tempfile.mkstemp(prefix="curate-uids-", suffix=".npy")
                os.close(fd)
                sfs, p = fs.url_to_fs(path)
                sfs.get_file(p, local)
            arr = _OPEN[path] = np.load(local, mmap_mode="r")
    return arr


def hex_pairs(uids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(u8,u8 values, valid) of uid strings; a uid that is not 32 hex digits is not valid (never selected)."""
    col = pc.cast(uids, pa.binary())
    n = len(col)
    raw = np.array(col.to_numpy(zero_copy_only=False), dtype="S32") if n else np.zeros(0, "S32")
    digits = _HEX[np.frombuffer(raw.tobytes(), np.uint8).reshape(n, 32)]
    valid = (pc.binary_length(col).to_numpy(zero_copy_only=False) == 32) & ~(digits == 255).any(axis=1)
    digits = np.where(valid[:, None], digits, 0).astype(np.uint64)
    out = np.zeros(n, DTYPE)
    out["f0"] = digits[:, :16] @ _POWERS
    out["f1"] = digits[:, 16:] @ _POWERS
    return out, valid


def multiplicity(path: str, uids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """How many times each uid is listed in the array at `path` (0: not selected)."""
    arr = load(path)
    keys, valid = hex_pairs(uids)
    found = np.searchsorted(arr, keys, "right") - np.searchsorted(arr, keys, "left")
    return np.where(valid, found, 0).astype(np.int64)


def ranges(n: int) -> list[dict]:
    return [{"start": a, "stop": min(n, a + RANGE_ROWS)} for a in range(0, n, RANGE_ROWS)]


class CountUnique:
    """Runs in a task: the distinct uids of array[start:stop) (a uid equal to the one before `start` is not
    counted again), and a one-line error when that stretch is not sorted."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, item: dict) -> dict:
        arr = load(self.path)
        a, b = item["start"], item["stop"]
        lo = max(0, a - 1)
        part = np.asarray(arr[lo:b])
        hi_, lo_ = part["f0"], part["f1"]
        step_up = (hi_[1:] > hi_[:-1]) | ((hi_[1:] == hi_[:-1]) & (lo_[1:] > lo_[:-1]))
        step_down = (hi_[1:] < hi_[:-1]) | ((hi_[1:] == hi_[:-1]) & (lo_[1:] < lo_[:-1]))
        if step_down.any():
            raise CurateError(f"shard: {self.path} is not sorted (DataComp's uid arrays are); sort it first")
        new = int(step_up.sum()) + (1 if a == 0 and b > 0 else 0)
        return {"unique": new, "listed": b - a}
