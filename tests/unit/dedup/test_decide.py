"""Dedup decisions: the documented survivor rule, and the same answer on Spark and in-process."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate import schemas
from curate.dedup.refs import Refs
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


def _u(i: int) -> str:
    return f"{i:032x}"


def _rows_with_every_reason():
    """uid index -> (url, caption, sha256, md5, phash): one case per reason, and the survivors."""
    near = "00000000ffffffff"
    rows = {
        1: ("http://a.org/1.jpg", "a cat", "s1", "m1", "0f0f0f0f0f0f0f0f"),
        2: ("http://a.org/2.jpg", "a cat", "s1", "m1", "0f0f0f0f0f0f0f0f"),  # same image + caption as 1
        3: ("http://a.org/3.jpg", "a dog", "s1", "m1", "0f0f0f0f0f0f0f0f"),  # same image as 1, other caption
        4: ("http://A.org/1.jpg#x", "a cat", "s4", "m4", "1234123412341234"),  # same URL as 1
        5: ("http://b.org/5.jpg", "a red star", "s5", "m5", near),
        6: ("http://b.org/6.jpg", "a red star", "s6", "m6", "00000000ffff0000"),  # 16 bits from 5: kept
        7: ("http://b.org/7.jpg", "a red star", "s7", "m7", "00000000fffffffe"),  # 1 bit from 5: near
        8: ("http://b.org/8.jpg", "x", "s8", "m8", "00000000fffffffc"),  # 1 bit from 7: chain -> 5
        9: ("http://c.org/9.jpg", "listed", "s9", "bad-md5", "aaaaaaaaaaaaaaaa"),  # md5 on the list
        10: ("http://c.org/10.jpg", "listed near", "s10", "m10", "5555555555555557"),  # pHash 1 bit from list
        11: ("http://c.org/11.jpg", "eval", "s11", "m11", "f0f0f0f0f0f0f0f1"),  # 1 bit from an eval image
    }
    for k in range(12, 18):  # one placeholder picture at six URLs
        rows[k] = (f"http://host{k}.org/missing.jpg", f"photo {k}", "sP", "mP", "ffff0000ffff0000")
    return rows


def _table(rows):
    samples = pa.Table.from_pylist([{"uid": _u(i), "url": r[0], "caption": r[1], "sha256": r[2],
                                     "status": "success"} for i, r in rows.items()])
    hashes = pa.Table.from_pylist([{"uid": _u(i), "md5": r[3], "sha1": "x" * 40, "sha256": r[2], "phash": r[4]}
                                   for i, r in rows.items()])
    return samples, hashes


SAFETY = Refs(md5=frozenset({"bad-md5"}), phash=frozenset({"5555555555555555"}))
EVALSET = Refs(sha256=frozenset({"e1"}), phash=frozenset({"f0f0f0f0f0f0f0f0"}))
EXPECTED = {1: (None, None), 2: ("duplicate_pair", 1), 3: ("duplicate_image", 1), 4: ("duplicate_url", 1),
            5: (None, None), 6: (None, None), 7: ("near_duplicate", 5), 8: ("near_duplicate", 5),
            9: ("safety_hash_list", None), 10: ("safety_hash_list", None), 11: ("eval_contamination", None),
            **{k: ("placeholder_image", None) for k in range(12, 18)}}


def _decisions(table):
    return {int(r["uid"], 16): (r["reason"], int(r["duplicate_of"], 16) if r["duplicate_of"] else None)
            for r in table.to_pylist()}


def test_every_reason_in_order_with_final_survivors():
    samples, hashes = _table(_rows_with_every_reason())
    config = DedupConfig(near_distance=2)
    out = decide(LocalEngine(), samples, config, hashes, SAFETY, EVALSET)
    assert _decisions(out) == EXPECTED
    assert set(out.column("reason").drop_null().to_pylist()) <= schemas.reasons("dedup")


def test_safety_list_wins_over_everything_and_survivors_come_from_kept_rows():
    rows = _rows_with_every_reason()
    rows[0] = ("http://a.org/1.jpg", "a cat", "s1", "bad-md5", "0f0f0f0f0f0f0f0f")  # smallest uid, listed
    samples, hashes = _table(rows)
    got = _decisions(decide(LocalEngine(), samples, DedupConfig(near_distance=2), hashes, SAFETY, EVALSET))
    assert got[0] == ("safety_hash_list", None)
    assert got[1] == (None, None) and got[4] == ("duplicate_url", 1)  # 1 survives, not the listed 0


def test_placeholder_threshold_and_switches():
    samples, hashes = _table(_rows_with_every_reason())
    got = _decisions(decide(LocalEngine(), samples, DedupConfig(placeholder_min_urls=7), hashes))
    assert got[12] == (None, None) and {got[k][0] for k in range(13, 18)} == {"duplicate_image"}
    got = _decisions(decide(LocalEngine(), samples, DedupConfig(near=False, by_pair=False), hashes))
    assert got[2] == ("duplicate_image", 1) and got[7] == (None, None)


@pytest.mark.spark
def test_spark_and_local_agree_on_every_reason(spark_engine):
    samples, hashes = _table(_rows_with_every_reason())
    config = DedupConfig(near_distance=2)
    local = decide(LocalEngine(), samples, config, hashes, SAFETY, EVALSET)
    spark = decide(spark_engine, samples, config, hashes, SAFETY, EVALSET)
    assert spark.equals(local)
    assert _decisions(spark) == EXPECTED
