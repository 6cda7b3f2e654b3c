"""Select at scale on Spark: DFN top 15% and DataComp-1B-style (image-based ∩ CLIP top 30%) with a target size,
over synthetic metadata rows. `python -m bench select -- --rows 10000000`.

Simplifications: the metadata is synthetic (uniform 128-bit hex uids, normal CLIP/DFN scores, a language,
caption word/char counts, width/height) and the image-based filter reads a precomputed nearest-centroid id
(`cluster`, 100,000 clusters) with 30% of the clusters as the reference set's, instead of embeddings
(k-means on 12.8B embeddings is a GPU job; the row-local work after it is the same `isin`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CHUNK = 2_000_000
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def generate(folder: Path, rows: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, rows, CHUNK)):
        n = min(CHUNK, rows - start)
        nib = HEX[rng.integers(0, 16, size=(n, 32), dtype=np.uint8)]
        uids = pa.array(nib.view("S32").ravel().astype(str))
        l14 = rng.normal(0.25, 0.06, n).astype(np.float32)
        table = pa.table({
            "uid": uids, "clip_vit_l_14": l14, "clip_vit_b_32": (l14 + rng.normal(0, 0.02, n)).astype(np.float32),
            "clip_dfn": rng.uniform(0, 1, n).astype(np.float32),
            "language": pa.array(np.where(rng.uniform(size=n) < 0.45, "en", "xx")),
            "caption": pa.array(np.where(rng.uniform(size=n) < 0.9, "a photo of a thing", "a")),
            "original_width": rng.integers(64, 2048, n, dtype=np.int32),
            "original_height": rng.integers(64, 2048, n, dtype=np.int32),
            "cluster": rng.integers(0, 100_000, n, dtype=np.int32)})
        pq.write_table(table, folder / f"{i:05d}.parquet")


def tree_rss() -> int:
    """Resident memory of this process and all its descendants (the JVM and Python workers), bytes."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            parents[int(d)] = int(stat[1])
            rss[int(d)] = int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    me, total, frontier = os.getpid(), 0, [os.getpid()]
    seen = {me}
    while frontier:
        p = frontier.pop()
        total += rss.get(p, 0)
        kids = [c for c, pp in parents.items() if pp == p and c not in seen]
        seen.update(kids)
        frontier.extend(kids)
    return total


class Peak:
    def __init__(self) -> None:
        self.peak, self._stop = 0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.peak = max(self.peak, tree_rss())

    def __enter__(self) -> Peak:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()


def main(argv: list[str]) -> None:
    from curate.engines.spark import SparkEngine
    from curate.select.execute import select_frame
    from curate.select.policy import policy_from_dict

    ap = argparse.ArgumentParser(prog="bench select")
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--data", default=None, help="reuse generated metadata here")
    args = ap.parse_args(argv)
    tmp = Path(args.data or tempfile.mkdtemp(prefix="bench-select-"))
    data = tmp / f"meta-{args.rows}"
    if not data.exists():
        t = time.perf_counter()
        generate(data, args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t:.0f} s")
    ref = tmp / "reference_clusters.npy"
    np.save(ref, np.random.default_rng(1).choice(100_000, 30_000, replace=False))
    policies = {
        "dfn top 15% (target = 15%)": {"target_size": int(0.15 * args.rows), "steps": [{"step": "dfn"}]},
        "datacomp-1b style (image ∩ L/14 top 30%, target = 5%)": {
            "target_size": int(0.05 * args.rows),
            "steps": [{"step": "clip_score", "column": "clip_vit_l_14", "fraction": 0.3},
                      {"step": "datacomp_image", "cluster_column": "cluster", "reference_clusters": str(ref)}]},
    }
    rows = []
    with SparkEngine(conf={"spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "16"}) as spark:
        for name, policy in policies.items():
            with Peak() as peak:
                t = time.perf_counter()
                frame = spark.read_parquet([str(data)])
                out, resolved = select_frame(spark, frame, policy_from_dict(policy))
                kept = spark.count_where(out, "_reason")
                seconds = time.perf_counter() - t
            assert kept == policy["target_size"], (kept, policy["target_size"])
            rows.append((name, args.rows, kept, seconds, args.rows / seconds, peak.peak / 2**30))
    print("| selection | rows | kept (exact target) | wall s | rows/s | peak RSS GiB (tree) |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, n, kept, s, rate, gib in rows:
        print(f"| {name} | {n:,} | {kept:,} | {s:.0f} | {rate:,.0f} | {gib:.1f} |")
