"""Inline SVG charts: well-formed XML, bars where the data is, threshold lines where the policy cuts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from curate.report import svg

NS = "{http://www.w3.org/2000/svg}"


def test_histogram_counts_and_threshold():
    doc = ET.fromstring(svg.histogram({"all": [0.1, 0.2, 0.2, 0.9]}, "s", [("clip_score", 0.5)], bins=4))
    titles = [t.text for t in doc.iter(f"{NS}title")]
    assert "all: [0.1, 0.3) 3" in titles and "all: [0.7, 0.9) 1" in titles
    lines = [e for e in doc.iter(f"{NS}line") if e.get("class") == "threshold"]
    assert [float(e.get("data-value")) for e in lines] == [0.5]
    x = float(lines[0].get("x1"))
    assert svg.PAD_L < x < svg.W - svg.PAD_R


def test_histogram_integer_bins_and_empty():
    doc = ET.fromstring(svg.histogram({"g": [2, 2, 3]}, "sizes", integer=True))
    assert "g: [1.5, 2.5) 2" in [t.text for t in doc.iter(f"{NS}title")]
    assert "no values" in svg.histogram({"a": [None, float("nan")]}, "t")


def test_bars_escape_labels():
    out = svg.bars([("<en>", [0.5, 1.0])], ["before", "after"], "langs")
    doc = ET.fromstring(out)
    assert "&lt;en&gt;" in out and "after: 100.0%" in [t.text for t in doc.iter(f"{NS}title")]
