"""Near-duplicate search and connected components as Spark DataFrame programs, on the executors.

- `near_pairs`: pairs of distinct 64-bit hashes within d bits by multi-index hashing (`curate.dedup.mih`),
  blocked: a few rows per hash cross the shuffle to (part, prefix) groups, where the probe keys are made
  and matched with numpy; candidates linear in n, exact recall, each pair once.
- `near_refs`: pool hashes within d bits of a reference list; only the reference side is indexed (all its
  probe keys), the pool probes it with its exact part values through a broadcast join. `near_refs_hex` does
  the same for 256-bit PDQ hashes with an in-memory reference index shipped to the executors.
- `connected_components`: large-star / small-star (Kiveris et al., "Connected Components in MapReduce and
  Beyond", SoCC 2014), each round's edges checkpointed to a folder of the run; O(log^2 n) rounds.
"""

from __future__ import annotations

import logging
from math import comb

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from curate.dedup import mih
from curate.dedup.mih import Layout, signed
from curate.dedup.refindex import RefIndex, hex_words
from curate.io import fs

log = logging.getLogger(__name__)

EDGES = pa.schema([("big", pa.int64()), ("small", pa.int64())])


def _part_value(h, shift: int, mask: int):
    return F.shiftrightunsigned(h, shift).bitwiseAND(F.lit(signed(mask)).cast("long"))


def _keys(session: SparkSession, layout: Layout, flips: bool) -> DataFrame:
    """(part, shift, mask, flip) rows: every probe key of a part (flips) or its exact value only."""
    rows = [(i, shift, signed(mask), signed(f)) for i, (shift, mask) in enumerate(layout.shifts())
            for f in (layout.flips() if flips else [0])]
    return session.createDataFrame(rows, "part int, shift int, mask long, flip long")


def _keyed(hashes: DataFrame, keys: DataFrame, col: str) -> DataFrame:
    v = F.expr(f"(shiftrightunsigned({col}, shift) & mask) ^ flip")
    return hashes.crossJoin(F.broadcast(keys)).select(F.col(col), F.col("part"), v.alias("v"))


EMITTED = pa.schema([("part", pa.int32()), ("prefix", pa.int64()), ("suffix", pa.int64()), ("h", pa.int64()),
                     ("budget", pa.int8())])
PAIRS = pa.schema([("a", pa.int64()), ("b", pa.int64()), ("distance", pa.int32())])
HEX = "pdq"  # the hex column of hashes wider than 64 bits (`h` is then the hash's id)


def _emitted(layout: Layout) -> pa.Schema:
    """EMITTED, plus the words w0..w{W-1} of hashes wider than 64 bits."""
    if layout.words == 1:
        return EMITTED
    return pa.schema([*EMITTED, *(pa.field(f"w{j}", pa.int64()) for j in range(layout.words))])


class _Emit:
    """mapInArrow: distinct hashes in, the rows each sends to the search groups out (`mih.emit`). 64-bit
    hashes come as `h`; wider ones as an id `h` and their hex (`pdq`)."""

    def __init__(self, layout: Layout, p: int) -> None:
        self.layout, self.p = layout, p

    def __call__(self, batches):
        for batch in batches:
            h = batch.column("h").to_numpy(zero_copy_only=False)
            words = None
            if self.layout.words > 1:
                words = hex_words(batch.column(HEX).to_pylist(), self.layout.bits).view(np.int64)
            rows = mih.emit(h, self.layout, self.p, words)
            yield pa.RecordBatch.from_pydict(rows, schema=_emitted(self.layout))


