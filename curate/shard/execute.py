"""The shard stage's program, step by step, on any `Frames` (see `program.py` for what each pass computes and
`blocks.py` for what each block's task writes). The driver holds: one item per source shard, scalars, one
count per non-empty sort-key bucket (about BUCKETS_PER_BLOCK per output block), the blocks that must be cut
under the byte cap, one stats row per output tar, and at most BAND rows for the exact remainder cut."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import CurateError
from curate.io import dataset, fs
from curate.shard import candidates, plan, uidset
from curate.shard.blocks import LOCATED, PIECES, WRITTEN, BlockWriter, PieceCounter, PlaylistWriter, TarNumbers
from curate.shard.frames import Frames
from curate.shard.program import (
    TARGET_COLS,
    Bases,
    Buckets,
    Budget,
    Histogram,
    Offsets,
    Targets,
    Totals,
    bits_for,
    cut_row,
    target_schema,
)

log = logging.getLogger(__name__)

REJECTED = pa.schema([("uid", pa.string()), ("gate", pa.string())])


@dataclass(frozen=True)
class Sources:
    items: list[dict]
    reader: candidates.Reader
    array: str | None  # the u8,u8 selection looked up by binary search, if any
    listed: int  # its length
    external: bool = False
    gate: tuple[str, ...] = ()  # dedup decision parts joined by uid (external shards)


class _Rejected:
    def __call__(self, item: dict) -> pa.Table:
        t = dataset.read_part(item["path"], ["uid", "reason"])
        t = t.filter(pc.is_valid(t.column("reason")))
        return pa.table({"uid": t.column("uid"), "gate": t.column("reason")}, schema=REJECTED)


class _ApplyGate:
    def __call__(self, t: pa.Table) -> pa.Table:
        gate = t.column("gate")
        reason = pc.if_else(pc.equal(gate, candidates.SAFETY_REASON), candidates.SAFETY_REASON,
                            candidates.NOT_SURVIVOR)
        refuse = pc.if_else(pc.is_valid(gate), reason, t.column("refuse"))
        return t.set_column(t.column_names.index("refuse"), "refuse", refuse)


def _kinds(t: pa.Table, kind: str) -> pa.Table:
    return t.filter(pc.equal(t.column("kind"), kind))


def _scalar(t: pa.Table, kind: str, col: str, default: int = 0) -> int:
    rows = _kinds(t, kind)
    return int(rows.column(col)[0].as_py()) if rows.num_rows and rows.column(col)[0].is_valid else default


def execute(frames: Frames, src: Sources, config, out: str, threads: int) -> dict:
    schema = candidates.schema(src.reader.dynamic)
    cand = frames.read(src.items, src.reader, schema)
    if src.gate:
        rejected = frames.read([{"path": p} for p in src.gate], _Rejected(), REJECTED)
        joined = frames.left_join(cand, rejected, "uid", pa.schema([*schema, REJECTED.field("gate")]))
        cand = frames.map(joined, _ApplyGate(), schema)
    cand = frames.persist(cand)
    try:
        return _run(frames, cand, src, config, out, threads, schema)
    finally:
        frames.release(cand)


def _run(frames: Frames, cand, src: Sources, config, out: str, threads: int, schema: pa.Schema) -> dict:
    totals = frames.reduce(cand, Totals(), columns=["uid", "weight", "refuse"])
    refused = {k.split(":", 1)[1]: int(n) for k, n in zip(totals.column("kind").to_pylist(),
                                                          totals.column("n").to_pylist(), strict=True)
               if k.startswith("refused:") and n}
    rows = _scalar(totals, "rows", "n")
    _check_listed(frames, src, rows + sum(refused.values()), refused)
    w = _kinds(totals, "w")
    total = plan.total_from_parts(zip(w.column("key").to_pylist(), w.column("hi").to_pylist(),
                                      w.column("lo").to_pylist(), strict=True))
    budget_n = plan.PlanRequest(config.samples_seen, config.passes).budget(rows)
    if rows == 0 and budget_n:
        raise CurateError("shard: cannot plan a non-zero samples-seen budget over an empty selection")
    if rows and total <= 0:
        raise CurateError("shard: all sample weights are zero")
    weighted = _scalar(totals, "weight", "imin") != _scalar(totals, "weight", "imax")
    budget = Budget(budget_n, total or 1.0)
    if rows:
        bases = frames.reduce(cand, Bases(budget), columns=["uid", "weight", "refuse"])
        rest = budget_n - _scalar(bases, "base", "n")
        if not 0 <= rest <= rows:
            raise CurateError(f"shard: rounding left {rest} samples to place among {rows}")
        if rest:
            fkeys = (_scalar(bases, "fkey", "imin"), _scalar(bases, "fkey", "imax"))
            cut = cut_row(frames, cand, budget, rest, rows, fkeys, _scalar(totals, "uidlen", "imax"))
            budget = Budget(budget_n, total, cut)
    hist = _kinds(frames.reduce(cand, Histogram(budget), columns=["uid", "weight", "refuse", "nbytes"]), "count")
    counts = dict(zip(hist.column("key").to_pylist(), hist.column("n").to_pylist(), strict=True))
    per_count = dict(zip(hist.column("key").to_pylist(), hist.column("hi").to_pylist(), strict=True))
    cost = {"materialised": sum(c * b for c, b in per_count.items()),
            "streamed": sum(b for c, b in per_count.items() if c > 0)}
    mode = config.repetition
    if mode == "auto":
        mode = "streamed" if cost["streamed"] < cost["materialised"] else "materialised"
    size = config.samples_per_shard
    members = [sum(n for c, n in counts.items() if c > p) for p in range(max(counts, default=0))]
    bits = tuple(bits_for(m, size) for m in members)
    offsets = Offsets.of(_kinds(frames.reduce(cand, Buckets(budget, config.seed, bits),
                                              columns=["uid", "weight", "refuse", "nbytes"]), "bucket"))
    streamed = mode == "streamed"
    tar_offsets = offsets.first_pass_only() if streamed else offsets
    length = members[0] if streamed and members else budget_n
    blocks = math.ceil(length / size)
    targets = target_schema(schema)
    numbers = _numbers(frames, cand, budget, config, bits, tar_offsets, blocks, targets, streamed)
    writer = BlockWriter(out, size, config.max_shard_bytes, numbers, src.reader.source_dir, streamed,
                         config.write_tars, threads, src.reader.dynamic)
    if blocks:
        moved = frames.map(cand, Targets(budget, config.seed, bits, tar_offsets, size, targets, streamed), targets)
        written = frames.gather(frames.groups(moved, "block", writer, WRITTEN, blocks), WRITTEN)
    else:
        written = WRITTEN.empty_table()
        _empty_manifest(out)
    if streamed and budget_n:
        _playlist(frames, out, bits, offsets, size, math.ceil(budget_n / size), config.seed)
    written = written.sort_by([("tar", "ascending")])
    sizes = dict(zip(written.column("tar").to_pylist(), written.column("samples").to_pylist(), strict=True))
    fs.write_json(fs.join(out, "sizes.json"), sizes)
    samples_written = int(sum(sizes.values()))
    nbytes = int(pc.sum(written.column("bytes")).as_py() or 0)
    histogram = {str(k): int(v) for k, v in sorted(counts.items())}
    summary = {**plan.summary(histogram, weighted, budget_n), "seed": config.seed, "repetition": mode,
               "repetition_requested": config.repetition, "samples_written": samples_written,
               "bytes_if_materialised": cost["materialised"], "bytes_if_streamed": cost["streamed"],
               "manifest_schema": "manifest.v2", "block_samples": size, "blocks": blocks, "tars": numbers.total,
               "cut_blocks": len(numbers.cut), "max_shard_bytes": config.max_shard_bytes,
               "stream_blocks": math.ceil(budget_n / size), "stream": "stream" if streamed else "manifest",
               "tars_written": bool(config.write_tars)}
    fs.write_json(fs.join(out, "plan.json"), summary)
    kept = rows - counts.get(0, 0)
    return {"rows_in": rows + sum(refused.values()), "kept": kept, "planned_zero": rows - kept,
            "rejected": dict(sorted(refused.items())), "shards": numbers.total, "bytes": nbytes,
            "seed": config.seed, "repetition": mode, "samples_seen": budget_n, "samples_written": samples_written,
            "histogram": histogram}


def _check_listed(frames: Frames, src: Sources, matched: int, refused: dict) -> None:
    """Selected uids that no source sample carries: refused (external shards) or an error (our own run)."""
    if src.array is None:
        return
    ranges = uidset.ranges(src.listed)
    unique = sum(r["unique"] for r in frames.tasks(uidset.CountUnique(src.array), ranges)) if ranges else 0
    missing = unique - matched
    if missing <= 0:
        return
    if not src.external:
        raise CurateError(f"shard: {missing} selected uids are not in the download or score outputs of this run")
    refused[candidates.NOT_IN_SOURCES] = missing


def _numbers(frames: Frames, cand, budget: Budget, config, bits, offsets: Offsets, blocks: int,
             targets: pa.Schema, streamed: bool) -> TarNumbers:
    """Tar numbering: blocks whose buckets may hold more than the byte cap are placed exactly (their rows
    only) to count their tars; every other block is one tar."""
    size = config.samples_per_shard
    hot = np.flatnonzero(offsets.block_bytes(size, blocks) > config.max_shard_bytes)
    if not len(hot):
        return TarNumbers(blocks)
    only = tuple(int(b) for b in hot)
    moved = frames.map(cand, Targets(budget, config.seed, bits, offsets, size, targets, streamed, only), targets)
    counted = frames.gather(frames.groups(moved, "block", PieceCounter(size, config.max_shard_bytes), PIECES,
                                          len(only)), PIECES)
    counted = counted.filter(pc.greater(counted.column("pieces"), 1)).sort_by([("block", "ascending")])
    log.info("shard: %d of %d blocks exceed %d bytes and are cut", counted.num_rows, blocks, config.max_shard_bytes)
    return TarNumbers(blocks, tuple(counted.column("block").to_pylist()), tuple(counted.column("pieces").to_pylist()))


def _playlist(frames: Frames, out: str, bits, offsets: Offsets, size: int, blocks: int, seed: int) -> None:
    """A streamed folder's replay list: where each copy of the whole planned stream is read from."""
    work = fs.join(out, "_work", "located")
    located = frames.read([{"path": p} for p in dataset.part_paths(work)], _PartRows(LOCATED), LOCATED)
    schema = pa.schema([*LOCATED, *(pa.field(n, t) for n, t in TARGET_COLS if n != "repetition")])
    moved = frames.map(located, Targets(None, seed, bits, offsets, size, schema), schema)
    frames.gather(frames.groups(moved, "block", PlaylistWriter(out, size), WRITTEN, blocks), WRITTEN)
    fs.remove_tree(fs.join(out, "_work"))


class _PartRows:
    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema

    def __call__(self, item: dict) -> pa.Table:
        return dataset.read_part(item["path"], self.schema.names)


def _empty_manifest(out: str) -> None:
    """No sample is planned: the manifest is one empty part (readers still find its schema)."""
    from curate import schemas

    empty = schemas.load("manifest", 2).empty_table()
    dataset.write_part(empty, fs.join(out, "manifest", dataset.part_name(0)))
