"""Download throughput: `curate download` (img2dataset's Downloader under Spark, behind our address guard,
deadline, body and pixel caps, normalised into sorted tars and samples parquet) against plain img2dataset
(its multiprocessing distributor, no guard, no normalisation), in one run, on the same loopback pool.

    python -m bench download [-- --n 2000 --threads 32 --shard-size 500 --repeat 1]

The pool is the demo's (curate.demo.pool), served by curate.demo.server.LoopbackServer. Both sides use 2
processes, the same threads per process and samples per shard, no resizing and sha256. The Spark session
is started before curate's timing and timed separately (a cluster job has one already). Reported: rows
per second per core, end to end (img2dataset's times include its process start-up, ours Spark's Python
workers' start-up), and curate / img2dataset.

curate runs three times per round: with every check of issue 17 on (robots.txt and TDMRep per host,
X-Robots-Tag, per-host politeness at its defaults, a denylist of 1,000 URLs, domains and uids that match no
pool row, and the pool's safety hash list plus 16 PDQ entries, so every body gets md5, sha1, sha256, pHash
and PDQ before it is written); the same with the lists' exact hashes only (no body decoded for the check);
and with the checks off (`--no-robots --no-tdmrep`, no lists), to show what each costs.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

CORES = 2


def _img2dataset(pool: Path, out: Path, threads: int, shard_size: int) -> float:
    from img2dataset import download

    start = time.perf_counter()
    download(url_list=str(pool / "urls.parquet"), input_format="parquet", url_col="url", caption_col="caption",
             output_format="webdataset", output_folder=str(out), processes_count=CORES, thread_count=threads,
             number_sample_per_shard=shard_size, resize_mode="no", encode_format="jpg", skip_reencode=True,
             extract_exif=False, compute_hash="sha256", timeout=5, distributor="multiprocessing",
             disallowed_header_directives=["noai", "noimageai", "noindex", "noimageindex"])
    return time.perf_counter() - start


def _lists(pool: Path, perceptual: bool = True) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(denylists, hash lists) for the checked run: a denylist that matches no pool row (its cost, not its
    effect) and the pool's hash list plus PDQ entries (so every body is pHash- and PDQ-hashed too); without
    `perceptual`, only the list's md5, sha1 and sha256 entries (no body is decoded for the check)."""
    import random

    rng = random.Random(0)
    if not perceptual:
        exact = pool / "bench-exact.txt"
        exact.write_text("".join(line + "\n" for line in (pool / "hashlist.txt").read_text().splitlines()
                                 if len(line.strip()) in (32, 40, 64)))
    deny = pool / "bench-denylist.txt"
    deny.write_text("".join(f"http://deny-{i}.example.org/img/{i}.jpg\n" for i in range(400))
                    + "".join(f"deny-{i}.example.net\n" for i in range(300))
                    + "".join(f"{rng.getrandbits(128):032x}\n" for i in range(300)))
    pdq = pool / "bench-pdq.txt"
    pdq.write_text("".join(f"pdq:{rng.getrandbits(256):064x}\n" for _ in range(16)))
    if not perceptual:
        return (str(deny),), (str(pool / "bench-exact.txt"),)
    return (str(deny),), (str(pool / "hashlist.txt"), str(pdq))


