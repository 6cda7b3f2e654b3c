"""The audit's checks that cross download shards, as Spark joins and counts (see `curate.audit`)."""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import functions as F

from curate.io import fs

UID = pa.schema([("uid", pa.string())])
SELECT = pa.schema([("uid", pa.string()), ("kept", pa.bool_())])


def cross_checks(engine, run: str, manifest_parts: list[str]) -> dict:
    urls = engine.read_dataset(fs.join(run, "download", "urls"), UID)
    selected = engine.read_dataset(fs.join(run, "select", "decisions"), SELECT).where("kept").select("uid")
    kept = engine.read_dataset(manifest_parts, UID).distinct()
    not_kept = selected.join(kept, "uid", "left_anti").agg(F.count(F.lit(1)).alias("n"), F.min("uid").alias("eg"))
    not_selected = kept.join(selected, "uid", "left_anti").agg(F.count(F.lit(1)).alias("n"),
                                                               F.min("uid").alias("eg"))
    repeats = (urls.groupBy("uid").count().where(F.col("count") > 1)
               .agg(F.coalesce(F.sum(F.col("count") - 1), F.lit(0)).alias("n"), F.min("uid").alias("eg")))
    a, b, c = not_kept.first(), not_selected.first(), repeats.first()
    return {"kept": kept.count(), "selected_not_kept": int(a["n"]), "not_kept_example": a["eg"],
            "not_selected": int(b["n"]), "not_selected_example": b["eg"], "input_repeats": int(c["n"]),
            "repeat_example": c["eg"]}
