"""`bench scale`: how the table work grows with the rows, with the driver held to shards (DATAPLANE.md).

    python -m bench scale -- --rows 1000000,4000000,16000000 --stages download-plan,dedup [--json]
                             [--skew 0.01] [--out bench_out/scale] [--write-rates]
    python -m bench scale -- --rows 2000,20000 --stages score

For each size, a synthetic pool is generated as partitioned parquet by Spark's executors (in a process of
its own, untimed), then each stage runs in a fresh process (`bench/scale.py`) exactly as the CLI runs it,
with `spark.driver.maxResultSize=16m` and Spark's default driver memory. One JSON object per line (stage,
rows, seconds, rows_per_s, driver_rss_bytes, tree_rss_bytes, ...); without --json a table follows. Goals:
every size finishes, driver RSS at the largest size <= 1.25 x at the smallest, and t(largest)/t(smallest)
<= 20 for a 16x size range. `score` (images, not rows: rendered JPEG shards scored by the tiny model on a
local Ray, embeddings on) is for sizes like 2,000 and 20,000; its driver RSS goal is the same. `--skew 0.01`
adds a dedup run where 1% of rows share one pHash (a blank image), to compare with the unskewed one.
`--write-rates` records the largest size's per-core rates in curate/assets/plan_rates.json, which
`curate plan` reads.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATES = ROOT / "curate" / "assets" / "plan_rates.json"
STAGES = ("download-plan", "dedup", "score", "select", "shard", "audit")
GEN = {"download-plan": "gen-urls", "dedup": "gen-download", "score": "gen-score", "select": "gen-select",
       "shard": "gen-shard", "audit": "gen-audit"}


def _run(args: list[str]) -> str:
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bench.scale", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench scale: {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


def measure(stage: str, rows: int, out: Path, skew: float = 0.0) -> dict:
    folder = out / (f"{stage}-{rows}" + (f"-skew{skew:g}" if skew else ""))
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    _run([GEN[stage], str(rows), str(folder), str(skew)])
    line = _run([stage, str(rows), str(folder)]).strip().splitlines()[-1]
    result = json.loads(line)
    if skew:
        result["skew"] = skew
    shutil.rmtree(folder)
    return result


def _table(results: list[dict]) -> str:
    lines = ["| stage | rows | seconds | rows/s | driver Python RSS | process tree RSS |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in results:
        name = r["stage"] + (f" (skew {r['skew']:g})" if r.get("skew") else "")
        lines.append(f"| {name} | {r['rows']:,} | {r['seconds']:,.1f} | {r['rows_per_s']:,.0f} | "
                     f"{r['driver_rss_bytes'] / 2**20:,.0f} MiB | {r['tree_rss_bytes'] / 2**30:,.2f} GiB |")
    return "\n".join(lines)


def _checks(results: list[dict]) -> list[str]:
    out = []
    for stage in {r["stage"] for r in results}:
        rs = sorted((r for r in results if r["stage"] == stage and not r.get("skew")), key=lambda r: r["rows"])
        if len(rs) < 2:
            continue
        lo, hi = rs[0], rs[-1]
        rss = hi["driver_rss_bytes"] / lo["driver_rss_bytes"]
        t = hi["seconds"] / lo["seconds"]
        out.append(f"{stage}: rows x{hi['rows'] / lo['rows']:g}: driver RSS x{rss:.2f} (goal <= 1.25), "
                   f"time x{t:.1f} (goal <= 20)")
        skewed = [r for r in results if r["stage"] == stage and r.get("skew") and r["rows"] == hi["rows"]]
        for s in skewed:
            out.append(f"{stage}: {s['skew']:.0%} of rows sharing one pHash took x{s['seconds'] / hi['seconds']:.2f} "
                       "the unskewed time (goal <= 2)")
    return out


def write_rates(results: list[dict], cores: int) -> None:
    rates = json.loads(RATES.read_text())
    today = date.today().isoformat()
    for stage, key in (("download-plan", "download_plan"), ("dedup", "dedup_rules"), ("select", "select"),
                       ("shard", "shard_plan")):
        rs = [r for r in results if r["stage"] == stage and not r.get("skew")]
        if not rs:
            continue
        r = max(rs, key=lambda r: r["rows"])
        what = {"select": "rows (DataComp-1B style: image-based ∩ CLIP top 30%, exact target size; run_select)",
                "shard": "pool rows, 5% kept, planned (repetition plan, positions, manifest parts; run_shard "
                         "without writing tars), rate per kept row"}.get(stage, "rows")
        # curate plan counts the shard stage's rows as the kept ones (the target size): its rate is per kept
        # row, though the stage also reads every pool row's status (conservative when more of the pool is kept)
        per_s = r["kept"] / r["seconds"] if stage == "shard" else r["rows_per_s"]
        rates[key] = {"unit": "core", "rows_per_s": round(per_s / cores, 1), "kind": "measured",
                      "source": f"bench/RESULTS.md, 'Web scale: bench scale' ({today}): {r['rows']:,} synthetic "
                                f"{what} in {r['seconds']:,.0f} s on Spark local[{cores}], driver maxResultSize 16m, "
                                "default driver memory",
                      "note": "per-core rate of a 2-core machine (JVM and Python workers share the cores)"}
    RATES.write_text(json.dumps(rates, indent=2, ensure_ascii=False) + "\n")


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="bench scale")
    p.add_argument("--rows", default="1000000,4000000,16000000", help="comma-separated sizes")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    p.add_argument("--skew", type=float, default=0.0, help="also run dedup with this share of rows on one pHash")
    p.add_argument("--out", default=str(ROOT / "bench_out" / "scale"), help="scratch folder")
    p.add_argument("--json", action="store_true", help="JSON lines only")
    p.add_argument("--write-rates", action="store_true", help="record the rates in curate/assets/plan_rates.json")
    p.add_argument("--from-log", default=None, help="take the results from the JSON lines of an earlier run")
    args = p.parse_args(argv)
    sizes = [int(float(x)) for x in args.rows.split(",")]
    stages = args.stages.split(",")
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise SystemExit(f"bench scale: unknown stage {unknown[0]!r}; have {', '.join(STAGES)}")
    out = Path(args.out)
    results = []
    if args.from_log:  # the table, checks and rates of an earlier run, without running it again
        results = [json.loads(line) for line in Path(args.from_log).read_text().splitlines() if line.startswith("{")]
        stages = []
    for stage in stages:
        for rows in sizes:
            results.append(measure(stage, rows, out))
            print(json.dumps(results[-1], sort_keys=True), flush=True)
        if args.skew and stage == "dedup":
            results.append(measure(stage, max(sizes), out, args.skew))
            print(json.dumps(results[-1], sort_keys=True), flush=True)
    if not args.json:
        print(_table(results))
        print("\n".join(_checks(results)))
    if args.write_rates:
        write_rates(results, os.cpu_count() or 1)