def _curate(engine, pool: Path, out: Path, port: int, threads: int, shard_size: int,
            checks: bool = True, perceptual: bool = True) -> tuple[float, dict]:
    from curate.download.config import DownloadConfig
    from curate.download.run import run_download

    denylists, hash_lists = _lists(pool, perceptual) if checks else ((), ())
    config = DownloadConfig(input=str(pool / "urls.parquet"), shard_size=shard_size, threads=threads, timeout=5,
                            allow_addresses=(f"127.0.0.1:{port}",), robots=checks, tdmrep=checks,
                            denylists=denylists, hash_lists=hash_lists)
    start = time.perf_counter()
    stats = run_download(engine, str(out), config)
    return time.perf_counter() - start, stats


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="bench download")
    p.add_argument("--n", type=int, default=2000, help="pool rows")
    p.add_argument("--threads", type=int, default=32, help="download threads per process")
    p.add_argument("--shard-size", type=int, default=500)
    p.add_argument("--repeat", type=int, default=1, help="alternating rounds of both")
    args = p.parse_args(argv)
    for key, value in (("SPARK_LOCAL_IP", "127.0.0.1"), ("NO_ALBUMENTATIONS_UPDATE", "1"), ("OMP_NUM_THREADS", "1")):
        os.environ.setdefault(key, value)

    from curate.demo.pool import PoolConfig, generate_pool
    from curate.demo.run import _free_port
    from curate.demo.server import LoopbackServer
    from curate.engines.spark import SparkEngine

    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp:
        root = Path(tmp)
        port = _free_port()
        generate_pool(root / "pool", f"http://127.0.0.1:{port}", PoolConfig(n=args.n, seed=0))
        rows: list[tuple[str, int, float, str]] = []
        with LoopbackServer(root / "pool" / "site", port=port):
            started = time.perf_counter()
            with SparkEngine(master=f"local[{CORES}]") as engine:
                spark_start = time.perf_counter() - started
                for r in range(args.repeat):
                    t = _img2dataset(root / "pool", root / f"i2d-{r}", args.threads, args.shard_size)
                    rows.append(("img2dataset 1.47 (multiprocessing, 2 processes)", args.n, t, "-"))
                    t, stats = _curate(engine, root / "pool", root / f"curate-{r}", port, args.threads,
                                       args.shard_size)
                    rows.append(("curate download, all checks (Spark local[2])", args.n, t, _note(stats)))
                    t, stats = _curate(engine, root / "pool", root / f"curate-exact-{r}", port, args.threads,
                                       args.shard_size, perceptual=False)
                    rows.append(("curate download, all checks, exact-hash lists only (Spark local[2])", args.n, t,
                                 _note(stats)))
                    t, stats = _curate(engine, root / "pool", root / f"curate-bare-{r}", port, args.threads,
                                       args.shard_size, checks=False)
                    rows.append(("curate download, checks off (Spark local[2])", args.n, t, _note(stats)))
    print(f"\nmachine: {platform.node()} {CORES} cores used, Python {platform.python_version()}; "
          f"Spark session start (excluded): {spark_start:.1f} s\n")
    print("| downloader | rows | seconds | rows/s | rows/s per core | note |")
    print("|---|---:|---:|---:|---:|---|")
    for name, n, t, note in rows:
        print(f"| {name} | {n} | {t:.1f} | {n / t:.0f} | {n / t / CORES:.0f} | {note} |")
    i2d = [n / t for name, n, t, _ in rows if name.startswith("img2dataset")]
    ours = [n / t for name, n, t, _ in rows if name.startswith("curate download, all checks (")]
    exact = [n / t for name, n, t, _ in rows if "exact-hash" in name]
    bare = [n / t for name, n, t, _ in rows if "checks off" in name]
    # round 1's checked run is like for like (both start their worker processes cold); after it, Spark's
    # Python workers are reused with img2dataset already imported, while img2dataset starts fresh processes
    for r, (a, b, c, e) in enumerate(zip(ours, i2d, bare, exact, strict=True), 1):
        parts = [f"curate (all checks) / img2dataset throughput {a / b:.2f}"
                 + (" (both cold; goal >= 0.9)" if r == 1 else " (Spark workers warm)")]
        if r > 1:  # in round 1 the checked run alone started Spark's workers cold
            parts.append(f"all checks / checks off {a / c:.2f}")
        parts.append(f"exact-hash lists only / checks off {e / c:.2f}")
        print(f"round {r}: " + "; ".join(parts))


def _note(stats: dict) -> str:
    rejected = stats.get("rejected") or {}
    return f"{stats['kept']} kept; " + ", ".join(f"{k} {v}" for k, v in sorted(rejected.items()))
