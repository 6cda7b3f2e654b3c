"""Dedup decisions as one Spark program over the run's datasets: every successfully downloaded sample is kept
or rejected with one reason, and the decisions are written by the executors, one part per download shard.

Checks, in order; a sample gets the reason of the first check it fails, and each later check only sees the
samples still kept:
  1. safety_hash_list   md5, sha1 or sha256 on a supplied hash list, or pHash within `hash_list_distance`
                        bits of a listed pHash. Wins over everything.
  2. eval_contamination image sha256 equal to, or pHash within `eval_distance` bits of, an image of the
                        evaluation set.
  3. placeholder_image  the image's sha256 (or its pHash) is shared by at least `placeholder_min_urls`
                        distinct canonical URLs (counted over every sample): a host's "image not available"
                        picture. Every member is rejected, none kept.
  4. duplicate_url      same canonical URL as a kept sample.
  5. duplicate_pair     same image sha256 and same caption as a kept sample.
  6. duplicate_image    same image sha256 as a kept sample.
  7. near_duplicate     pHash within `near_distance` bits of a kept sample's, transitively.
Survivor rule (4-7): within a group, the sample with the smallest uid among those still kept survives;
`duplicate_of` names it, and a sample whose survivor later became a near-duplicate points to that group's
survivor. Rules 1-3 leave `duplicate_of` empty.

How each runs (../shared/DATAPLANE.md): a shard's samples and hashes parts are joined in the task that reads
them; hash lists and the eval set are a broadcast index of the reference side only (`near_refs`);
placeholders are group-bys; rules 4-6 are windows (rows ordered so that rows an earlier check rejected come
last); near duplicates collapse identical hashes, pair the distinct ones by multi-index hashing
(`near_pairs`, exact recall, linear candidates) and group them by connected components checkpointed under
the stage's `_work/` folder. Nothing on the driver grows with the rows.
"""

from __future__ import annotations

import logging

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from curate.dedup.config import DedupConfig
from curate.dedup.mih import choose_parts
from curate.dedup.phash import hex_to_int64
from curate.dedup.refs import Refs
from curate.dedup.url import canonical_url
from curate.download.status import SUCCESS
from curate.engines import sparkgraph
from curate.engines.sparkio import PART_COL
from curate.io import dataset, fs

log = logging.getLogger(__name__)

REASONS = ("safety_hash_list", "eval_contamination", "placeholder_image", "duplicate_url", "duplicate_pair",
           "duplicate_image", "near_duplicate")
BASE = pa.schema([("uid", pa.string()), ("url_canonical", pa.string()), ("sha256", pa.string()),
                  ("caption", pa.string()), ("md5", pa.string()), ("sha1", pa.string()), ("h", pa.int64()),
                  (PART_COL, pa.string())])
DECIDED = pa.schema([("uid", pa.string()), ("url_canonical", pa.string()), ("sha256", pa.string()),
                     ("h", pa.int64()), ("reason", pa.string()), ("duplicate_of", pa.string()),
                     (PART_COL, pa.string())])
HASHES = pa.schema([("h", pa.int64())])
_SAMPLE_COLS = ["uid", "url", "caption", "status", "sha256", "shard"]


class ShardRows:
    """Runs in an executor: one download shard's successful rows, joined with its hashes, with the
    canonical URL and the pHash as a signed 64-bit integer (`h`)."""

    def __call__(self, item: dict) -> pa.Table:
        samples = dataset.read_part(item["samples"])
        for name in _SAMPLE_COLS:
            if name not in samples.column_names:
                samples = samples.append_column(name, pa.nulls(samples.num_rows, pa.string()))
        ok = samples.filter(pc.equal(samples.column("status"), SUCCESS)).select(_SAMPLE_COLS)
        if fs.exists(item["hashes"]):
            hashes = dataset.read_part(item["hashes"], ["uid", "md5", "sha1", "phash"])
            ok = ok.join(hashes, "uid", join_type="left outer")
        else:
            ok = ok.append_column("md5", pa.nulls(ok.num_rows, pa.string())).append_column(
                "sha1", pa.nulls(ok.num_rows, pa.string())).append_column("phash", pa.nulls(ok.num_rows, pa.string()))
        phash = ok.column("phash")
        valid = [v for v in phash.to_pylist() if v is not None]
        ints = iter(hex_to_int64(valid).tolist())
        h = pa.array([None if v is None else next(ints) for v in phash.to_pylist()], pa.int64())
        canon = pa.array([canonical_url(u) for u in ok.column("url").to_pylist()], pa.string())
        part = pa.array([dataset.shard_part_name(s).removesuffix(dataset.SUFFIX) for s in
                         ok.column("shard").to_pylist()], pa.string())
        return pa.table({"uid": ok.column("uid"), "url_canonical": canon, "sha256": ok.column("sha256"),
                         "caption": ok.column("caption"), "md5": ok.column("md5"), "sha1": ok.column("sha1"),
                         "h": h, PART_COL: part}, schema=BASE)


