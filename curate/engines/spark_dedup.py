"""The dedup rules (`curate.dedup.rules`: their order, the survivor rule) as one Spark program: a shard's
samples and hashes parts joined in the task that reads them, reference lists as a broadcast index, placeholders
as group-bys, duplicates as windows, near duplicates by multi-index hashing and connected components
(`sparkgraph`), every step from storage to storage; the decisions written by the executors."""

from __future__ import annotations

import logging

import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from curate import schemas
from curate.dedup.config import BITS, DedupConfig
from curate.dedup.mih import choose_parts
from curate.dedup.phash import hex_to_int64
from curate.dedup.refs import Refs
from curate.dedup.rules import BASE, DECIDED, HASHES, ShardRows
from curate.engines import sparkgraph
from curate.io import dataset, fs
from curate.io.dataset import PART_COL
from curate.stage import StageStats

log = logging.getLogger(__name__)

PDQ_HEX = pa.schema([("pdq", pa.string())])
PDQ_IDS = pa.schema([("h", pa.int64()), ("pdq", pa.string())])


def base_frame(engine, samples_dir: str, hashes_dir: str, pdq: bool = False) -> DataFrame:
    items = [{"samples": fs.join(samples_dir, name), "hashes": fs.join(hashes_dir, name)}
             for name in dataset.list_parts(samples_dir)]
    return engine.read_items(items, ShardRows(pdq), BASE)


def needs_pdq(config: DedupConfig, safety: Refs, evalset: Refs) -> bool:
    """Whether any check compares PDQ hashes (else the rows carry none)."""
    return bool(safety.pdq) or (config.near_hash == "pdq" and (config.near or bool(evalset.pdq)))


def _flag(frame: DataFrame, on: str, values: DataFrame, name: str) -> DataFrame:
    """frame + boolean `name`: its `on` value is among `values` (a one-column frame, joined as a broadcast
    when the reference side is small, a shuffle otherwise: Spark's own choice)."""
    hit = values.select(F.col(values.columns[0]).alias(on)).distinct().withColumn(name, F.lit(True))
    return frame.join(hit, on, "left").fillna(False, subset=[name])


def _refs_frame(engine, values, column: str, to_int: bool = False) -> DataFrame:
    values = sorted(values)
    if to_int:
        return engine.session.createDataFrame([(int(v),) for v in hex_to_int64(values)], f"{column} long")
    return engine.session.createDataFrame([(v,) for v in values], f"{column} string")


def _listed(engine, frame: DataFrame, refs: Refs, distances: dict[str, int], name: str,
            kinds: tuple[str, ...]) -> DataFrame:
    """frame + `name`: an exact hash of `kinds` is listed in `refs`, or its pHash (PDQ hash) is within
    `distances["phash"]` (`["pdq"]`) bits of a listed one; a perceptual kind missing from `distances` is not
    compared."""
    frame = frame.withColumn(name, F.lit(False))
    for kind in kinds:
        if getattr(refs, kind):
            frame = _flag(frame, kind, _refs_frame(engine, getattr(refs, kind), kind), f"_{kind}_hit")
            frame = frame.withColumn(name, F.col(name) | F.col(f"_{kind}_hit")).drop(f"_{kind}_hit")
    if refs.phash and "phash" in distances:
        ref = _refs_frame(engine, refs.phash, "h", to_int=True)
        pool = frame.where(F.col("h").isNotNull()).select("h").distinct()
        near = sparkgraph.near_refs(pool, ref, choose_parts(distances["phash"], len(refs.phash)))
        frame = _flag(frame, "h", near, "_ph_hit").withColumn(name, F.col(name) | F.col("_ph_hit")).drop("_ph_hit")
    if refs.pdq and "pdq" in distances:
        pool = frame.where(F.col("pdq").isNotNull()).select("pdq").distinct()
        near = sparkgraph.near_refs_hex(pool, list(refs.pdq), distances["pdq"], 256).select("pdq")
        frame = _flag(frame, "pdq", near, "_pdq_hit").withColumn(name, F.col(name) | F.col("_pdq_hit")).drop(
            "_pdq_hit")
    return frame


def _urls_sharing(frame: DataFrame, key: str) -> DataFrame:
    """frame + `_n`: how many distinct canonical URLs share the row's `key` (0 where it is null), by two
    windows in one partitioning by `key` (no self-join, and the frame is read once)."""
    first = F.row_number().over(Window.partitionBy(key, "url_canonical").orderBy("uid")) == 1
    frame = frame.withColumn("_first", first.cast("int"))
    n = F.sum("_first").over(Window.partitionBy(key))
    return frame.withColumn("_n", F.when(F.col(key).isNull(), F.lit(0)).otherwise(n)).drop("_first")