class _Group:
    """applyInArrow: one (part, prefix) group's pairs (`mih.group_pairs`), or its candidate count."""

    def __init__(self, layout: Layout, p: int, count: bool = False) -> None:
        self.layout, self.p, self.count = layout, p, count

    def __call__(self, table: pa.Table) -> pa.Table:
        words = None
        if self.layout.words > 1:
            words = np.column_stack([table.column(f"w{j}").to_numpy() for j in range(self.layout.words)])
        a, b, candidates = mih.group_pairs(table.column("part")[0].as_py(), table.column("suffix").to_numpy(),
                                           table.column("h").to_numpy(), table.column("budget").to_numpy(),
                                           self.layout, self.p, words)
        if self.count:
            return pa.table({"candidates": [candidates]})
        if words is None:
            distance = np.bitwise_count((a ^ b).view(np.uint64)).astype(np.int32)
        else:  # ids: the distance of their hashes, looked up in this group's rows
            order = np.argsort(table.column("h").to_numpy(), kind="stable")
            ids = table.column("h").to_numpy()[order]
            u = mih.as_words(ids, words[order])
            diff = u[np.searchsorted(ids, a)] ^ u[np.searchsorted(ids, b)]
            distance = np.bitwise_count(diff).sum(axis=1).astype(np.int32)
        return pa.table({"a": pa.array(a), "b": pa.array(b), "distance": pa.array(distance)}, schema=PAIRS)


class _RefProbe:
    """mapInArrow: the pool hashes (hex, column `HEX`) within the distance of a reference list, each with its
    distance, by a `RefIndex` of the references built once per executor process."""

    def __init__(self, refs: np.ndarray, distance: int) -> None:
        self.refs, self.distance, self.index = refs, distance, None

    def __getstate__(self) -> dict:
        return {"refs": self.refs, "distance": self.distance, "index": None}

    def __call__(self, batches):
        if self.index is None:
            self.index = RefIndex(self.refs, self.distance)
        bits = 64 * self.refs.shape[1]
        for batch in batches:
            values = batch.column(HEX)
            d = self.index.within(hex_words(values.to_pylist(), bits))
            hit = d >= 0
            yield pa.RecordBatch.from_pydict({HEX: values.filter(pa.array(hit)), "distance": d[hit].astype(np.int32)},
                                             schema=pa.schema([(HEX, pa.string()), ("distance", pa.int32())]))


def _typed(fn):
    """A function with the type hints Spark reads to pick applyInArrow's table API (it cannot read them from a
    callable object)."""

    def run(table: pa.Table) -> pa.Table:
        return fn(table)

    return run


def _grouped(hashes: DataFrame, layout: Layout, n: int) -> tuple:
    p = mih.block_bits(layout, n)
    cols = ["h"] if layout.words == 1 else ["h", HEX]
    emitted = hashes.select(*cols).mapInArrow(_Emit(layout, p), from_arrow_schema(_emitted(layout)))
    log.info("near search: %d parts of %d bits, %d prefix bits (%d rows a hash cross the shuffle)", layout.parts,
             layout.width, p, layout.parts * sum(comb(p, t) for t in range(layout.radius + 1)))
    return emitted.groupBy("part", "prefix"), p


def near_pairs(hashes: DataFrame, layout: Layout, n: int) -> DataFrame:
    """(a, b, distance) with a < b for `n` distinct int64 hashes (column `h`) within `layout.distance` bits,
    each pair once, by the blocked multi-index search (`curate.dedup.mih`). For 256-bit layouts (PDQ) the
    hashes are hex strings (column `pdq`), `h` a distinct int64 id of each, and the pairs are of ids."""
    groups, p = _grouped(hashes, layout, n)
    return groups.applyInArrow(_typed(_Group(layout, p)), from_arrow_schema(PAIRS))


def candidate_count(hashes: DataFrame, layout: Layout, n: int) -> int:
    """Probe-index matches between different hashes before verification (what the search costs)."""
    groups, p = _grouped(hashes, layout, n)
    row = groups.applyInArrow(_typed(_Group(layout, p, count=True)), "candidates long").agg(
        F.sum("candidates")).first()
    return int(row[0] or 0)


