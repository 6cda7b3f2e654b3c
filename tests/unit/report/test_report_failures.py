"""The report's download failures section: error classes, refusals and failing hosts from the stats."""

from __future__ import annotations

import json

from curate.report.build import render


def _download(run, stats: dict) -> None:
    dl = run / "download"
    dl.mkdir(parents=True)
    (dl / "_stats.json").write_text(json.dumps(stats))
    (dl / "_SUCCESS").write_text("")


def test_failure_classes_refusals_and_hosts(tmp_path):
    run = tmp_path / "run"
    _download(run, {"rows_in": 10, "kept": 3, "rejected": {"http_error": 3, "timeout": 1, "robots_disallowed": 2,
                                                             "safety_hash_list": 1},
                    "failures": {"by_class": {"http_404": 2, "http_503": 1, "timeout": 1},
                                 "top_hosts": [{"host": "a.<x>", "rows": 6, "failed": 3},
                                               {"host": "b", "rows": 2, "failed": 1}], "hosts_reported": 2}})
    page = render(str(run))
    assert '<section id="download-failures">' in page
    assert 'data-error-class="http_404" data-count="2"' in page and 'data-error-class="timeout" data-count="1"' in page
    assert 'data-refusal="robots_disallowed" data-count="2"' in page
    assert 'data-refusal="safety_hash_list" data-count="1"' in page
    assert 'data-host="a.&lt;x&gt;" data-failed="3"' in page  # host names escaped


def test_older_or_unfinished_download_says_so(tmp_path):
    assert "the download has not finished" in render(str(tmp_path / "none"))
    run = tmp_path / "old"
    _download(run, {"rows_in": 1, "kept": 1, "rejected": {}})
    assert "no failure counts" in render(str(run))