def base_frame(engine, samples_dir: str, hashes_dir: str) -> DataFrame:
    items = [{"samples": fs.join(samples_dir, name), "hashes": fs.join(hashes_dir, name)}
             for name in dataset.list_parts(samples_dir)]
    return engine.read_items(items, ShardRows(), BASE)


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


def _listed(engine, frame: DataFrame, refs: Refs, distance: int, name: str, kinds: tuple[str, ...]) -> DataFrame:
    """frame + `name`: an exact hash of `kinds` is listed in `refs`, or its pHash is within `distance`."""
    frame = frame.withColumn(name, F.lit(False))
    for kind in kinds:
        if getattr(refs, kind):
            frame = _flag(frame, kind, _refs_frame(engine, getattr(refs, kind), kind), f"_{kind}_hit")
            frame = frame.withColumn(name, F.col(name) | F.col(f"_{kind}_hit")).drop(f"_{kind}_hit")
    if refs.phash:
        ref = _refs_frame(engine, refs.phash, "h", to_int=True)
        pool = frame.where(F.col("h").isNotNull()).select("h").distinct()
        near = sparkgraph.near_refs(pool, ref, choose_parts(distance, len(refs.phash)))
        frame = _flag(frame, "h", near, "_ph_hit").withColumn(name, F.col(name) | F.col("_ph_hit")).drop("_ph_hit")
    return frame


def _shared(frame: DataFrame, key: str, min_urls: int) -> DataFrame:
    counts = frame.where(F.col(key).isNotNull()).groupBy(key).agg(F.countDistinct("url_canonical").alias("n"))
    return counts.where(F.col("n") >= min_urls).select(key)


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
        frame = _listed(engine, frame, safety, config.hash_list_distance, "_unsafe", ("md5", "sha1", "sha256"))
        frame = assign(frame, F.col("_unsafe"), "safety_hash_list").drop("_unsafe")
    if len(evalset):
        distance = config.near_distance if config.eval_distance is None else config.eval_distance
        frame = _listed(engine, frame, evalset, distance, "_eval", ("sha256",))
        frame = assign(frame, F.col("_eval"), "eval_contamination").drop("_eval")
    if config.placeholder_min_urls > 0:
        k = config.placeholder_min_urls
        frame = _flag(frame, "sha256", _shared(frame, "sha256", k), "_ph_sha")
        frame = _flag(frame, "h", _shared(frame, "h", k), "_ph_h")
        frame = assign(frame, F.col("_ph_sha") | F.col("_ph_h"), "placeholder_image").drop("_ph_sha", "_ph_h")

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


def near_rule(engine, frame: DataFrame, config: DedupConfig, work: str) -> DataFrame:
    """Rule 7 on the rows still kept: identical pHashes collapse, distinct ones pair by multi-index hashing,
    groups are connected components; survivors are each group's smallest uid."""
    alive = frame.where(F.col("reason").isNull() & F.col("h").isNotNull()).select("uid", "h")
    distinct = _checkpoint(engine, alive.select("h").distinct(), fs.join(work, "hashes"), HASHES, "h")
    n = distinct.count()
    layout = choose_parts(config.near_distance, n)
    log.info("dedup: %d distinct pHashes, near search in %d parts of %d bits (%d keys a row)", n, layout.parts,
             layout.width, layout.keys_per_row())
    pairs = sparkgraph.near_pairs(distinct, layout).select("a", "b")
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


def _checkpoint(engine, frame: DataFrame, folder: str, schema: pa.Schema, key: str) -> DataFrame:
    """Write `frame` under the stage's work folder and read it back: later steps start from storage, not
    from the lineage (and the rules are computed once)."""
    ffs, p = fs.url_to_fs(folder)
    if ffs.exists(p):
        ffs.rm(p, recursive=True)
    engine.write_dataset(frame, folder, partitions=max(1, engine.session.sparkContext.defaultParallelism), key=key,
                         sort_by=[key])
    return engine.read_dataset(folder, schema)


def decide(engine, samples_dir: str, hashes_dir: str, config: DedupConfig, safety: Refs, evalset: Refs,
           out_dir: str, work: str) -> dict:
    """Write the decisions (dedup.v1, one part per download shard, sorted by uid); returns write stats."""
    frame = base_frame(engine, samples_dir, hashes_dir)
    frame = exact_rules(engine, frame, config, safety, evalset).select(*DECIDED.names)
    frame = _checkpoint(engine, frame, fs.join(work, "exact"), DECIDED, "uid")
    if config.near:
        frame = near_rule(engine, frame, config, work)
    out = frame.select("uid", "url_canonical", "sha256", "reason", "duplicate_of", PART_COL)
    tasks = max(1, min(len(dataset.list_parts(samples_dir)), 4 * engine.session.sparkContext.defaultParallelism))
    return engine.write_dataset(out, out_dir, schema="dedup", sort_by=["uid"], tasks=tasks)
