"""The Spark engine: a local SparkSession by default, or whatever session spark-submit gave us."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType

from curate.engines.base import StageSpec, band_layout
from curate.io.package import package_path
from curate.stage import build

log = logging.getLogger(__name__)
LOG4J_CONFIG = package_path("engines", "log4j2.properties")
T = TypeVar("T")
R = TypeVar("R")


class SparkEngine:
    """Owns the session it creates (and stops it on exit); reuses an active one (spark-submit)."""

    name = "spark"

    def __init__(self, master: str = "local[2]", app_name: str = "curate",
                 conf: dict[str, str] | None = None) -> None:
        self.master = master
        self.app_name = app_name
        self.conf = {
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.memory": "2g",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.shuffle.partitions": "8",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            "spark.driver.extraJavaOptions": f"-Dlog4j.configurationFile=file:{LOG4J_CONFIG}",
            **(conf or {}),
        }
        self.spark: SparkSession | None = None
        self._owned = False

    def __enter__(self) -> SparkEngine:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run our interpreter and venv
        active = SparkSession.getActiveSession()
        if active is not None:
            self.spark = active
        else:
            builder = SparkSession.builder.master(self.master).appName(self.app_name)
            for k, v in self.conf.items():
                builder = builder.config(k, v)
            self.spark = builder.getOrCreate()
            self.spark.sparkContext.setLogLevel("ERROR")
            self._owned = True
            log.info("started Spark %s (%s)", self.spark.version, self.master)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owned and self.spark is not None:
            self.spark.stop()
        self.spark = None

    @property
    def session(self) -> SparkSession:
        if self.spark is None:
            raise RuntimeError("SparkEngine used outside its `with` block")
        return self.spark

    def read_parquet(self, paths: Sequence[str]) -> DataFrame:
        return self.session.read.parquet(*paths)

    def from_arrow(self, table: pa.Table) -> DataFrame:
        return self.session.createDataFrame(table)

    def to_arrow(self, frame: DataFrame) -> pa.Table:
        return frame.toArrow()

    def map_batches(self, frame: DataFrame, spec: StageSpec, output_schema: pa.Schema) -> DataFrame:
        stage_cls, config, names = spec.stage_cls, spec.config, output_schema.names

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            stage = build(stage_cls, config)
            try:
                for batch in batches:
                    out = stage(pa.Table.from_batches([batch])).select(names).cast(output_schema)
                    yield from out.to_batches()
            finally:
                stage.teardown()

        ddl = self.session.createDataFrame(output_schema.empty_table()).schema
        return frame.mapInArrow(run, ddl)

    def rank_in_groups(self, frame: DataFrame, key: str, order: Sequence[str], rank_col: str,
                       first_col: str, value_col: str) -> DataFrame:
        w = Window.partitionBy(key).orderBy(*[F.col(c).asc() for c in order])
        return (frame.withColumn(rank_col, (F.row_number().over(w) - 1).cast("int"))
                .withColumn(first_col, F.first(value_col).over(w)))

    def run_tasks(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        items = list(items)
        if not items:
            return []
        from curate.progress import Progress, poll

        sc = self.session.sparkContext
        group = f"curate-tasks-{id(items)}"
        sc.setJobGroup(group, "curate run_tasks")
        try:
            with Progress("spark tasks", len(items), "tasks") as progress:
                with poll(progress, lambda: _tasks_done(sc, group)):
                    out = sc.parallelize(items, len(items)).map(fn).collect()
                progress.update(len(items) - progress.done)
                return out
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)

    @staticmethod
    def _kept(frame: DataFrame, where_null: str | None) -> DataFrame:
        return frame if where_null is None else frame.where(F.col(where_null).isNull())

    def count_where(self, frame: DataFrame, where_null: str | None = None) -> int:
        return self._kept(frame, where_null).count()

    def kth_largest(self, frame: DataFrame, column: str, k: int, where_null: str | None = None,
                    band_rows: int = 50_000) -> tuple[float, str]:
        """Approximate quantiles bracket the k-th value, one pass counts the rows above the bracket, and
        the rows inside it (about 4 * band_rows) are collected and sorted exactly by (value desc, uid asc)."""
        s = F.col(column).cast("double")
        s = F.when(s.isNull() | F.isnan(s), F.lit(float("-inf"))).otherwise(s)
        df = self._kept(frame, where_null).select(s.alias("_s"), F.col("uid"))
        n = df.count()
        if not 1 <= k <= n:
            raise ValueError(f"kth_largest: k={k} outside 1..{n}")
        eps = min(1e-3, max(1e-7, band_rows / n))
        p = 1 - k / n
        lo, hi = df.approxQuantile("_s", [max(0.0, p - 2 * eps), min(1.0, p + 2 * eps)], eps)
        if p - 2 * eps <= 0:
            lo = float("-inf")
        above, at_least = df.agg(F.sum((F.col("_s") > hi).cast("long")),
                                 F.sum((F.col("_s") >= lo).cast("long"))).first()
        if above >= k or at_least < k:  # the sketch missed (should not happen): widen to everything
            log.warning("kth_largest: quantile band missed rank %d of %d; collecting a wider band", k, n)
            lo, hi, above = float("-inf"), float("inf"), 0
        band = df.where((F.col("_s") >= lo) & (F.col("_s") <= hi)).toArrow()
        values = band.column("_s").to_numpy()
        uids = np.array(band.column("uid").to_pylist(), dtype=str)
        i = np.lexsort((uids, -values))[k - above - 1]
        log.info("kth_largest: rank %d of %d, band of %d rows", k, n, band.num_rows)
        return float(values[i]), str(uids[i])

    def value_counts(self, frame: DataFrame, column: str, where_null: str | None = None) -> dict:
        df = self._kept(frame, where_null)
        if isinstance(df.schema[column].dataType, ArrayType):
            df = df.select(F.explode(F.col(column)).alias(column))
        return {row[0]: row[1] for row in df.groupBy(column).count().collect()}

    def smallest_rows(self, frame: DataFrame, key: str, n: int, columns: Sequence[str],
                      where_null: str | None = None) -> pa.Table:
        df = self._kept(frame, where_null).orderBy(F.col(key).asc(), F.col("uid").asc()).limit(n)
        return df.select(*columns).toArrow()

    def materialize(self, frame: DataFrame) -> DataFrame:
        return frame.localCheckpoint(eager=True)

    def select_columns(self, frame: DataFrame, columns: Sequence[str]) -> DataFrame:
        return frame.select(*columns)

    def band_pairs(self, frame: DataFrame, id_col: str, hash_col: str, bands: int,
                   max_distance: int) -> DataFrame:
        """LSH banding as a Spark self-join on (band, band value); a pair is kept in the first band it
        shares, so no distinct() shuffle is needed."""
        layout = band_layout(bands)
        h = F.col(hash_col)
        parts = [frame.select(F.col(id_col).alias("id"), h.alias("h"), F.lit(b).alias("band"),
                              F.shiftrightunsigned(h, shift).bitwiseAND(F.lit(mask).cast("long")).alias("v"))
                 for b, (shift, mask) in enumerate(layout)]
        exploded = parts[0]
        for p in parts[1:]:
            exploded = exploded.unionByName(p)
        a, b = exploded.alias("a"), exploded.alias("b")
        pairs = a.join(b, (F.col("a.band") == F.col("b.band")) & (F.col("a.v") == F.col("b.v"))
                       & (F.col("a.id") < F.col("b.id")))
        x = F.col("a.h").bitwiseXOR(F.col("b.h"))
        keep = F.bit_count(x) <= max_distance
        for i in range(1, len(layout)):
            earlier = F.lit(True)
            for shift0, mask0 in layout[:i]:
                earlier = earlier & (F.shiftrightunsigned(x, shift0).bitwiseAND(F.lit(mask0).cast("long")) != 0)
            keep = keep & ((F.col("a.band") < i) | earlier)
        return pairs.where(keep).select(F.col("a.id").alias("src"), F.col("b.id").alias("dst"),
                                        F.bit_count(x).cast("int").alias("distance"))

    def connected_components(self, edges: DataFrame, src: str, dst: str, max_iter: int = 100,
                             collect_below: int = 2_000_000) -> DataFrame:
        """Min-label propagation with pointer jumping: each round a node takes the smallest label among
        itself, its neighbours and its label's label; stops when no label changes. A graph of fewer than
        `collect_below` edges (near-duplicate graphs usually are) is solved on the driver instead, with
        the local engine's union of scipy components: the same answer without a dozen Spark rounds."""
        e = edges.select(F.col(src).alias("a"), F.col(dst).alias("b")).localCheckpoint()
        if collect_below > 0 and e.count() < collect_below:
            from curate.engines.local import LocalEngine

            comps = LocalEngine().connected_components(e.toArrow(), "a", "b")
            return self.session.createDataFrame(comps) if comps.num_rows else self.session.createDataFrame(
                [], e.select(F.col("a").alias("node"), F.col("a").alias("component")).schema)
        both = e.unionByName(e.select(F.col("b").alias("a"), F.col("a").alias("b")))
        labels = (both.groupBy("a").agg(F.min("b").alias("m"))
                  .select(F.col("a").alias("node"), F.least("a", "m").alias("label"))).localCheckpoint()
        for _ in range(max_iter):
            nb = (both.join(labels.withColumnRenamed("node", "b"), "b")
                  .groupBy("a").agg(F.min("label").alias("nb")).withColumnRenamed("a", "node"))
            jump = labels.alias("l").join(labels.alias("k"), F.col("l.label") == F.col("k.node")).select(
                F.col("l.node").alias("node"), F.col("k.label").alias("jl"))
            new = (labels.join(nb, "node").join(jump, "node")
                   .select("node", F.col("label").alias("old"), F.least("label", "nb", "jl").alias("label"))
                   .localCheckpoint())
            changed = new.where(F.col("label") != F.col("old")).count()
            labels = new.select("node", "label")
            if changed == 0:
                return labels.withColumnRenamed("label", "component")
        raise RuntimeError(f"connected_components did not converge in {max_iter} rounds")


def _tasks_done(sc, group: str) -> int:
    """Completed tasks of the jobs in `group`, from Spark's status tracker (for progress)."""
    tracker = sc.statusTracker()
    done = 0
    for job_id in tracker.getJobIdsForGroup(group):
        job = tracker.getJobInfo(job_id)
        for stage_id in (job.stageIds if job else ()):
            stage = tracker.getStageInfo(stage_id)
            done += stage.numCompletedTasks if stage else 0
    return done
