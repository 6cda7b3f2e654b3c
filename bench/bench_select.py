"""Select at scale, timed as the CLI runs it: `run_select` on Spark from a run folder in storage to select/ in
storage (the pool built per download shard by the executors, decisions written by them, uids.npy streamed).

    python -m bench select -- [--rows 10000000] [--data DIR]

The run is synthetic (bench/scale_select.py: a finished download, dedup and score of `--rows` samples written
as partitioned parquet by Spark's executors; a precomputed nearest-centroid `cluster` column stands in for
k-means over embeddings). Two policies: DFN top 15% with an exact target, and DataComp-1B style (image-based
∩ ViT-L/14 top 30%, exact target of 5%). Reports rows/s and the peak RSS of the driver and of the whole
process tree; Spark's default driver memory, driver maxResultSize 16m (no collect of rows could pass).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench import scale_select
from bench.memory import PeakRss, self_peak_rss


def main(argv: list[str]) -> None:
    from curate.engines.spark import SparkEngine
    from curate.select.run import SelectConfig, run_select

    ap = argparse.ArgumentParser(prog="bench select")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--data", default=None, help="scratch folder (kept when given)")
    args = ap.parse_args(argv)
    folder = Path(args.data or tempfile.mkdtemp(prefix="bench-select-"))
    run = folder / f"run-{args.rows}"
    if not (run / "score" / "_SUCCESS").exists():
        with SparkEngine(conf={"spark.driver.memory": "4g"}) as eng:
            t = time.perf_counter()
            scale_select.gen_scored(eng, args.rows, str(run))
            print(f"generated {args.rows:,} scored rows in {time.perf_counter() - t:.0f} s", flush=True)
    rows = []
    for dfn in (True, False):
        policy = scale_select.policy_file(str(folder), args.rows, dfn=dfn)
        shutil.rmtree(run / "select", ignore_errors=True)
        engine = SparkEngine(conf={"spark.driver.maxResultSize": "16m"})
        engine.conf.pop("spark.driver.memory")
        with PeakRss() as tree, engine as spark:
            t = time.perf_counter()
            stats = run_select(str(run), SelectConfig(policy=policy), spark)
            seconds = time.perf_counter() - t
        rows.append((Path(policy).stem.removeprefix("policy-"), stats["rows_in"], stats["kept"], seconds,
                     tree.peak / 2**30))
    print("| policy | pool | kept (exact target) | wall s | rows/s | peak RSS tree GiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, n, kept, s, gib in rows:
        print(f"| {name} | {n:,} | {kept:,} | {s:.0f} | {n / s:,.0f} | {gib:.1f} |")
    print(f"driver Python peak RSS {self_peak_rss() / 2**20:,.0f} MiB")
    if not args.data:
        shutil.rmtree(folder, ignore_errors=True)
