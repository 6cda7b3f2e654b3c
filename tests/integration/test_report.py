"""The demo writes the report (the session's demo run, tests/integration/conftest.py); it renders in headless
Chromium with no console errors, a screenshot is taken, and the numbers on the page equal `curate audit --json`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image, ImageStat

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.ray]
CURATE = Path(sys.executable).parent / "curate"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class _Funnel(HTMLParser):
    """The funnel table's data-* attributes, the reason counts, and the <img> count."""

    def __init__(self) -> None:
        super().__init__()
        self.stages: dict[str, dict] = {}
        self.current: str | None = None
        self.images = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images += 1
        if tag == "tr" and "data-stage" in a:
            self.current = a["data-stage"]
            self.stages[self.current] = {"rows_in": int(a["data-rows-in"]), "kept": int(a["data-kept"]),
                                         "rejected": {}}
        elif tag == "span" and "data-reason" in a and self.current:
            self.stages[self.current]["rejected"][a["data-reason"]] = int(a["data-count"])

    def handle_endtag(self, tag):
        if tag == "table":
            self.current = None


def test_numbers_on_the_page_equal_audit(demo_run):
    audit = json.loads(subprocess.run([str(CURATE), "audit", str(demo_run), "--json"], capture_output=True,
                                      text=True, check=True, timeout=300).stdout)
    page = (demo_run / "report" / "index.html").read_text(encoding="utf-8")
    embedded = json.loads(re.search(r'id="curate-funnel">(.*?)</script>', page, re.S).group(1))
    assert embedded.pop("source") == "audit"
    assert embedded == audit
    parsed = _Funnel()
    parsed.feed(page)
    assert parsed.stages == audit["stages"]
    assert f"{audit['input_rows']:,} input rows" in page and f"{audit['kept']:,} kept" in page
    for section in ("scores", "languages", "duplicates", "kept", "rejected"):
        block = re.search(rf'<section id="{section}">(.*?)</section>', page, re.S).group(1)
        assert "not available for this run" not in block, section
    assert 'class="threshold" data-value="0.7"' in page  # the demo's CLIP threshold on its histogram
    for reason, count in audit["rejected"].items():
        assert f'data-reason="{reason}" data-count="{count}"' in page


def test_renders_in_headless_chromium(demo_run, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium binary (Debian: apt-get install -y chromium)")
    url = (demo_run / "report" / "index.html").as_uri()
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--hide-scrollbars", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [line for line in dom.stderr.splitlines() if ":CONSOLE(" in line]
    assert not console, console[:5]
    errors = re.search(r'<pre id="js-errors">(.*?)</pre>', dom.stdout, re.S)
    assert errors is not None and errors.group(1).strip() == "", errors and errors.group(1)
    parsed = _Funnel()
    parsed.feed(dom.stdout)
    checked = re.search(r'data-images-checked="(\d+)"', dom.stdout)
    assert checked and int(checked.group(1)) == parsed.images > 0  # the load check ran over every thumbnail

    shot = tmp_path / "report.png"
    out = subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,2400", url], capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    with Image.open(shot) as img:
        assert img.size == (1200, 2400)
        assert max(ImageStat.Stat(img.convert("L")).stddev) > 10  # something was drawn, not a blank page
    keep = os.environ.get("CURATE_REPORT_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
