"""The Spark engine: a local SparkSession by default, or whatever session spark-submit gave us."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from curate.engines.base import StageSpec
from curate.stage import build

log = logging.getLogger(__name__)
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
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
        return self.session.sparkContext.parallelize(items, len(items)).map(fn).collect()
