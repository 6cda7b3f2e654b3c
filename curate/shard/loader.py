"""A loader for trainers: replay a shard folder's planned stream, split across ranks and workers.

The stream is the plan's sequence of passes (`plan.stream`), numbered 0..S−1. Rank r of R reads the global
indices i ≥ `start` with i mod R = r; its data-loader worker w of W those with i mod (R·W) = w·R + r. Over all
ranks and workers every index is read exactly once, and restarting at `start` = samples consumed
continues the same stream. A materialised folder's stream is its manifest in order; a streamed folder's is
rebuilt from the manifest's counts and the plan's seed, so both modes give the same samples in the same order.

Importable without torch; `torch_dataset()` wraps a stream as a `torch.utils.data.IterableDataset`,
whose workers pick their share from `get_worker_info()`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from curate.errors import CurateError
from curate.io import fs
from curate.io.tario import read_member
from curate.shard import plan
from curate.shard.tarfast import scan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """The planned stream of a shard folder: per position, the manifest row and the copy (pass) number."""

    uid: list[str]
    shard: list[str]
    key: list[str]
    row: np.ndarray
    copy: np.ndarray

    def __len__(self) -> int:
        return len(self.row)


def read_plan(shard_dir: str) -> Plan:
    if not fs.exists(fs.join(shard_dir, "_SUCCESS")):
        raise CurateError(f"loader: {shard_dir} is not a finished shard folder (no _SUCCESS)")
    meta = fs.read_json(fs.join(shard_dir, "plan.json"))
    m = fs.read_table(fs.join(shard_dir, "manifest.parquet"), columns=["uid", "shard", "key", "repetition", "copy"])
    uids = m.column("uid").to_pylist()
    if meta["repetition"] == "streamed":
        row, copy = plan.stream(uids, m.column("repetition").to_numpy(), int(meta["seed"]))
    else:
        row, copy = np.arange(m.num_rows, dtype=np.int64), m.column("copy").to_numpy().astype(np.int64)
    return Plan(uids, m.column("shard").to_pylist(), m.column("key").to_pylist(), row, copy)


class PlannedStream:
    """Iterate the planned stream of `shard_dir` for one rank (and, under torch, one worker).

    Each item is a dict: `__index__` (position in the whole stream), `__key__`, `__shard__`, `uid`, `copy`,
    and with `files=True` one entry per stored file (`jpg`, `txt`, `json`, ...) holding its bytes.
    """

    def __init__(self, shard_dir: str, rank: int = 0, world_size: int = 1, start: int = 0,
                 files: bool = True) -> None:
        if not 0 <= rank < world_size:
            raise CurateError(f"loader: rank {rank} is not in [0, {world_size})")
        if start < 0:
            raise CurateError(f"loader: start must be >= 0, got {start}")
        self.shard_dir, self.rank, self.world_size, self.start, self.files = shard_dir, rank, world_size, start, files
        self.plan = read_plan(shard_dir)

    def indices(self, worker: int = 0, num_workers: int = 1) -> range:
        """The global stream positions this rank's worker reads."""
        if not 0 <= worker < num_workers:
            raise CurateError(f"loader: worker {worker} is not in [0, {num_workers})")
        step = self.world_size * num_workers
        slot = worker * self.world_size + self.rank  # a rank's positions are i mod R = rank, whatever W is
        first = self.start + (slot - self.start) % step
        return range(first, len(self.plan), step)

    def items(self, worker: int = 0, num_workers: int = 1) -> Iterator[dict]:
        p = self.plan
        reader = _TarReader(self.shard_dir) if self.files else None
        try:
            for i in self.indices(worker, num_workers):
                r = int(p.row[i])
                item = {"__index__": i, "__key__": p.key[r], "__shard__": p.shard[r], "uid": p.uid[r],
                        "copy": int(p.copy[i])}
                if reader is not None:
                    item.update(reader.read(p.shard[r], p.key[r]))
                yield item
        finally:
            if reader is not None:
                reader.close()

    def __iter__(self) -> Iterator[dict]:
        worker, num_workers = 0, 1
        if "torch" in sys.modules:  # inside a torch DataLoader worker: take this worker's share
            info = sys.modules["torch"].utils.data.get_worker_info()
            if info is not None:
                worker, num_workers = info.id, info.num_workers
        return self.items(worker, num_workers)

    def __len__(self) -> int:
        """Samples this rank reads (all its workers together)."""
        return len(self.indices(0, 1))


class _TarReader:
    """Random access to samples in the shard tars: one index and one open file per tar, opened lazily."""

    def __init__(self, shard_dir: str) -> None:
        self.dir = shard_dir
        self.indexes: dict[str, dict] = {}
        self.handles: dict[str, object] = {}

    def read(self, shard: str, key: str) -> dict[str, bytes]:
        if shard not in self.indexes:
            path = fs.join(self.dir, shard)
            self.indexes[shard] = scan(path)
            sfs, p = fs.url_to_fs(path)
            self.handles[shard] = sfs.open(p, "rb")
        fh = self.handles[shard]
        return {ext: read_member(fh, off, size) for ext, (off, size) in sorted(self.indexes[shard][key].items())}

    def close(self) -> None:
        for fh in self.handles.values():
            fh.close()
        self.handles.clear()


def torch_dataset(stream: PlannedStream):
    """The stream as a torch IterableDataset (imports torch only when called)."""
    import torch.utils.data

    class _Dataset(torch.utils.data.IterableDataset):
        def __init__(self, s: PlannedStream) -> None:
            super().__init__()
            self.s = s

        def __iter__(self) -> Iterator[dict]:
            return iter(self.s)

        def __len__(self) -> int:
            return len(self.s)

    return _Dataset(stream)