def exact_rules(engine, frame: DataFrame, config: DedupConfig, safety: Refs, evalset: Refs) -> DataFrame:
    """Rules 1-6: frame + `reason` and `duplicate_of`."""
    frame = frame.withColumn("reason", F.lit(None).cast("string")).withColumn(
        "duplicate_of", F.lit(None).cast("string"))

    def assign(f: DataFrame, cond, name: str, of=None) -> DataFrame:
        hit = F.col("reason").isNull() & cond
        if of is not None:
            f = f.withColumn("duplicate_of", F.when(hit, of).otherwise(F.col("duplicate_of")))
        return f.withColumn("reason", F.when(hit, F.lit(name)).otherwise(F.col("reason")))

    if len(safety):
        frame = _listed(engine, frame, safety, {"phash": config.hash_list_distance,
                                                "pdq": config.hash_list_pdq_distance},
                        "_unsafe", ("md5", "sha1", "sha256"))
        frame = assign(frame, F.col("_unsafe"), "safety_hash_list").drop("_unsafe")
    if len(evalset):
        frame = _listed(engine, frame, evalset, {config.near_hash: config.eval_bits}, "_eval", ("sha256",))
        frame = assign(frame, F.col("_eval"), "eval_contamination").drop("_eval")
    if config.placeholder_min_urls > 0:
        k = config.placeholder_min_urls
        for key in ("sha256", "h"):  # counted over every row, rejected or not
            frame = _urls_sharing(frame, key).withColumnRenamed("_n", f"_n_{key}")
        frame = assign(frame, (F.col("_n_sha256") >= k) | (F.col("_n_h") >= k), "placeholder_image").drop(
            "_n_sha256", "_n_h")

    # a row without a caption (or image hash) pairs with nothing: its key is its own uid
    pair_key = F.when(F.col("sha256").isNull() | F.col("caption").isNull(), F.concat(F.lit("\x00"), F.col("uid"))
                      ).otherwise(F.concat(F.col("sha256"), F.lit("\n"), F.col("caption")))
    frame = frame.withColumn("_pre_out", F.col("reason").isNotNull().cast("int")).withColumn("_pair", pair_key)
    order = ["_pre_out"]
    w = Window.partitionBy("url_canonical").orderBy(*order, "uid")
    frame = frame.withColumn("_url_rank", F.row_number().over(w) - 1).withColumn("_url_first", F.first("uid").over(w))
    order += ["_url_rank"] if config.by_url else []
    frame = frame.repartition("sha256")  # pair groups lie within image groups: one shuffle serves both windows
    w = Window.partitionBy("sha256", "_pair").orderBy(*order, "uid")
    frame = frame.withColumn("_pair_rank", F.row_number().over(w) - 1).withColumn("_pair_first",
                                                                                   F.first("uid").over(w))
    order += ["_pair_rank"] if config.by_pair else []
    w = Window.partitionBy("sha256").orderBy(*order, "uid")
    frame = frame.withColumn("_img_rank", F.row_number().over(w) - 1).withColumn("_img_first", F.first("uid").over(w))
    for on, name, col in ((config.by_url, "duplicate_url", "url"), (config.by_pair, "duplicate_pair", "pair"),
                          (config.by_image, "duplicate_image", "img")):
        if on:
            frame = assign(frame, F.col(f"_{col}_rank") > 0, name, F.col(f"_{col}_first"))
    return frame.drop("_pre_out", "_pair", "_url_rank", "_url_first", "_pair_rank", "_pair_first", "_img_rank",
                      "_img_first")


def _distinct_pdq(engine, alive: DataFrame, work: str, partitions: int) -> tuple[DataFrame, DataFrame]:
    """(alive rows as (uid, h), distinct PDQ hashes as (h, pdq)): each distinct PDQ hash gets a distinct int64
    id `h`, fixed by writing the ids once under `work/` (every later step reads the same ids)."""
    distinct = _checkpoint(engine, alive.select("pdq").distinct(), fs.join(work, "pdq"), PDQ_HEX, "pdq", partitions)
    ids = distinct.withColumn("h", F.monotonically_increasing_id()).select("h", "pdq")
    ids = _checkpoint(engine, ids, fs.join(work, "pdq_ids"), PDQ_IDS, "h", partitions)
    return alive.join(ids, "pdq").select("uid", "h"), ids


