"""One measurement of `bench scale`, in a process of its own: `python -m bench.scale STAGE ROWS DIR`.

`gen` stages write a synthetic pool as partitioned parquet with Spark's executors (untimed, in their own
process); the measured stages run what the CLI runs — `plan_urls` (the download's planning) or `run_dedup`
(hashing listing, every rule, decisions, stats) — on a Spark session with the driver constrained:
`spark.driver.maxResultSize=16m` (any collect of rows fails) and Spark's default driver memory. `score`
runs `run_score` (the bundled tiny model, embeddings on) on a local Ray with 2 CPUs over a synthetic run of
JPEG/PNG shards (`gen-score`: `curate.score.synthetic`, SCORE_SHARD images per shard). The process prints
one JSON line: stage, rows, seconds, rows_per_s, driver_rss_bytes (this Python process's peak) and
tree_rss_bytes (the peak of the driver, the JVM or Ray, and their workers together).
"""

from __future__ import annotations

import json
import math
import sys
import time

from bench.memory import PeakRss, self_peak_rss

SHARD = 10_000  # rows per download shard, as the download writes them by default
ROWS_PER_INPUT_FILE = 1_000_000
MEASURE_CONF = {"spark.driver.maxResultSize": "16m"}
HASH_LIST = "hashlist.txt"
SCORE_SHARD = 1_000  # images per download shard in the score stage's synthetic runs


def engine(measure: bool):
    from curate.engines.spark import SparkEngine

    eng = SparkEngine(conf=dict(MEASURE_CONF) if measure else {"spark.driver.memory": "4g"})
    if measure:
        eng.conf.pop("spark.driver.memory")  # Spark's default driver memory, as the issue asks
    return eng


def gen_urls(eng, rows: int, out: str) -> None:
    """An input URL list without uids (so the plan derives them): 1% of rows repeat the row before them
    (url and caption), 1% have no caption; files of ROWS_PER_INPUT_FILE rows."""
    from pyspark.sql import functions as F

    from curate.io.dataset import PART_COL

    files = max(1, math.ceil(rows / ROWS_PER_INPUT_FILE))
    src = F.when(F.col("id") % 100 == 1, F.col("id") - 1).otherwise(F.col("id"))
    host = F.pmod(F.xxhash64(src, F.lit(1)), F.lit(20_000))
    df = eng.session.range(rows).select(
        F.col("id"),
        F.concat(F.lit("http://img"), host.cast("string"), F.lit(".example.com/"), src.cast("string"),
                 F.lit(".jpg")).alias("url"),
        F.when(F.pmod(F.xxhash64(src, F.lit(2)), F.lit(100)) == 0, F.lit(None).cast("string")).otherwise(
            F.concat(F.lit("a photo of thing "), F.pmod(F.xxhash64(src, F.lit(3)), F.lit(50_000)).cast("string"))
        ).alias("caption"),
        F.format_string("part-%05d", F.floor(F.col("id") / F.lit(math.ceil(rows / files)))).alias(PART_COL))
    eng.write_dataset(df, out, sort_by=["id"], tasks=files)


def _h(col, salt: int):
    from pyspark.sql import functions as F

    return F.xxhash64(col, F.lit(salt))


