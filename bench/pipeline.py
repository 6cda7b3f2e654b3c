"""End-to-end pipeline timing on the bundled sample pool: wall time and rows/s per stage.

    python -m bench [--n 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from urllib.parse import urlsplit

from curate.dedup.run import run_dedup
from curate.demo.pool import PoolConfig
from curate.demo.run import demo_config, ensure_pool
from curate.demo.server import LoopbackServer
from curate.download.run import run_download
from curate.engines.ray import RayEngine
from curate.engines.spark import SparkEngine
from curate.io import fs
from curate.score.run import run_score
from curate.select.run import run_select
from curate.shard.run import run_shard


def _timed(rows: list, name: str, fn, *args) -> dict:
    t0 = time.perf_counter()
    stats = fn(*args)
    dt = time.perf_counter() - t0
    rows.append((name, stats.get("rows_in", 0), dt))
    return stats


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--n", type=int, default=2000, help="sample pool size")
    args = parser.parse_args(argv)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    rows: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run")
        t0 = time.perf_counter()
        pool_dir = ensure_pool(out, PoolConfig(n=args.n))
        rows.append(("pool", args.n, time.perf_counter() - t0))
        port = urlsplit(fs.read_table(fs.join(pool_dir, "urls.parquet")).column("url")[0].as_py()).port
        config = demo_config(pool_dir, port)
        t0 = time.perf_counter()
        with SparkEngine() as spark:
            rows.append(("spark start", 0, time.perf_counter() - t0))
            with LoopbackServer(fs.join(pool_dir, "site"), port=port):
                _timed(rows, "download", run_download, spark, out, config.download)
            _timed(rows, "dedup", run_dedup, spark, out, config.dedup)
        t0 = time.perf_counter()
        with RayEngine() as ray_engine:
            rows.append(("ray start", 0, time.perf_counter() - t0))
            _timed(rows, "score", run_score, ray_engine, out, config.score)
        _timed(rows, "select", run_select, out, config.select)
        _timed(rows, "shard", run_shard, out, config.shard)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{'stage':<12}{'rows in':>10}{'seconds':>10}{'rows/s':>10}")
    for name, n, dt in rows:
        rate = f"{n / dt:10.0f}" if n else f"{'-':>10}"
        print(f"{name:<12}{n:>10}{dt:>10.1f}{rate}")
    print(f"{'total':<12}{'':>10}{sum(dt for _, _, dt in rows):>10.1f}")
