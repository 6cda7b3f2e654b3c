"""Resharding throughput next to a plain copy of the same bytes.

    python -m bench shard [-- --n 12000 --px 256 --spark]

Builds a synthetic finished run (noise JPEGs, so they do not compress: about 60 kB each at 256 px; tars
with their `.idx`, as the download writes them) in a temporary folder, copies its download tars with
`cp` (the floor any resharder is held to), then times `run_shard` in-process (one thread per core and
one thread; one pass, and materialised and streamed two-pass plans) and, with --spark, under a local[2]
Spark session started beforehand. MB/s = bytes of tar files written / wall seconds of the whole stage
(reading the tables, indexing the sources, writing tars, manifest and stats).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from curate.engines.local import LocalEngine
from curate.shard.run import ShardConfig, default_threads, run_shard
from curate.shard.synthetic import SyntheticRun, make_run


def _tar_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.tar"))


def _timed_shard(run: Path, cfg: ShardConfig, repeat: int, engine=None) -> tuple[float, int]:
    """Best wall time of `repeat` fresh runs of the stage (the machine is shared: the best is the least
    disturbed), and the tar bytes written."""
    best = float("inf")
    for _ in range(repeat):
        shutil.rmtree(run / "shard", ignore_errors=True)
        t0 = time.perf_counter()
        run_shard(str(run), cfg, engine)
        best = min(best, time.perf_counter() - t0)
    return best, _tar_bytes(run / "shard")


def _timed_cp(src: Path, tmp: Path, repeat: int) -> float:
    """`cp` of the source tars (not their .idx files): the same bytes a one-pass reshard writes."""
    tars = [str(p) for p in sorted(src.glob("*.tar"))]
    best = float("inf")
    for _ in range(repeat):
        shutil.rmtree(tmp / "copy", ignore_errors=True)
        (tmp / "copy").mkdir()
        t0 = time.perf_counter()
        subprocess.run(["cp", *tars, str(tmp / "copy")], check=True)
        best = min(best, time.perf_counter() - t0)
    return best


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
        rows: list[tuple[str, float, int, float]] = []
        subprocess.run(["cp", "-r", str(src), str(Path(tmp) / "warm")], check=True)  # same page cache for all
        cfg = ShardConfig(samples_per_shard=1000)
        run_shard(str(run), cfg)  # first use: imports and caches, not timed
        cp_s = _timed_cp(src, Path(tmp), args.repeat)
        cp_rate = nbytes / cp_s / 1e6
        rows.append(("cp download/shards/*.tar", cp_s, nbytes, cp_rate))
        threads = default_threads()
        for label, c, engine in (
                (f"reshard in-process ({threads} threads), 1 pass", cfg, None),
                ("reshard in-process (1 thread), 1 pass", cfg, LocalEngine(threads=1)),
                (f"reshard in-process ({threads} threads), materialised 2 passes",
                 ShardConfig(samples_per_shard=1000, passes=2), None),
                (f"reshard in-process ({threads} threads), streamed 2 passes",
                 ShardConfig(samples_per_shard=1000, passes=2, repetition="streamed"), None)):
            s, b = _timed_shard(run, c, args.repeat, engine)
            rows.append((label, s, b, b / s / 1e6))
        if args.spark:
            from curate.engines.spark import SparkEngine

            with SparkEngine() as engine:
                engine.run_tasks(len, [[0]])  # the session and a Python worker are up before timing
                s, b = _timed_shard(run, cfg, args.repeat, engine)
                rows.append(("reshard Spark local[2], 1 pass", s, b, b / s / 1e6))
    print(f"\n{args.n} samples of {args.px} px noise JPEG; best of {args.repeat} runs each")
    print("\n| what | seconds | MB written | MB/s | vs cp |")
    print("|---|---:|---:|---:|---:|")
    for label, s, b, rate in rows:
        print(f"| {label} | {s:.2f} | {b / 1e6:.1f} | {rate:.1f} | {rate / cp_rate:.2f} |")
