"""Near-duplicate search at scale: multi-index hashing on Spark against brute force.

    python -m bench dedup -- [--n 16000000] [--distance 3] [--queries 2000] [--skew 0.01]

N synthetic 64-bit pHashes (random, plus 1% planted copies of others with 1..distance flipped bits) are
written as parquet parts; the near-duplicate rule runs on them as `curate dedup` runs it (`near_rule`:
identical hashes collapse, distinct ones pair by multi-index hashing, groups by connected components, each
group's smallest uid survives), on Spark local[2] with maxResultSize 16m. Reported: wall time, candidate
pairs per distinct hash (probe-index matches before verification), recall against numpy brute force over
`--queries` sampled hashes (every true neighbour of a sampled hash must be paired with it), and the same
run with `--skew` of the rows sharing one hash (a blank image), whose time should stay within 2x.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench.memory import PeakRss

OUT = Path(__file__).resolve().parent.parent / "bench_out" / "near"


def synthetic(n: int, distance: int, skew: float, seed: int = 0) -> np.ndarray:
    """n int64 hashes: random ones, 1% copies of others with 1..distance bits flipped, and `skew` of them
    replaced by one constant hash."""
    rng = np.random.default_rng(seed)
    h = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=n, dtype=np.int64, endpoint=True)
    src = rng.choice(n, size=n // 100, replace=False)
    flips = np.zeros(len(src), dtype=np.uint64)
    for k in range(distance):
        bit = rng.integers(0, 64, len(src)).astype(np.uint64)
        on = rng.random(len(src)) < (1.0 if k == 0 else 0.5)
        flips |= np.where(on, np.uint64(1) << bit, np.uint64(0))
    h[(src + 1) % n] = (h[src].view(np.uint64) ^ flips).view(np.int64)
    if skew:
        h[rng.random(n) < skew] = np.int64(0x5555AAAA5555AAAA)
    return h


def write_rows(h: np.ndarray, folder: Path, parts: int = 16) -> None:
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    for p, idx in enumerate(np.array_split(np.arange(len(h)), parts)):
        uids = pa.array([f"{i:032x}" for i in idx])
        pq.write_table(pa.table({"uid": uids, "h": pa.array(h[idx])}), folder / f"part-{p:05d}.parquet")


def run_near(engine, folder: Path, distance: int) -> dict:
    from pyspark.sql import functions as F

    from curate.dedup.config import DedupConfig
    from curate.dedup.mih import choose_parts
    from curate.engines import sparkgraph
    from curate.engines.spark_dedup import near_rule

    schema = pa.schema([("uid", pa.string()), ("h", pa.int64())])
    frame = engine.read_dataset(str(folder), schema).withColumn("reason", F.lit(None).cast("string")).withColumn(
        "duplicate_of", F.lit(None).cast("string"))
    started = time.perf_counter()
    decided = near_rule(engine, frame, DedupConfig(near_distance=distance), str(folder.parent / "work"))
    counts = {r["reason"]: r["count"] for r in decided.groupBy("reason").count().collect()}
    seconds = time.perf_counter() - started
    distinct = engine.read_dataset(str(folder.parent / "work" / "hashes"), pa.schema([("h", pa.int64())]))
    n_distinct = distinct.count()
    layout = choose_parts(distance, n_distinct)
    candidates = sparkgraph.candidate_count(distinct, layout, n_distinct)
    return {"seconds": seconds, "near_duplicates": counts.get("near_duplicate", 0), "distinct": n_distinct,
            "candidates_per_row": candidates / max(n_distinct, 1), "parts": layout.parts,
            "keys_per_row": layout.keys_per_row(), "distinct_frame": distinct, "layout": layout}


def recall(engine, distinct, layout, h: np.ndarray, distance: int, queries: int) -> tuple[float, int]:
    """Share of the true neighbours of `queries` sampled distinct hashes that near_pairs pairs them with."""
    from pyspark.sql import functions as F

    from curate.engines import sparkgraph

    u = np.unique(h)
    rng = np.random.default_rng(1)
    qs = u[rng.choice(len(u), size=min(queries, len(u)), replace=False)]
    want = set()
    uu = u.view(np.uint64)
    for q, qu in zip(qs, qs.view(np.uint64), strict=True):
        near = u[np.bitwise_count(uu ^ qu) <= distance]
        want |= {(min(int(q), int(x)), max(int(q), int(x))) for x in near if x != q}
    qf = engine.session.createDataFrame([(int(q),) for q in qs], "q long")
    pairs = sparkgraph.near_pairs(distinct, layout, len(u))
    hit = pairs.join(F.broadcast(qf), (F.col("a") == F.col("q")) | (F.col("b") == F.col("q"))).select("a", "b")
    got = {(r["a"], r["b"]) for r in hit.distinct().collect()}
    found = len(want & got)
    return (found / len(want) if want else 1.0), len(want)


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="bench dedup")
    p.add_argument("--n", type=int, default=16_000_000)
    p.add_argument("--distance", type=int, default=3)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--skew", type=float, default=0.01)
    args = p.parse_args(argv)
    from curate.engines.spark import SparkEngine

    results = []
    with SparkEngine(conf={"spark.driver.maxResultSize": "16m"}) as engine:
        for skew in (0.0, args.skew):
            if OUT.exists():
                shutil.rmtree(OUT)
            h = synthetic(args.n, args.distance, skew)
            write_rows(h, OUT / "rows")
            with PeakRss() as tree:
                r = run_near(engine, OUT / "rows", args.distance)
            rec, true_pairs = recall(engine, r.pop("distinct_frame"), r.pop("layout"), h, args.distance, args.queries)
            results.append({"n": args.n, "distance": args.distance, "skew": skew, **r, "recall": rec,
                            "true_pairs_sampled": true_pairs, "tree_rss_bytes": tree.peak})
            print(json.dumps(results[-1], sort_keys=True), flush=True)
    shutil.rmtree(OUT, ignore_errors=True)
    base, skewed = results
    print(f"| pool | seconds | distinct | parts x keys | candidates/row | near dups | recall ({args.queries} q) |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for r in results:
        print(f"| {'skew ' + format(r['skew'], '.0%') if r['skew'] else 'unskewed'} | {r['seconds']:,.0f} | "
              f"{r['distinct']:,} | {r['parts']} x {r['keys_per_row']} | {r['candidates_per_row']:.2f} | "
              f"{r['near_duplicates']:,} | {r['recall']:.4f} ({r['true_pairs_sampled']:,} pairs) |")
    print(f"skewed / unskewed time: {skewed['seconds'] / base['seconds']:.2f} (goal <= 2)")
