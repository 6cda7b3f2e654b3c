"""Dedup benchmarks, side by side in one run:

1. Near-duplicate search on N synthetic 64-bit pHashes (random, plus 1% planted copies with up to
   `--distance` flipped bits): our LSH banding + connected components on Spark (local[2]) and on the
   local engine, against imagededup's BK-tree (`PHash().find_duplicates(encoding_map=...)`), with recall
   measured against numpy brute force on a random sample of queries.
2. Exact dedup (canonical URL, caption+image, image sha256) on `--exact-rows` synthetic metadata rows
   with the Spark engine: rows/s and peak memory of the whole process tree (driver, JVM, Python workers).

    python -m bench dedup -- [--sizes 100000 1000000] [--distance 3] [--exact-rows 10000000]
                             [--imagededup-full-max 100000] [--imagededup-sample 5000]
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.dedup.config import DedupConfig
from curate.dedup.decide import decide
from curate.engines.local import LocalEngine

RESULTS = Path(__file__).parent / "results" / "dedup.md"


def synthetic_hashes(n: int, distance: int, seed: int = 0) -> np.ndarray:
    """n distinct int64 hashes: random ones, and 1% copies of others with 1..distance bits flipped."""
    rng = np.random.default_rng(seed)
    h = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=n, dtype=np.int64, endpoint=True)
    planted = rng.choice(n, size=n // 100, replace=False)
    for i in planted:
        j = (i + 1) % n
        bits = rng.choice(64, size=rng.integers(1, distance + 1), replace=False)
        mask = np.uint64(sum(1 << int(b) for b in bits))
        h[j] = (h[i].view(np.uint64) ^ mask).view(np.int64)
    return np.unique(h)


def brute_force_recall(h: np.ndarray, pairs: set[tuple[int, int]], distance: int, queries: int,
                       rng: np.random.Generator) -> tuple[float, int]:
    """Recall of `pairs` over the true neighbours of `queries` random hashes (numpy popcount over all)."""
    u = h.view(np.uint64)
    found = true = 0
    for q in rng.choice(len(h), size=min(queries, len(h)), replace=False):
        near = np.flatnonzero(np.bitwise_count(u ^ u[q]) <= distance)
        for j in near:
            if j == q:
                continue
            true += 1
            found += (min(h[q], h[j]), max(h[q], h[j])) in pairs
    return (found / true if true else 1.0), true


def _pair_set(table: pa.Table) -> set[tuple[int, int]]:
    return set(zip(table.column("src").to_pylist(), table.column("dst").to_pylist(), strict=True))


def ours(engine, h: np.ndarray, distance: int) -> tuple[float, set[tuple[int, int]], int]:
    started = time.perf_counter()
    frame = engine.from_arrow(pa.table({"h": pa.array(h, pa.int64())}))
    pairs = engine.band_pairs(frame, "h", "h", distance + 1, distance)
    if engine.name == "spark":
        pairs = pairs.localCheckpoint()
    comps = engine.to_arrow(engine.connected_components(pairs, "src", "dst"))
    pairs_t = engine.to_arrow(pairs)
    return time.perf_counter() - started, _pair_set(pairs_t), comps.num_rows


def imagededup_run(h: np.ndarray, distance: int, full_max: int, sample: int) -> list[tuple[str, float, str]]:
    """[(method, seconds, how)] for imagededup's default search (brute_force_cython) and its BK-tree.
    Up to `full_max` hashes the whole `find_duplicates` is timed; above, the search structure is built on
    all hashes and `sample` queries are timed, scaled to every hash and halved for its 2 worker processes."""
    from imagededup.handlers.search.bktree import BKTree
    from imagededup.handlers.search.brute_force_cython import BruteForceCython
    from imagededup.methods import PHash

    logging.getLogger("imagededup").setLevel(logging.WARNING)
    hexes = [f"{int(v):016x}" for v in h.view(np.uint64)]
    enc = {str(i): x for i, x in enumerate(hexes)}
    out = []
    for method, cls in (("brute_force_cython", BruteForceCython), ("bktree", BKTree)):
        if len(h) <= full_max:
            started = time.perf_counter()
            PHash(verbose=False).find_duplicates(encoding_map=enc, max_distance_threshold=distance,
                                                 search_method=method)
            out.append((method, time.perf_counter() - started, "measured: find_duplicates, 2 workers"))
            continue
        started = time.perf_counter()
        index = cls(enc, PHash.hamming_distance)
        build = time.perf_counter() - started
        qs = np.random.default_rng(1).choice(len(h), size=min(sample, len(h)), replace=False)
        started = time.perf_counter()
        for q in qs:
            index.search(hexes[q], tol=distance)
        query = time.perf_counter() - started
        total = build + query * len(h) / len(qs) / 2
        out.append((method, total, f"extrapolated: build {build:.0f}s + {len(qs):,} queries {query:.1f}s, "
                                   f"scaled to {len(h):,} queries / 2 workers"))
    return out


class PeakRss:
    """Peak resident memory of this process and all its descendants (the JVM, Python workers), from /proc."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree_rss(self) -> int:
        children: dict[int, list[int]] = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    with open(f"/proc/{d}/stat") as fh:
                        ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                    children.setdefault(ppid, []).append(int(d))
                except (OSError, IndexError, ValueError):
                    continue
        todo, total = [os.getpid()], 0
        while todo:
            pid = todo.pop()
            todo += children.get(pid, [])
            try:
                with open(f"/proc/{pid}/statm") as fh:
                    total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            except OSError:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self.peak = self._tree_rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def exact_rows(n: int, seed: int = 0) -> pa.Table:
    """uid, url, caption, sha256, status: 5% URL duplicates (case/fragment/tracking variants), 5% image
    duplicates under other URLs."""
    rng = np.random.default_rng(seed)
    idx = np.arange(n)
    uid = pa.array([f"{i:032x}" for i in rng.permutation(n)])
    url_src = idx.copy()
    sha_src = idx.copy()
    dup_url = rng.random(n) < 0.05
    dup_img = ~dup_url & (rng.random(n) < 0.05)
    url_src[dup_url] = rng.integers(0, n, size=int(dup_url.sum()))
    sha_src[dup_img] = rng.integers(0, n, size=int(dup_img.sum()))
    sha_src[dup_url] = url_src[dup_url]
    suffix = np.where(dup_url, "#frag", "")
    url = pa.array([f"http://host{s % 997}.example.org/img/{s}.jpg{f}" for s, f in zip(url_src, suffix, strict=True)])
    sha = pa.array([f"{s:064x}" for s in sha_src])
    return pa.table({"uid": uid, "url": url, "caption": pa.nulls(n, pa.string()), "sha256": sha,
                     "status": pa.array(["success"] * n)})


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="bench dedup")
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--distance", type=int, default=3)
    p.add_argument("--recall-queries", type=int, default=2000)
    p.add_argument("--imagededup-full-max", type=int, default=100_000)
    p.add_argument("--imagededup-sample", type=int, default=5000)
    p.add_argument("--exact-rows", type=int, default=10_000_000)
    p.add_argument("--write", action="store_true", help=f"write the tables to {RESULTS}")
    args = p.parse_args(argv)
    from curate.engines.spark import SparkEngine

    d = args.distance
    lines = [f"Near-duplicate search, distance <= {d} bits, {d + 1} bands (pigeonhole: exact recall)", "",
             "| hashes | ours Spark local[2] s | ours local engine s | imagededup brute_force_cython s | "
             "imagededup bktree s | speed-up Spark vs best imagededup | pairs | recall Spark vs brute force | "
             "recall local |", "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    print("\n".join(lines), flush=True)
    rng = np.random.default_rng(7)
    # decide() brings the decisions table to the driver (Arrow): at 10M rows that is more than Spark's
    # default 1 GiB result cap, so the driver gets the memory and the cap is lifted
    with SparkEngine(conf={"spark.driver.memory": "8g", "spark.driver.maxResultSize": "0"}) as spark:
        ours(spark, synthetic_hashes(1000, d), d)  # warm the JVM and the Python workers
        for n in args.sizes:
            h = synthetic_hashes(n, d)
            t_spark, pairs_spark, _ = ours(spark, h, d)
            t_local, pairs_local, _ = ours(LocalEngine(), h, d)
            r_spark, true = brute_force_recall(h, pairs_spark, d, args.recall_queries, rng)
            r_local, _ = brute_force_recall(h, pairs_local, d, args.recall_queries, rng)
            idd = imagededup_run(h, d, args.imagededup_full_max, args.imagededup_sample)
            best = min(t for _, t, _ in idd)
            row = (f"| {n:,} | {t_spark:.1f} | {t_local:.1f} | {idd[0][1]:,.0f} | {idd[1][1]:,.0f} | "
                   f"{best / t_spark:.1f}x | {len(pairs_spark):,} | {r_spark:.4f} ({true} true neighbours of "
                   f"{args.recall_queries} queries) | {r_local:.4f} |")
            lines.append(row)
            notes += [f"- imagededup {m} at {n:,}: {how}" for m, _, how in idd]
            print(row, "\n" + "\n".join(notes[-2:]), flush=True)
        lines += ["", *notes]
        exact = ["", f"Exact dedup (canonical URL, caption+image, sha256) on {args.exact_rows:,} metadata rows, "
                 "Spark local[2]", "", "| rows | seconds | rows/s | peak RSS of the process tree | rejected |",
                 "|---|---|---|---|---|"]
        table = exact_rows(args.exact_rows)
        with PeakRss() as mem:
            started = time.perf_counter()
            out = decide(spark, table, DedupConfig(near=False, placeholder_min_urls=0))
            seconds = time.perf_counter() - started
        rejected = out.num_rows - out.column("reason").null_count
        exact.append(f"| {args.exact_rows:,} | {seconds:.0f} | {args.exact_rows / seconds:,.0f} | "
                     f"{mem.peak / 2**30:.1f} GiB | {rejected:,} |")
        print("\n".join(exact), flush=True)
        lines += exact
    lines += ["", f"Machine: {os.cpu_count()} cores, {platform.machine()}, no GPU, shared with other jobs.",
              f"Command: python -m bench dedup -- {' '.join(argv)}"]
    if args.write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)  # then merge it into bench/RESULTS.md by hand
        RESULTS.write_text("# bench dedup\n\n" + "\n".join(lines) + "\n")
