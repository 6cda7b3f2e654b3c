"""The Spark engine: a local SparkSession by default, or whatever session spark-submit gave us."""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType

from curate.engines.base import StageSpec
from curate.errors import CurateError, named
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
        self._scratch = None

    def __enter__(self) -> SparkEngine:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers run our interpreter and venv
        active = SparkSession.getActiveSession()
        if active is not None:
            self.spark = active
        else:
            builder = SparkSession.builder.appName(self.app_name)
            conf = self.conf
            if not os.environ.get("PYSPARK_GATEWAY_PORT"):  # spark-submit's driver: its master stands, never ours
                builder = builder.master(with_retries(self.master, self.conf))
                conf, self._scratch = with_scratch(conf, local=self.master.startswith("local"))
            for k, v in conf.items():
                builder = builder.config(k, v)
            try:
                self.spark = builder.getOrCreate()
            except BaseException:
                self._drop_scratch()
                raise
            self.spark.sparkContext.setLogLevel("ERROR")
            self._owned = True
            log.info("started Spark %s (%s)", self.spark.version, self.master)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._owned and self.spark is not None:
                self.spark.stop()
        finally:
            self.spark = None
            self._drop_scratch()

    def _drop_scratch(self) -> None:
        if self._scratch is not None:
            self._scratch.remove()
            self._scratch = None

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

    def run_tasks(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`fn(item)` for every item, one Spark task each, results in item order. A task that raises runs
        again (Spark's `spark.task.maxFailures`); one that still fails is a one-line CurateError."""
        items, fn = list(items), named(fn)  # a failure names its item
        if not items:
            return []
        return self._job("spark tasks", len(items),
                         lambda sc: sc.parallelize(items, len(items)).map(fn).collect())

    def for_each(self, fn: Callable[[T], dict], items: Iterable[T], per_task: int = 1) -> dict:
        """`fn(item)` for every item on the executors, `per_task` items to a task; each returns a small stats
        dict, merged on the executors (one dict per task reaches the driver), then here. Failed tasks are
        retried by Spark; a task that still fails is a one-line CurateError naming the cause."""
        from curate.io.dataset import merge_stats

        items, fn = list(items), named(fn)  # a failure names its item
        if not items:
            return {}
        slices = max(1, -(-len(items) // max(1, per_task)))

        def task(part: Iterator[T]) -> Iterator[dict]:
            yield merge_stats(fn(item) for item in part)

        return merge_stats(self._job("spark tasks", slices,
                                     lambda sc: sc.parallelize(items, slices).mapPartitions(task).collect()))

    def _job(self, label: str, tasks: int, action: Callable):
        from curate.progress import Progress, poll

        sc = self.session.sparkContext
        group = f"curate-tasks-{id(action)}"
        sc.setJobGroup(group, "curate " + label)
        try:
            with Progress(label, tasks, "tasks") as progress:
                with poll(progress, lambda: _tasks_done(sc, group)):
                    try:
                        out = action(sc)
                    except Exception as exc:  # Py4JJavaError, PythonException: the cause, in one line
                        raise task_error(exc) from exc
                progress.update(tasks - progress.done)
                return out
        finally:
            sc.setLocalProperty("spark.jobGroup.id", None)

    def read_dataset(self, folder: str | Sequence[str], schema: pa.Schema, tasks: int | None = None) -> DataFrame:
        """A dataset folder (or a list of part paths) as a DataFrame of `schema`, read by the executors."""
        from curate.engines import sparkio
        from curate.io import dataset

        paths = dataset.part_paths(folder) if isinstance(folder, str) else list(folder)
        return sparkio.read_dataset(self.session, paths, schema, tasks)

    def map_groups(self, frame: DataFrame, key: str, fn: Callable[[pa.Table], pa.Table],
                   schema: pa.Schema) -> DataFrame:
        """`fn(rows of one group)` over every group of `key` (nulls one group): Spark's shuffle brings each group
        whole to one Python worker (`groupBy().applyInArrow`)."""
        from curate.engines.sparkio import spark_schema

        names = schema.names

        def run(table: pa.Table) -> pa.Table:  # typed: Spark picks applyInArrow's table API from the hints
            return fn(table).select(names).cast(schema)

        return frame.groupBy(key).applyInArrow(run, spark_schema(schema))

    def read_items(self, items: Sequence[dict], read: Callable[[dict], pa.Table], schema: pa.Schema,
                   tasks: int | None = None) -> DataFrame:
        """A DataFrame made by `read(item)` for every item in the executors (see `sparkio.read_items`)."""
        from curate.engines import sparkio

        return sparkio.read_items(self.session, items, read, schema, tasks)

    def write_dataset(self, frame: DataFrame, folder: str, **kw) -> dict:
        """Write `frame` as parts of `folder` from the executors (see `sparkio.write_dataset`)."""
        from curate.engines import sparkio

        try:
            return sparkio.write_dataset(frame, folder, **kw)
        except Exception as exc:
            if isinstance(exc, CurateError):
                raise
            raise task_error(exc) from exc

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
        order = pc.sort_indices(band, [("_s", "descending"), ("uid", "ascending")])
        row = band.take(order[k - above - 1:k - above])
        log.info("kth_largest: rank %d of %d, band of %d rows", k, n, band.num_rows)
        return float(row.column("_s")[0].as_py()), str(row.column("uid")[0].as_py())

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


_LOCAL = re.compile(r"^local\[(\d+|\*)\]$")
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt)): (.+)$", re.MULTILINE)


def with_retries(master: str, conf: dict[str, str]) -> str:
    """`local[N]` as `local[N,F]`: in local mode Spark retries a failed task only when the master says so
    (spark.task.maxFailures applies to clusters). F is spark.task.maxFailures, 4 unless set."""
    found = _LOCAL.match(master)
    if not found:
        return master
    return f"local[{found.group(1)},{int(conf.get('spark.task.maxFailures', '4'))}]"


def with_scratch(conf: dict[str, str], local: bool = True):
    """(`conf` with Spark's local folders (`spark-*`, `blockmgr-*`) in this process's scratch folder, that
    Scratch (curate.engines.scratch) to remove when the session stops), for a session curate creates with a
    `local` master (a cluster's executors keep the folders their cluster manager gives them); unless the user
    set spark.local.dir or SPARK_LOCAL_DIRS. When this session launches the JVM, its java.io.tmpdir (native
    libraries, `artifacts-*`, more `spark-*`) and hadoop.tmp.dir go to a scratch folder that lives as long
    as the JVM does: this process (removed at exit)."""
    from pyspark import SparkContext

    from curate.engines.scratch import Scratch, for_process

    conf, scratch = dict(conf), None
    if local and "spark.local.dir" not in conf and not os.environ.get("SPARK_LOCAL_DIRS"):
        scratch = Scratch("spark")
        conf["spark.local.dir"] = scratch.create()
    java = conf.get("spark.driver.extraJavaOptions", "")
    if SparkContext._gateway is None and "-Djava.io.tmpdir" not in java:  # the JVM starts now
        tmp = for_process("jvm")
        conf["spark.driver.extraJavaOptions"] = f"{java} -Djava.io.tmpdir={tmp}".strip()
        conf.setdefault("spark.hadoop.hadoop.tmp.dir", os.path.join(tmp, "hadoop"))
    return conf, scratch


def task_error(exc: BaseException) -> CurateError:
    """A failed Spark job as one line: the Python exception the task raised (a CurateError's message as it
    is), not the JVM's pages of stack."""
    text = str(exc)
    lines = [m.groups() for m in _ERROR_LINE.finditer(text)
             if not m.group(1).startswith(("org.apache", "py4j", "java.", "pyspark.", "scala."))]
    ours = [msg for name, msg in lines if name.startswith("curate.")]
    if ours:
        return CurateError(ours[-1].strip())
    if lines:
        name, msg = lines[-1]
        return CurateError(f"a Spark task failed: {name.rsplit('.', 1)[-1]}: {msg.strip()}")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return CurateError(f"a Spark job failed: {first[:300]}")


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
