"""Extract throughput: `curate extract` on synthetic WAT files shaped like Common Crawl's, against a bare loop
that only parses the same records with the same libraries (fastwarc for the records, msgspec for their JSON).

    python -m bench extract [-- --records 50000 --files 2 --repeat 3 --no-spark]

Both run in this process, one core, on the same files (read from the page cache after a first pass): the
bare loop reads every metadata record and parses its JSON; ours is one engine task per file, start to finish
(records, pages, rows, and its two parquet parts written). Reported: pages/s and pairs/s per core, and ours /
bare (the issue's goal: >= 0.8). With Spark (default), the whole stage also runs on local[2] over all the
files (the session's start excluded), per core. Last, a projection for one Common Crawl snapshot that names
its assumptions. The page shape is curate.extract.synthetic.cc_like_pages' (see its docstring).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

CORES = 2
SNAPSHOT_FILES = 90_000  # WAT files in one Common Crawl snapshot (the figure)
FILE_RECORDS = 50_000  # records in one of its WAT files (the figure): 3 per page
NODES, CORES_PER_NODE = 10, 16


def _bare(path: str) -> int:
    """Records parsed: every metadata record's JSON, nothing else."""
    import msgspec
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    n = 0
    with open(path, "rb") as fh:
        for record in ArchiveIterator(fh, record_types=WarcRecordType.metadata, parse_http=False):
            msgspec.json.decode(record.reader.read())
            n += 1
    return n


def _ours(path: str, out: Path) -> dict:
    from curate.extract.config import ExtractConfig
    from curate.extract.inputs import InputFile
    from curate.extract.task import ExtractTask, Item

    shutil.rmtree(out, ignore_errors=True)
    return ExtractTask(ExtractConfig(input=path), str(out))(Item(InputFile(0, path, path, None), done=False))


def _best(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="bench extract")
    p.add_argument("--records", type=int, default=50_000, help="WAT records per file (3 per page, + warcinfo)")
    p.add_argument("--files", type=int, default=2, help="WAT files (the Spark run reads them all)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs of each side; the best is kept")
    p.add_argument("--anchors", type=int, nargs=2, default=(50, 350), metavar=("LO", "HI"),
                   help="anchor links per page, uniform in [LO, HI]: what makes a page's JSON large")
    p.add_argument("--no-spark", action="store_true", help="skip the Spark local[2] run of the whole stage")
    args = p.parse_args(argv)
    for key, value in (("SPARK_LOCAL_IP", "127.0.0.1"), ("OMP_NUM_THREADS", "1")):
        os.environ.setdefault(key, value)
    from curate.extract.synthetic import cc_like_pages, write_wat

    pages_per_file = max(1, args.records // 3)
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        root = Path(tmp)
        folder = root / "crawl-data" / "CC-MAIN-2024-10" / "wat"
        folder.mkdir(parents=True)
        started = time.perf_counter()
        paths = [str(folder / f"f{k:05d}.warc.wat.gz") for k in range(args.files)]
        records = [write_wat(path, cc_like_pages(pages_per_file, seed=k, anchors=tuple(args.anchors)))
                   for k, path in enumerate(paths)]
        size_mb = sum(os.path.getsize(x) for x in paths) / 1e6
        print(f"wrote {args.files} WAT files, {records[0] + 1} records each ({pages_per_file} pages, "
              f"{args.anchors[0]}-{args.anchors[1]} anchors and 0-16 images a page), {size_mb / args.files:.1f} MB "
              f"each, in {time.perf_counter() - started:.0f} s")
        _bare(paths[0])  # into the page cache
        rows = []
        for k, path in enumerate(paths[:2]):
            t_bare, n = _best(lambda path=path: _bare(path), args.repeat)
            t_ours, stats = _best(lambda path=path, k=k: _ours(path, root / f"out{k}"), args.repeat)
            rows.append((Path(path).name, n, stats, t_bare, t_ours))
        spark = None if args.no_spark else _spark(root, folder)
    _print(rows, spark, size_mb / args.files / records[0])


def _spark(root: Path, folder: Path) -> tuple[float, dict]:
    from curate.engines.spark import SparkEngine
    from curate.extract.config import ExtractConfig
    from curate.extract.run import run_extract

    with SparkEngine(master=f"local[{CORES}]") as engine:
        run_extract(engine, str(root / "warm"), ExtractConfig(input=str(folder), limit=1))  # start the workers
        start = time.perf_counter()
        stats = run_extract(engine, str(root / "spark"), ExtractConfig(input=str(folder)))
        return time.perf_counter() - start, stats


def _print(rows: list, spark: tuple | None, mb_per_record: float) -> None:
    print(f"\nmachine: {platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| file | records | pages | pairs kept | bare loop s | ours s | bare pages/s | ours pages/s | "
          "ours pairs/s | ours / bare |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, n, stats, t_bare, t_ours in rows:
        print(f"| {name} | {n} | {stats['pages']} | {stats['kept']} | {t_bare:.2f} | {t_ours:.2f} | "
              f"{stats['pages'] / t_bare:,.0f} | {stats['pages'] / t_ours:,.0f} | {stats['kept'] / t_ours:,.0f} | "
              f"{t_bare / t_ours:.2f} |")
    pages_s = sum(r[2]["pages"] for r in rows) / sum(r[4] for r in rows)
    pairs_per_page = sum(r[2]["kept"] for r in rows) / sum(r[2]["pages"] for r in rows)
    if spark is not None:
        t, stats = spark
        print(f"\nSpark local[{CORES}], whole stage over {stats['files']} files (session start excluded): {t:.1f} s, "
              f"{stats['pages'] / t / CORES:,.0f} pages/s and {stats['kept'] / t / CORES:,.0f} pairs/s per core")
    cores = NODES * CORES_PER_NODE
    pages = FILE_RECORDS // 3
    file_s = pages / pages_s
    file_mb = FILE_RECORDS * mb_per_record
    print(f"\nprojection, one Common Crawl snapshot: {SNAPSHOT_FILES:,} WAT files on {NODES} x {CORES_PER_NODE}-core "
          f"nodes ({cores} tasks at once): {SNAPSHOT_FILES * file_s / 3600:,.0f} core-hours, about "
          f"{SNAPSHOT_FILES * file_s / cores / 3600:.1f} h of wall time, "
          f"{SNAPSHOT_FILES * pages * pairs_per_page / 1e9:.1f} B pairs kept.")
    print(f"assumptions: a WAT file holds {FILE_RECORDS:,} records ({pages:,} pages) and a real page costs what a "
          f"synthetic one costs here ({1e3 / pages_s:.2f} ms on one core: pages with more links cost more, the JSON "
          f"parse grows with their bytes), with the synthetic share of images and alt text; one task per core, no "
          f"stragglers, this machine's per-core speed; each node reads {CORES_PER_NODE * file_mb / file_s:.0f} MB/s "
          f"for files of {file_mb:.0f} MB (the synthetic size; scale by real files' size), which the store must "
          "sustain; task start-up and the driver's listing (one entry per file) are left out.")