def near_refs(pool: DataFrame, refs: DataFrame, layout: Layout) -> DataFrame:
    """The distinct pool hashes (`h`) within `layout.distance` bits of any reference hash (`h`)."""
    session = pool.sparkSession
    index = _keyed(refs.select(F.col("h").alias("r")), _keys(session, layout, flips=True), "r")
    probe = _keyed(pool.select(F.col("h").alias("p")), _keys(session, layout, flips=False), "p")
    hit = probe.join(F.broadcast(index), ["part", "v"]).where(
        F.bit_count(F.col("p").bitwiseXOR(F.col("r"))) <= layout.distance)
    return hit.select(F.col("p").alias("h")).distinct()


def near_refs_hex(pool: DataFrame, refs: list[str], distance: int, bits: int) -> DataFrame:
    """(pdq, distance): the distinct pool hashes (hex, column `pdq`) within `distance` bits of a reference
    hash (hex). Only the references are indexed (`curate.dedup.refindex`, exact recall), shipped once with the
    task closure; the pool is probed where it lies, by mapInArrow."""
    words = hex_words(sorted(refs), bits)
    schema = from_arrow_schema(pa.schema([(HEX, pa.string()), ("distance", pa.int32())]))
    return pool.select(HEX).mapInArrow(_RefProbe(words, distance), schema)


def connected_components(engine, edges: DataFrame, work: str, max_rounds: int = 100) -> DataFrame:
    """(node, component) for every node of the undirected graph `edges` (a, b), `component` its smallest
    node. Each round (large-star, then small-star) is written to `work/round-NNN/` and read back."""
    current = edges.select(F.greatest("a", "b").alias("big"), F.least("a", "b").alias("small")).where(
        F.col("big") != F.col("small")).distinct()
    current = _checkpoint(engine, current, work, 0)
    for k in range(1, max_rounds + 1):
        nxt = _checkpoint(engine, _small_star(_large_star(current)), work, k)
        changed = (nxt.withColumn("_new", F.lit(1)).join(current.withColumn("_old", F.lit(1)), ["big", "small"],
                                                          "full_outer")
                   .where(F.col("_new").isNull() | F.col("_old").isNull()).count())
        log.info("connected components: round %d, %d edges changed", k, changed)
        current = nxt
        if changed == 0:
            centers = current.select(F.col("small").alias("node"), F.col("small").alias("component")).distinct()
            return current.select(F.col("big").alias("node"), F.col("small").alias("component")).unionByName(centers)
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")


def _large_star(e: DataFrame) -> DataFrame:
    """Every node links its larger neighbours to the smallest node of its neighbourhood (itself included)."""
    both = e.select(F.col("big").alias("u"), F.col("small").alias("v")).unionByName(
        e.select(F.col("small").alias("u"), F.col("big").alias("v")))
    m = both.groupBy("u").agg(F.min("v").alias("mv")).select("u", F.least("u", "mv").alias("m"))
    return (both.join(m, "u").where(F.col("v") > F.col("u"))
            .select(F.col("v").alias("big"), F.col("m").alias("small")).distinct())


def _small_star(e: DataFrame) -> DataFrame:
    """Every node links itself and its smaller neighbours to the smallest of them."""
    m = e.groupBy("big").agg(F.min("small").alias("m"))
    linked = e.join(m, "big")
    others = linked.where(F.col("small") != F.col("m")).select(F.col("small").alias("big"), F.col("m").alias("small"))
    return others.unionByName(m.select("big", F.col("m").alias("small"))).distinct()


def _checkpoint(engine, frame: DataFrame, work: str, k: int) -> DataFrame:
    folder = fs.join(work, f"round-{k:03d}")
    ffs, p = fs.url_to_fs(folder)
    if ffs.exists(p):  # an earlier, interrupted attempt's round
        ffs.rm(p, recursive=True)
    parts = max(1, engine.session.sparkContext.defaultParallelism)
    engine.write_dataset(frame, folder, partitions=parts, key="big", sort_by=["big", "small"])
    return engine.read_dataset(folder, EDGES)
