"""Export throughput next to a plain copy of the same tar bytes.

    python -m bench export [-- --n 3000 --px 256]

Builds a synthetic finished run (noise JPEGs, about 60 kB each at 256 px), shards it in-process
(1,000 samples per tar), then times in the same process tree: `cp -r` of a folder holding the shard tars
(the floor), and `run_export` in-process (LocalEngine, one task per tar) to Hugging Face parquet and to
MDS, each from scratch. MB/s = bytes of shard tars read / wall seconds of the whole export (listing,
reading the tars, writing, and for MDS the merged index).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from curate.export.run import ExportConfig, run_export
from curate.shard.run import ShardConfig, run_shard
from curate.shard.synthetic import SyntheticRun, make_run


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _cp_once(src: Path, dest: Path) -> float:
    shutil.rmtree(dest, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dest)], check=True)
    return time.perf_counter() - t0


def _export_once(run: Path, fmt: str) -> float:
    shutil.rmtree(run / "export" / fmt, ignore_errors=True)
    t0 = time.perf_counter()
    run_export(str(run), ExportConfig(fmt))
    return time.perf_counter() - t0


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="bench export")
    ap.add_argument("--n", type=int, default=3000, help="samples in the synthetic run")
    ap.add_argument("--px", type=int, default=256, help="image side in pixels")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is reported")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_export.") as tmp:
        run = Path(tmp) / "run"
        t0 = time.perf_counter()
        make_run(str(run), SyntheticRun(n=args.n, per_shard=500, image_px=args.px, noise=True))
        run_shard(str(run), ShardConfig(samples_per_shard=1000))
        tars = Path(tmp) / "tars"
        tars.mkdir()
        for p in sorted((run / "shard").glob("*.tar")):
            os.link(p, tars / p.name)  # the same inodes: cp reads the bytes the exports read
        nbytes = _size(tars)
        print(f"synthetic run: {args.n} samples, {nbytes / 1e6:.1f} MB of shard tars, built in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        for fmt in ("hf-parquet", "mds"):
            _export_once(run, fmt)  # first use: imports (streaming imports torch), not timed
        cases = ["hf-parquet", "mds"]
        cp_s, best = float("inf"), dict.fromkeys(cases, float("inf"))
        for _ in range(args.repeat):  # rounds interleave cp and every format: the same page cache for all
            cp_s = min(cp_s, _cp_once(tars, Path(tmp) / "copy"))
            for fmt in cases:
                best[fmt] = min(best[fmt], _export_once(run, fmt))
        rows = [("cp -r of the shard tars", cp_s, nbytes)]
        rows += [(f"curate export --format {fmt} (in-process, one task per tar)", best[fmt],
                  _size(run / "export" / fmt)) for fmt in cases]
    cp_rate = nbytes / cp_s / 1e6
    print(f"\n{args.n} samples of {args.px} px noise JPEG; best of {args.repeat} runs each")
    print("\n| what | seconds | MB written | MB/s of tars read | vs cp |")
    print("|---|---:|---:|---:|---:|")
    for label, s, written in rows:
        rate = nbytes / s / 1e6
        print(f"| {label} | {s:.2f} | {written / 1e6:.1f} | {rate:.1f} | {rate / cp_rate:.2f} |")