def near_rule(engine, frame: DataFrame, config: DedupConfig, work: str, partitions: int = 0) -> DataFrame:
    """Rule 7 on the rows still kept: identical perceptual hashes (`config.near_hash`) collapse, distinct ones
    pair by multi-index hashing, groups are connected components; survivors are each group's smallest uid."""
    if config.near_hash == "pdq":
        alive = frame.where(F.col("reason").isNull() & F.col("pdq").isNotNull()).select("uid", "pdq")
        alive, distinct = _distinct_pdq(engine, alive, work, partitions)
    else:
        alive = frame.where(F.col("reason").isNull() & F.col("h").isNotNull()).select("uid", "h")
        distinct = _checkpoint(engine, alive.select("h").distinct(), fs.join(work, "hashes"), HASHES, "h",
                               partitions)
    n = distinct.count()
    layout = choose_parts(config.near_bits, n, BITS[config.near_hash])
    log.info("dedup: %d distinct %s hashes, near search in %d parts of %d bits (%d keys a row)", n,
             config.near_hash, layout.parts, layout.width, layout.keys_per_row())
    pairs = sparkgraph.near_pairs(distinct, layout, n).select("a", "b")
    comps = sparkgraph.connected_components(engine, pairs, fs.join(work, "components"))
    grouped = alive.join(comps.withColumnRenamed("node", "h"), "h", "left").select(
        "uid", F.coalesce(F.col("component"), F.col("h")).alias("_group"))
    survivor = grouped.groupBy("_group").agg(F.min("uid").alias("_survivor"))
    losers = grouped.join(survivor, "_group").where(F.col("uid") != F.col("_survivor")).select("uid", "_survivor")
    frame = frame.join(losers, "uid", "left")
    frame = frame.withColumn("reason", F.when(F.col("_survivor").isNotNull(), F.lit("near_duplicate"))
                             .otherwise(F.col("reason")))
    frame = frame.withColumn("duplicate_of", F.coalesce(F.col("_survivor"), F.col("duplicate_of"))).drop("_survivor")
    moved = losers.select(F.col("uid").alias("duplicate_of"), F.col("_survivor").alias("_moved"))
    return frame.join(moved, "duplicate_of", "left").withColumn(
        "duplicate_of", F.coalesce(F.col("_moved"), F.col("duplicate_of"))).drop("_moved")


def _checkpoint(engine, frame: DataFrame, folder: str, schema: pa.Schema, key: str, partitions: int = 0) -> DataFrame:
    """Write `frame` under the stage's work folder and read it back: later steps start from storage, not
    from the lineage (and the rules are computed once)."""
    ffs, p = fs.url_to_fs(folder)
    if ffs.exists(p):
        ffs.rm(p, recursive=True)
    parts = max(partitions, engine.session.sparkContext.defaultParallelism, 1)
    engine.write_dataset(frame, folder, partitions=parts, key=key, sort_by=[key])
    return engine.read_dataset(folder, schema)


def decide(engine, samples_dir: str, hashes_dir: str, config: DedupConfig, safety: Refs, evalset: Refs,
           out_dir: str, work: str) -> dict:
    """Write the decisions (dedup.v1, one part per download shard, sorted by uid); returns write stats."""
    shards = len(dataset.list_parts(samples_dir))
    parallelism = engine.session.sparkContext.defaultParallelism
    work_parts = max(parallelism, -(-shards // 32))  # about 320,000 rows a work part with 10,000-row shards
    base = base_frame(engine, samples_dir, hashes_dir, needs_pdq(config, safety, evalset))
    if safety.phash or safety.pdq or evalset.phash:  # the probes read the pool's hashes too: read the parts once
        base = base.persist(StorageLevel.DISK_ONLY)
    frame = exact_rules(engine, base, config, safety, evalset).select(*DECIDED.names)
    frame = _checkpoint(engine, frame, fs.join(work, "exact"), DECIDED, "uid", work_parts)
    base.unpersist()
    if config.near:
        frame = near_rule(engine, frame, config, work, work_parts)
    out = frame.select("uid", "url_canonical", "sha256", "reason", "duplicate_of", PART_COL)
    tasks = max(1, min(shards, max(2 * parallelism, -(-shards // 32))))
    return engine.write_dataset(out, out_dir, schema="dedup", sort_by=["uid"], tasks=tasks)


def decision_stats(engine, decisions_dir: str) -> tuple[StageStats, int, int]:
    """(rows and reasons, duplicate groups, near-duplicate groups) of the decisions, aggregated by Spark."""
    frame = engine.read_dataset(decisions_dir, schemas.load("dedup"))
    stats = StageStats()
    for row in frame.groupBy("reason").count().collect():
        stats.rows_in += row["count"]
        if row["reason"] is None:
            stats.kept += row["count"]
        else:
            stats.rejected[row["reason"]] += row["count"]
    near = F.when(F.col("reason") == "near_duplicate", F.col("duplicate_of"))
    groups = frame.agg(F.countDistinct("duplicate_of").alias("all"), F.countDistinct(near).alias("near")).first()
    return stats, int(groups["all"]), int(groups["near"])
