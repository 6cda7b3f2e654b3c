"""A loader for trainers: replay a shard folder's planned stream, split across ranks and workers, each
reading only its own slice of the manifest.

The stream is the plan's sequence of passes (`plan.stream`), numbered 0..S−1, stored in blocks of B =
samples_per_shard positions: `manifest/part-KKKKK.parquet` (materialised: the manifest is the stream, and
block K is also the tars it names) or `stream/part-KKKKK.parquet` (streamed: where each copy is read from).
Rank r of R reads the blocks K with K mod R = r, in order; its data-loader worker w of W those with
K mod (R·W) = w·R + r. Each reads only those parts, so a rank's memory and reads are 1/R of the stream's.
Over all ranks and workers every position is read exactly once.

Resuming: `start` is the number of samples the whole job consumed, ranks in lockstep (and a rank's
workers taken in turn, as torch's DataLoader does): rank r has consumed ⌈(start − r)/R⌉ of its own
positions, its worker w ⌈(that − w)/W⌉ of its own, and each continues after them. With B = 1 this is the
position-by-position interleaving i mod R·W. Materialised and streamed folders give the same samples in the
same order.

Importable without torch; `torch_dataset()` wraps a stream as a `torch.utils.data.IterableDataset`,
whose workers pick their share from `get_worker_info()`.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from curate.errors import CurateError
from curate.io import dataset, fs
from curate.io.tario import read_member
from curate.shard.tarfast import scan

log = logging.getLogger(__name__)
COLUMNS = ["uid", "shard", "key", "copy"]


@dataclass(frozen=True)
class Layout:
    """What plan.json says about the stream's storage."""

    length: int  # S: positions in the stream
    block: int  # B: positions per part
    folder: str  # "manifest" or "stream"

    @property
    def blocks(self) -> int:
        return math.ceil(self.length / self.block)

    def span(self, k: int) -> range:
        return range(k * self.block, min((k + 1) * self.block, self.length))


def read_layout(shard_dir: str) -> Layout:
    if not fs.exists(fs.join(shard_dir, "_SUCCESS")):
        raise CurateError(f"loader: {shard_dir} is not a finished shard folder (no _SUCCESS)")
    meta = fs.read_json(fs.join(shard_dir, "plan.json"))
    if "block_samples" not in meta:
        raise CurateError(f"loader: {shard_dir} was written by an older curate (one manifest.parquet); reshard it")
    return Layout(int(meta["samples_seen"]), int(meta["block_samples"]), meta["stream"])


@dataclass(frozen=True)
class Slice:
    """The stream positions one worker of one rank reads: its blocks, less the first `skip` positions."""

    layout: Layout
    blocks: range
    skip: int

    def __len__(self) -> int:
        return max(0, sum(len(self.layout.span(k)) for k in self.blocks) - self.skip)

    def parts(self) -> Iterator[tuple[int, int]]:
        """(block, rows of it to skip) for every block with something left to read."""
        left = self.skip
        for k in self.blocks:
            n = len(self.layout.span(k))
            if left >= n:
                left -= n
                continue
            yield k, left
            left = 0

    def __iter__(self) -> Iterator[int]:
        for k, skip in self.parts():
            yield from self.layout.span(k)[skip:]


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
        self.layout = read_layout(shard_dir)

    def indices(self, worker: int = 0, num_workers: int = 1) -> Slice:
        """The global stream positions this rank's worker reads."""
        if not 0 <= worker < num_workers:
            raise CurateError(f"loader: worker {worker} is not in [0, {num_workers})")
        ranks = self.world_size
        slot = worker * ranks + self.rank  # a rank's blocks are K mod R = rank, whatever W is
        consumed = max(0, -(-(self.start - self.rank) // ranks))  # this rank's share of `start`
        mine = max(0, -(-(consumed - worker) // num_workers))  # this worker's share of the rank's
        return Slice(self.layout, range(slot, self.layout.blocks, ranks * num_workers), mine)

    def items(self, worker: int = 0, num_workers: int = 1) -> Iterator[dict]:
        reader = _TarReader(self.shard_dir) if self.files else None
        folder = fs.join(self.shard_dir, self.layout.folder)
        try:
            for k, skip in self.indices(worker, num_workers).parts():
                part = dataset.read_part(fs.join(folder, dataset.part_name(k)), COLUMNS).slice(skip)
                cols = [part.column(c).to_pylist() for c in COLUMNS]
                for j, (uid, shard, key, copy) in enumerate(zip(*cols, strict=True)):
                    item = {"__index__": k * self.layout.block + skip + j, "__key__": key, "__shard__": shard,
                            "uid": uid, "copy": int(copy)}
                    if reader is not None:
                        item.update(reader.read(shard, key))
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
