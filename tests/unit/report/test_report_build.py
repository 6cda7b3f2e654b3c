"""The report page on a synthetic run: self-contained, numbers from the run, graceful when parts are missing."""

from __future__ import annotations

import io
import json
import re
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate.report import write_report
from curate.report.build import render

UIDS = [f"{i:032x}" for i in range(6)]


def _png(color: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(out, format="PNG")
    return out.getvalue()


def _finish(folder, stats: dict) -> None:
    (folder / "_stats.json").write_text(json.dumps(stats))
    (folder / "_SUCCESS").write_text("")


@pytest.fixture
def partial_run(tmp_path):
    """download (6 rows, one http_error), dedup (one duplicate_image) and score; no select or shard."""
    run = tmp_path / "run"
    dl = run / "download"
    (dl / "samples").mkdir(parents=True)
    (dl / "shards").mkdir()
    (dl / "urls").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"uid": UIDS, "url": [f"http://x/{u}" for u in UIDS]}), dl / "urls" / "00000.parquet")
    ok = UIDS[:5]
    pq.write_table(pa.table({
        "uid": UIDS, "url": [f"http://x/{u}" for u in UIDS], "caption": [f"a <b>shape</b> {i}" for i in range(6)],
        "status": ["success"] * 5 + ["http_error"], "error": [None] * 5 + ["404"],
        "shard": ["00000.tar"] * 5 + [None], "key": [f"{i:08d}" for i in range(5)] + [None]}),
        dl / "samples" / "00000.parquet")
    with tarfile.open(dl / "shards" / "00000.tar", "w") as tar:
        for i, _ in enumerate(ok):
            data = _png(["red", "green", "blue", "white", "black"][i])
            info = tarfile.TarInfo(f"{i:08d}.png")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    _finish(dl, {"rows_in": 6, "kept": 5, "rejected": {"http_error": 1}})
    dd = run / "dedup"
    (dd / "decisions").mkdir(parents=True)
    pq.write_table(pa.table({"uid": ok, "reason": [None, None, None, None, "duplicate_image"],
                             "duplicate_of": [None, None, None, None, UIDS[0]]}), dd / "decisions" / "00000.parquet")
    _finish(dd, {"rows_in": 5, "kept": 4, "rejected": {"duplicate_image": 1}})
    sc = run / "score"
    (sc / "scores").mkdir(parents=True)
    pq.write_table(pa.table({"uid": ok[:4], "status": ["ok"] * 4, "clip_similarity": [0.1, 0.5, 0.8, 0.9],
                             "language": ["en", "en", "de", "en"], "language_score": [0.9, 0.8, 0.7, 0.99]}),
                   sc / "scores" / "00000.parquet")
    _finish(sc, {"rows_in": 4, "kept": 4, "rejected": {}})
    return run


def _funnel_json(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="curate-funnel">(.*?)</script>', page, re.S)
    assert m
    return json.loads(m.group(1))


def test_partial_run_degrades_gracefully(partial_run):
    page = render(str(partial_run))
    funnel = _funnel_json(page)
    assert funnel["source"].startswith("stage stats") and sorted(funnel["stages"]) == ["dedup", "download", "score"]
    assert funnel["stages"]["download"] == {"rows_in": 6, "kept": 5, "rejected": {"http_error": 1}}
    assert 'data-stage="dedup" data-rows-in="5" data-kept="4" data-rejected="1"' in page
    assert page.count("not available for this run") >= 3  # weights, repetition, kept samples
    assert "select/decisions has no weight column" in page
    assert "<b>shape</b>" not in page and "&lt;b&gt;shape&lt;/b&gt;" in page  # captions escaped
    assert 'data-group-size="2" data-groups="1"' in page
    assert 'data-reason="http_error" data-count="1"' in page
    assert "no image (http_error)" in page  # failed downloads have no thumbnail
    assert page.count("data:image/jpeg;base64,") == 1  # the duplicate's thumbnail, from the tar


def test_select_thresholds_and_kept_samples(partial_run):
    sel = partial_run / "select"
    (sel / "decisions").mkdir(parents=True)
    kept = [True, False, True, True]
    pq.write_table(pa.table({"uid": UIDS[:4], "kept": kept, "reason": [None, "low_clip_score", None, None],
                             "weight": [1.0, None, 2.0, 0.5]}), sel / "decisions" / "00000.parquet")
    (sel / "selection.json").write_text(json.dumps({"steps": [
        {"name": "clip_score", "resolved": {"column": "clip_similarity", "threshold": 0.3, "fraction": None}},
        {"name": "other", "params": {"column": "language_score", "threshold": float("inf")}}]}))
    _finish(sel, {"rows_in": 4, "kept": 3, "rejected": {"low_clip_score": 1}})
    out = write_report(str(partial_run))
    assert out.endswith("report/index.html")
    page = open(out, encoding="utf-8").read()
    assert 'class="threshold" data-value="0.3"' in page and page.count('class="threshold"') == 1  # inf is no cut
    assert "weight of kept samples" in page
    assert "the first 3 of 3 kept samples" in page
    assert page.count("data:image/jpeg;base64,") == 5  # 3 kept, the duplicate, the low-score reject
    assert "<link" not in page and "src=\"http" not in page  # self-contained


def test_a_broken_section_costs_only_that_section(partial_run, monkeypatch):
    from curate.report import data

    def boom(self):
        raise ValueError("bad table")

    monkeypatch.setattr(data.ReportData, "duplicate_groups", boom)
    page = render(str(partial_run))
    assert "not available for this run (ValueError: bad table)" in page and 'id="funnel-table"' in page


def test_cli_report_writes_the_page_and_rejects_a_missing_run(partial_run, tmp_path, capsys):
    from curate.cli import main

    out = tmp_path / "r.html"
    assert main(["report", str(partial_run), "--out", str(out), "--engine", "local"]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "run directory not found" in capsys.readouterr().err
