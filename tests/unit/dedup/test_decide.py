"""Dedup decisions: the documented survivor rule, and the same answer on Spark and in-process."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate.dedup.run import DedupConfig, decide
from curate.engines.local import LocalEngine


def _samples(rows):
    return pa.Table.from_pylist([{"uid": u, "url": url, "sha256": h, "status": "success"} for u, url, h in rows]
                                + [{"uid": "f" * 32, "url": "http://x/failed", "sha256": None,
                                    "status": "http_error"}])


ROWS = [
    ("0" * 31 + "3", "http://a.org/1.jpg", "h1"),
    ("0" * 31 + "1", "HTTP://A.org/1.jpg#x", "h1"),  # same URL as ...3; smaller uid survives
    ("0" * 31 + "2", "http://b.org/2.jpg", "h1"),  # same image as ...1 under another URL
    ("0" * 31 + "4", "http://c.org/3.jpg", "h3"),
    ("0" * 31 + "5", "http://d.org/5.jpg?utm_source=q", "h5"),
    ("0" * 31 + "6", "http://d.org/5.jpg", "h6"),  # same URL as ...5, different bytes (page changed)
]


def _reasons(table):
    return {r["uid"][-1]: (r["reason"], (r["duplicate_of"] or "")[-1:]) for r in table.to_pylist()}


def test_survivor_rule_and_reasons():
    out = decide(LocalEngine(), _samples(ROWS), DedupConfig())
    assert out.num_rows == len(ROWS)  # failed downloads never reach dedup
    assert _reasons(out) == {"1": (None, ""), "2": ("duplicate_image", "1"), "3": ("duplicate_url", "1"),
                             "4": (None, ""), "5": (None, ""), "6": ("duplicate_url", "5")}


def test_image_dedup_can_be_switched_off():
    out = decide(LocalEngine(), _samples(ROWS), DedupConfig(by_image=False))
    assert _reasons(out)["2"] == (None, "")


@pytest.mark.spark
def test_spark_and_local_agree(spark_engine):
    import random

    rng = random.Random(0)
    rows = [(f"{i:032x}", f"http://h{rng.randint(0, 40)}.org/{rng.randint(0, 3)}.jpg", f"h{rng.randint(0, 60)}")
            for i in range(400)]
    rng.shuffle(rows)
    local = decide(LocalEngine(), _samples(rows), DedupConfig())
    spark = decide(spark_engine, _samples(rows), DedupConfig())
    assert spark.equals(local)
    assert 0 < local.column("reason").null_count < local.num_rows
