"""Resharding throughput next to a plain copy of the same bytes.

    python -m bench shard [-- --n 12000 --px 256 --spark]

Builds a synthetic finished run (noise JPEGs, so they do not compress: about 60 kB each at 256 px; tars
with their `.idx`, as the download writes them) in a temporary folder, copies its download tars with
`cp` (the floor any resharder is held to), then times `run_shard` in-process (one thread per core and
one thread copying each shard; one pass, and materialised and streamed two-pass plans) and, with
--spark, under a local[2] Spark session started beforehand. MB/s = bytes of tar files written / wall
seconds of the whole stage (reading the tables, indexing the sources, writing tars, manifest and stats).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from curate.shard.run import ShardConfig, default_threads, run_shard
from curate.shard.synthetic import SyntheticRun, make_run


def _tar_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.tar"))


def _shard_once(run: Path, cfg: ShardConfig, engine=None, threads: int | None = None) -> float:
    shutil.rmtree(run / "shard", ignore_errors=True)
    t0 = time.perf_counter()
    run_shard(str(run), cfg, engine, threads)
    return time.perf_counter() - t0


def _cp_once(tars: list[str], dest: Path) -> float:
    """`cp` of the source tars (not their .idx files): the same bytes a one-pass reshard writes."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    t0 = time.perf_counter()
    subprocess.run(["cp", *tars, str(dest)], check=True)
    return time.perf_counter() - t0


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="bench shard")
    ap.add_argument("--n", type=int, default=12000, help="samples in the synthetic run (12,000: 746 MB of tars)")
    ap.add_argument("--px", type=int, default=256, help="image side in pixels")
    ap.add_argument("--spark", action="store_true", help="also time the Spark engine (local[2])")
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement; the best is reported")
    args = ap.parse_args(argv)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="bench_shard.") as tmp:
        run = Path(tmp) / "run"
        t0 = time.perf_counter()
        make_run(str(run), SyntheticRun(n=args.n, per_shard=500, image_px=args.px, noise=True))
        src = run / "download" / "shards"
        nbytes = _tar_bytes(src)
        print(f"synthetic run: {args.n} samples, {nbytes / 1e6:.1f} MB of tars, built in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        rows: list[tuple[str, float, int, float, int]] = []
        subprocess.run(["cp", "-r", str(src), str(Path(tmp) / "warm")], check=True)  # same page cache for all
        cfg = ShardConfig(samples_per_shard=1000)
        run_shard(str(run), cfg)  # first use: imports and caches, not timed
        threads = default_threads()
        two = {"passes": 2, "samples_per_shard": 1000}
        cases = [(f"reshard in-process, 1 pass ({threads} threads)", cfg, threads, 1),
                 ("reshard in-process, 1 pass (1 thread)", cfg, 1, 1),
                 (f"reshard in-process, materialised 2 passes ({threads} threads)",
                  ShardConfig(**two, repetition="materialised"), threads, 2),
                 (f"reshard in-process, streamed 2 passes ({threads} threads)",
                  ShardConfig(**two, repetition="streamed"), threads, 1)]
        # rounds interleave cp and every case, so each sees the same page cache and writeback; the best
        # round of each is reported (the machine may be shared: the best is the least disturbed)
        tars = [str(p) for p in sorted(src.glob("*.tar"))]
        cp_s, best = {1: float("inf"), 2: float("inf")}, [float("inf")] * len(cases)
        for _ in range(args.repeat):
            for k in cp_s:  # k copies: the same bytes as a k-pass materialised plan writes
                cp_s[k] = min(cp_s[k], sum(_cp_once(tars, Path(tmp) / f"copy{i}") for i in range(k)))
                if k == 2:
                    shutil.rmtree(Path(tmp) / "copy1")
            for i, (_, c, n, _) in enumerate(cases):
                best[i] = min(best[i], _shard_once(run, c, threads=n))
        cp_rate = {k: k * nbytes / s / 1e6 for k, s in cp_s.items()}
        rows.append(("cp download/shards/*.tar", cp_s[1], nbytes, cp_rate[1], 1))
        rows.append(("cp download/shards/*.tar twice (two folders)", cp_s[2], 2 * nbytes, cp_rate[2], 2))
        for (label, c, n, k), s in zip(cases, best, strict=True):
            _shard_once(run, c, threads=n)
            b = _tar_bytes(run / "shard")
            rows.append((label, s, b, b / s / 1e6, k))
        if args.spark:
            from curate.engines.spark import SparkEngine

            with SparkEngine() as engine:
                engine.run_tasks(len, [[0]])  # the session and a Python worker are up before timing
                s = min(_shard_once(run, cfg, engine) for _ in range(args.repeat))
                b = _tar_bytes(run / "shard")
                rows.append(("reshard Spark local[2], 1 pass", s, b, b / s / 1e6, 1))
    print(f"\n{args.n} samples of {args.px} px noise JPEG; best of {args.repeat} runs each")
    print("\n| what | seconds | MB written | MB/s | vs cp of the same bytes |")
    print("|---|---:|---:|---:|---:|")
    for label, s, b, rate, k in rows:
        print(f"| {label} | {s:.2f} | {b / 1e6:.1f} | {rate:.1f} | {rate / cp_rate[k]:.2f} |")
