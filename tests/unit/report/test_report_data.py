"""The report's numbers, computed per part by an engine, against numbers worked out here from the input
tables; Spark's page equals the in-process one; what a part returns stays bounded."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from curate.report import parts
from curate.report.build import render
from curate.report.data import ReportData

SHARDS, ROWS, THRESHOLD = 3, 60, 0.3


def _finish(folder, stats: dict) -> None:
    (folder / "_stats.json").write_text(json.dumps(stats))
    (folder / "_SUCCESS").write_text("")


def _write(folder, name: str, table: pa.Table) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / name)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Three download shards of 60 rows through every table, duplicates that cross shards, and a manifest
    of two parts (not aligned with the shards) listing every copy, without one selected sample (zero
    repetitions): the kept set is the manifest's, not select's."""
    rng = np.random.default_rng(7)
    root = tmp_path_factory.mktemp("report") / "run"
    uids = [[f"{s:02d}{i:030x}" for i in rng.permutation(ROWS)] for s in range(SHARDS)]
    manifest = []
    for s in range(SHARDS):
        name, u = f"{s:05d}.parquet", uids[s]
        status = rng.choice(["success"] * 8 + ["http_error", "timeout"], ROWS).tolist()
        _write(root / "download" / "samples", name, pa.table({
            "uid": u, "url": [f"http://h{i % 5}/{x}" for i, x in enumerate(u)], "caption": [f"c {x}" for x in u],
            "status": status, "error": [None] * ROWS, "shard": [f"{s:05d}.tar"] * ROWS,
            "key": [f"{s:05d}{i:04d}" for i in range(ROWS)]}))
        ok = [x for x, st in zip(u, status, strict=True) if st == "success"]
        dup = rng.random(len(ok)) < 0.2
        survivors = [uids[(s + 1) % SHARDS][k % 4] for k in range(len(ok))]  # in the next shard: crosses parts
        _write(root / "dedup" / "decisions", name, pa.table({
            "uid": ok, "reason": ["duplicate_image" if d else None for d in dup],
            "duplicate_of": [v if d else None for d, v in zip(dup, survivors, strict=True)]}))
        left = [x for x, d in zip(ok, dup, strict=True) if not d]
        sim = rng.uniform(-0.2, 0.95, len(left)).astype(np.float32)
        st = rng.choice(["ok"] * 9 + ["decode_error"], len(left)).tolist()
        sim = [None if t != "ok" else float(v) for t, v in zip(st, sim, strict=True)]
        langs = rng.choice(["en", "de", "fr"], len(left)).tolist()
        _write(root / "score" / "scores", name, pa.table({
            "uid": left, "status": st, "clip_similarity": pa.array(sim, pa.float32()), "language": langs,
            "language_score": pa.array(rng.uniform(0.5, 1, len(left)), pa.float32())}))
        scored = [(x, v, lang) for x, t, v, lang in zip(left, st, sim, langs, strict=True) if t == "ok"]
        kept = [v > THRESHOLD for _, v, _ in scored]
        _write(root / "select" / "decisions", name, pa.table({
            "uid": [x for x, _, _ in scored], "kept": kept,
            "reason": [None if k else "low_clip_score" for k in kept],
            "weight": [float(rng.uniform(0.5, 2)) if k else None for k in kept]}))
        for (x, v, lang), k in zip(scored, kept, strict=True):
            if k:
                manifest.append((x, v, lang, f"{s:05d}.tar"))
    manifest.sort()
    manifest = manifest[1:]  # the first selected sample was planned zero copies
    rows = [(x, v, lang, src, rep, c) for i, (x, v, lang, src) in enumerate(manifest)
            for rep in [1 + i % 3] for c in range(rep)]
    rows.sort(key=lambda r: (hash(r[0]) % 7, r[5]))
    half = len(rows) // 2
    for p, chunk in enumerate((rows[:half], rows[half:])):
        _write(root / "shard" / "manifest", f"part-{p:05d}.parquet", pa.table({
            "uid": [r[0] for r in chunk], "clip_similarity": pa.array([r[1] for r in chunk], pa.float32()),
            "language": [r[2] for r in chunk], "source_shard": [r[3] for r in chunk],
            "repetition": pa.array([r[4] for r in chunk], pa.int64()),
            "copy": pa.array([r[5] for r in chunk], pa.int32())}))
    (root / "select" / "selection.json").write_text(json.dumps({"steps": [
        {"name": "clip_score", "resolved": {"column": "clip_similarity", "threshold": THRESHOLD}}]}))
    for stage in ("download", "dedup", "score", "select"):
        _finish(root / stage, {"rows_in": 0, "kept": 0, "rejected": {}})
    return root


def _all(run, table: str) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((run / table).glob("*.parquet"))])