def gen_download(eng, rows: int, run: str, skew: float = 0.0) -> None:
    """A finished download of `rows` samples (no tars: the hashes are written too, so dedup's hashing pass
    has nothing left to do): 5% failed downloads, 2% repeated URLs, 3% repeated images, 1% near-copies of
    another image's pHash (1 bit), and with `skew`, that share of rows sharing one pHash."""
    from pyspark.sql import functions as F

    from curate import schemas
    from curate.io import fs
    from curate.io.dataset import PART_COL

    i = F.col("id")
    ok = F.pmod(_h(i, 7), F.lit(100)) >= 5
    url_id = F.when(F.pmod(_h(i, 3), F.lit(100)) < 2, F.pmod(_h(i, 4), F.lit(rows))).otherwise(i)
    img = F.when(F.pmod(_h(i, 6), F.lit(100)) < 3, F.pmod(_h(i, 8), F.lit(rows))).otherwise(i)
    near = F.pmod(_h(i, 10), F.lit(100)) == 0
    flip = F.expr("shiftleft(cast(1 as bigint), cast(pmod(id, 64) as int))")
    ph = F.when(near, _h(img + 1, 9).bitwiseXOR(flip))
    ph = ph.otherwise(_h(img, 9))
    if skew > 0:
        ph = F.when(F.pmod(_h(i, 11), F.lit(10_000)) < int(skew * 10_000), F.lit(0x5555AAAA5555AAAA)).otherwise(ph)
    base = eng.session.range(rows).select(
        i, F.md5(i.cast("string")).alias("uid"),
        F.concat(F.lit("http://h"), F.pmod(url_id, F.lit(5000)).cast("string"), F.lit(".org/"),
                 url_id.cast("string"), F.lit(".jpg")).alias("url"),
        F.concat(F.lit("photo "), F.pmod(_h(i, 5), F.lit(1000)).cast("string")).alias("caption"),
        F.when(ok, F.lit("success")).otherwise(F.lit("http_error")).alias("status"),
        F.when(ok, F.sha2(img.cast("string"), 256)).alias("sha256"),
        F.md5(F.concat(F.lit("i"), img.cast("string"))).alias("md5"),
        F.sha1(F.concat(F.lit("i"), img.cast("string"))).alias("sha1"),
        F.lower(F.lpad(F.hex(ph), 16, "0")).alias("phash"),
        F.format_string("%05d", F.floor(i / SHARD)).alias(PART_COL),
        F.format_string("%05d%05d", F.floor(i / SHARD), F.pmod(i, F.lit(SHARD))).alias("key"))
    sample_schema = schemas.load("samples", 3)
    cols = []
    for f in sample_schema:
        if f.name in base.columns:
            cols.append(F.col(f.name))
        elif f.name == "shard":
            cols.append(F.when(ok, F.concat(F.col(PART_COL), F.lit(".tar"))).alias("shard"))
        elif f.name == "error":
            cols.append(F.when(~ok, F.lit("HTTP Error 404: Not Found")).alias("error"))
        else:
            cols.append(F.lit(None).cast({"int32": "int", "float32": "float"}.get(str(f.type), "string")).alias(f.name))
    tasks = max(2, math.ceil(rows / 500_000))
    samples = base.select(*cols, "id", PART_COL)
    eng.write_dataset(samples.drop("id"), fs.join(run, "download", "samples"), schema="samples", version=3,
                      sort_by=["uid"], tasks=tasks)
    hashes = base.where(ok).select("uid", "md5", "sha1", "sha256", "phash", PART_COL)
    eng.write_dataset(hashes, fs.join(run, "dedup", "hashes"), schema="hashes", sort_by=["uid"], tasks=tasks)
    fs.write_bytes(fs.join(run, "download", "_SUCCESS"), b"")
    listed = base.where(ok & (F.pmod(i, F.lit(max(1, rows // 400))) == 7)).select("md5", "phash").limit(200).collect()
    entries = [r["md5"] for r in listed[:100]] + [r["phash"] for r in listed[100:]]
    fs.write_bytes(fs.join(run, HASH_LIST), ("\n".join(entries) + "\n").encode())


def gen_score(rows: int, run: str) -> None:
    """A download and dedup ready to score: `rows` rendered JPEG/PNG images of 64-256 px with captions."""
    from curate.score.synthetic import SyntheticRun, make_run

    make_run(run, SyntheticRun(n=rows, shards=math.ceil(rows / SCORE_SHARD), corrupt=0, seed=3))


def measure_score(rows: int, folder: str) -> dict:
    from curate.engines.ray import RayEngine
    from curate.io import fs
    from curate.score.run import ScoreConfig, run_score

    with PeakRss() as tree, RayEngine(num_cpus=2) as eng:
        started = time.perf_counter()
        stats = run_score(eng, fs.join(folder, "run"), ScoreConfig())
        seconds = time.perf_counter() - started
    return {"stage": "score", "rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds, 1),
            "driver_rss_bytes": self_peak_rss(), "tree_rss_bytes": tree.peak, "shards": stats["shards"],
            "rows_out": stats["rows_in"], "kept": stats["kept"]}


def measure(stage: str, rows: int, folder: str) -> dict:
    from curate.io import fs

    if stage == "score":
        return measure_score(rows, folder)
    if stage in ("select", "audit", "shard"):
        from bench import scale_select

        return scale_select.measure(stage, rows, folder, engine(measure=True))
    with PeakRss() as tree, engine(measure=True) as eng:
        started = time.perf_counter()
        if stage == "download-plan":
            from curate.download.config import DownloadConfig
            from curate.download.plan import plan_urls

            plan = plan_urls(eng, DownloadConfig(input=fs.join(folder, "input"), shard_size=SHARD),
                             fs.join(folder, "run", "download", "urls"))
            detail = {"shards": plan.shards, "rows_out": plan.rows}
        else:
            from curate.dedup.config import DedupConfig
            from curate.dedup.run import run_dedup

            stats = run_dedup(eng, fs.join(folder, "run"), DedupConfig(hash_lists=(fs.join(folder, "run", HASH_LIST),)))
            detail = {"kept": stats["kept"], "rows_out": stats["rows_in"], "rejected": stats["rejected"]}
        seconds = time.perf_counter() - started
    return {"stage": stage, "rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds, 1),
            "driver_rss_bytes": self_peak_rss(), "tree_rss_bytes": tree.peak, **detail}


def main(argv: list[str]) -> int:
    stage, rows, folder = argv[0], int(argv[1]), argv[2]
    skew = float(argv[3]) if len(argv) > 3 else 0.0
    from curate.io import fs

    if stage == "gen-urls":
        with engine(measure=False) as eng:
            gen_urls(eng, rows, fs.join(folder, "input"))
        return 0
    if stage == "gen-download":
        with engine(measure=False) as eng:
            gen_download(eng, rows, fs.join(folder, "run"), skew)
        return 0
    if stage in ("gen-select", "gen-audit", "gen-shard"):
        from bench import scale_select

        with engine(measure=False) as eng:
            scale_select.gen_scored(eng, rows, fs.join(folder, "run"))
            if stage == "gen-shard":
                scale_select.gen_sources(eng, rows, fs.join(folder, "run"), folder)
            if stage == "gen-audit":
                scale_select.gen_manifest(eng, fs.join(folder, "run"), folder, rows)
        return 0
    if stage == "gen-score":
        gen_score(rows, fs.join(folder, "run"))
        return 0
    print(json.dumps(measure(stage, rows, folder), sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