def test_numbers_equal_those_worked_out_from_the_tables(run):
    samples, dedup, scores = _all(run, "download/samples"), _all(run, "dedup/decisions"), _all(run, "score/scores")
    select, manifest = _all(run, "select/decisions"), _all(run, "shard/manifest")
    copy0 = [r for r in manifest.to_pylist() if r["copy"] == 0]
    kept_uids = {r["uid"] for r in copy0}
    d = ReportData(str(run))

    # counts per reason, over every stage
    reasons = Counter(s for s in samples.column("status").to_pylist() if s != "success")
    reasons.update(r for r in dedup.column("reason").to_pylist() if r)
    reasons.update(s for s in scores.column("status").to_pylist() if s != "ok")
    reasons.update(r for r, k in zip(select.column("reason").to_pylist(), select.column("kept").to_pylist(),
                                     strict=True) if not k)
    assert {r: n for r, (n, _) in d.rejected().items()} == dict(reasons)
    assert len(reasons) == 5 and min(reasons.values()) > 0
    bad = sorted(u for u, s in zip(samples.column("uid").to_pylist(), samples.column("status").to_pylist(),
                                   strict=True) if s == "http_error")
    assert [u for u, _ in d.rejected()["http_error"][1]] == bad[:parts.FIRST]

    # the CLIP histogram: 30 equal bins over the values and the threshold, all scored rows and the kept ones
    values = [v for v in scores.column("clip_similarity").to_pylist() if v is not None]
    edges = np.linspace(min(min(values), THRESHOLD), max(max(values), THRESHOLD), 31)
    by_uid = dict(zip(scores.column("uid").to_pylist(), scores.column("clip_similarity").to_pylist(), strict=True))
    (col, series, got_edges), _ = d.scores()
    assert col == "clip_similarity" and np.array_equal(got_edges, edges)
    assert series["all scored"] == np.histogram(values, edges)[0].tolist()
    assert series["kept"] == np.histogram([by_uid[u] for u in kept_uids], edges)[0].tolist()
    assert sum(series["kept"]) == len(kept_uids) == pc.sum(select.column("kept")).as_py() - 1  # one planned zero

    # weights of the rows select kept
    weights = [w for w in select.column("weight").to_pylist() if w is not None]
    w_series, w_edges = d.weights()
    assert w_series["weight"] == np.histogram(weights, np.linspace(min(weights), max(weights), 31))[0].tolist()

    # languages (scored pool with status ok; kept = the manifest's samples), repetition, kept samples
    ok = scores.filter(pc.equal(scores.column("status"), "ok"))
    assert d.languages() == {"before": dict(Counter(ok.column("language").to_pylist())),
                             "after": dict(Counter(r["language"] for r in copy0))}
    assert d.repetition() == ("repetition", dict(Counter(r["repetition"] for r in copy0)))
    n, first = d.kept()
    assert n == len(kept_uids) and [u for u, _ in first] == sorted(kept_uids)[:parts.FIRST]
    assert all(part == f"{u[:2].rjust(5, '0')}.parquet" for u, part in first)  # the shard holding its row

    # duplicate groups cross shards: survivor plus the rows naming it
    named = Counter(v for v in dedup.column("duplicate_of").to_pylist() if v)
    assert d.duplicate_groups() == dict(sorted(Counter(n + 1 for n in named.values()).items()))

    page = render(str(run))
    for reason, count in reasons.items():
        assert f'data-reason="{reason}" data-count="{count}"' in page
    assert f"the first {parts.FIRST} of {len(kept_uids)} kept samples by uid" in page


def test_a_part_returns_a_bounded_result(tmp_path):
    uids = [f"{i:032x}" for i in range(5000)]
    path = tmp_path / "00000.parquet"
    pq.write_table(pa.table({"uid": uids, "status": ["http_error"] * 5000}), path)
    got = parts.shard_summary(parts.Plan(), {"name": "00000.parquet", "samples": str(path)})
    assert got["rejected"] == {"http_error": 5000}
    assert got["first"]["rejected"]["http_error"] == [[u, "00000.parquet"] for u in uids[:parts.FIRST]]


def test_combine_adds_counts_widens_ranges_and_keeps_the_first_uids():
    a = {"rejected": {"x": 2}, "range": {"c": [0.1, 0.5]}, "first": {"x": [["b", "p1"], ["d", "p1"]]}}
    b = {"rejected": {"x": 3, "y": 1}, "range": {"c": [-0.2, 0.4]}, "first": {"x": [["a", "p2"]]}}
    assert parts.combine(a, b) == {"rejected": {"x": 5, "y": 1}, "range": {"c": [-0.2, 0.5]},
                                   "first": {"x": [["a", "p2"], ["b", "p1"], ["d", "p1"]]}}
    many = {"first": {"x": [[f"{i:03d}", "p"] for i in range(parts.FIRST)]}}
    assert len(parts.combine(many, {"first": {"x": [["zzz", "q"]]}})["first"]["x"]) == parts.FIRST


@pytest.mark.spark
def test_spark_page_equals_the_in_process_one(run, spark_engine, tmp_path):
    from curate.cli import main

    local, spark = ReportData(str(run)), ReportData(str(run), spark_engine)
    for name in ("rejected", "scores", "weights", "languages", "repetition", "kept", "duplicate_groups"):
        assert getattr(spark, name)() == getattr(local, name)(), name
    page = render(str(run))
    assert render(str(run), spark_engine) == page
    out = tmp_path / "r.html"  # the CLI's default engine is Spark (here the session already started)
    assert main(["report", str(run), "--out", str(out)]) == 0 and out.read_text(encoding="utf-8") == page
