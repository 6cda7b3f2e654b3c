"""Assemble the report page: one HTML file with inline CSS, inline SVG charts and base64 thumbnails.

The funnel's numbers are also embedded as JSON (`<script type="application/json" id="curate-funnel">`)
and as `data-*` attributes, so a test (or a person's script) can check them against `curate audit --json`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from html import escape

from curate.io import fs
from curate.report import data, failures, svg

log = logging.getLogger(__name__)
KEPT_SAMPLES = 24
PER_REASON = 8
NA = '<p class="na">not available for this run{}</p>'

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#222;
padding:0 16px}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;font-size:.92em}td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}.reasons{text-align:left;color:#555}
.charts{display:flex;flex-wrap:wrap;gap:18px}.chart{flex:0 0 auto}.chart h3{font-size:.95em;margin:4px 0}
svg .ax{font-size:10px;fill:#444}svg .thr{font-size:10px;fill:#d62728}
.na{color:#888;font-style:italic}.ok{color:#2a7}.bad{color:#c22}
.grid{display:flex;flex-wrap:wrap;gap:8px}.cell{width:112px;font-size:10.5px;line-height:1.25;
overflow-wrap:anywhere}.cell img{width:96px;height:96px;object-fit:contain;background:#f4f4f4;display:block}
.noimg{width:96px;height:96px;background:#f4f4f4;color:#999;display:flex;align-items:center;
justify-content:center;text-align:center;font-size:10px}
.meta{color:#666;font-size:.9em}#js-errors:empty{display:none}#js-errors{color:#c22}
"""

# Records script errors and images that failed to decode into the page itself (#js-errors), so a
# headless browser's --dump-dom shows them; the page needs no script to display.
CHECK_JS = """
(function(){var out=document.getElementById('js-errors');
function note(m){out.appendChild(document.createTextNode(m+'\\n'));}
window.addEventListener('error',function(e){note('error: '+(e.message||e.type));},true);
var ce=console.error;console.error=function(){note('console.error: '+Array.prototype.join.call(arguments,' '));
return ce.apply(console,arguments);};
window.addEventListener('load',function(){var imgs=document.images,bad=0;
for(var i=0;i<imgs.length;i++){if(!imgs[i].complete||imgs[i].naturalWidth===0){bad++;}}
if(bad){note('broken images: '+bad);}document.body.setAttribute('data-images-checked',String(imgs.length));});
})();
"""


def write_report(run: str, out: str | None = None, engine=None) -> str:
    """Write the report for `run` to `out` (default RUN/report/index.html), its table work done on `engine`
    (default: this process, one part at a time); return its path."""
    start = time.monotonic()
    page = render(run, engine)
    out = out or fs.join(run, "report", "index.html")
    fs.write_bytes(out, page.encode("utf-8"))
    log.info("report: wrote %s (%.0f kB) in %.1fs", out, len(page) / 1024, time.monotonic() - start)
    return out


def _section(title: str, anchor: str, body: Callable[[], str]) -> str:
    try:
        inner = body()
    except Exception as exc:  # one broken part never costs the whole page
        log.warning("report: section %s failed: %s", anchor, exc)
        inner = NA.format(f" ({escape(type(exc).__name__)}: {escape(str(exc).splitlines()[0] if str(exc) else '')})")
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{inner}</section>'


def render(run: str, engine=None) -> str:
    d = data.ReportData(run, engine)
    funnel = data.funnel(run, d.engine)
    sections = [
        _section("Funnel", "funnel", lambda: _funnel(funnel)),
        _section("Download failures", "download-failures", lambda: failures.section(run)),
        _section("Score distributions and policy thresholds", "scores", lambda: _scores(d)),
        _section("Languages before and after selection", "languages", lambda: _languages(d)),
        _section("Selection weights", "weights", lambda: _weights(d)),
        _section("Duplicate groups", "duplicates", lambda: _duplicates(d)),
        _section("Repetition", "repetition", lambda: _repetition(d)),
        _section("Kept samples", "kept", lambda: _kept(d)),
        _section("Rejected samples by reason", "rejected", lambda: _rejected(d)),
    ]
    funnel_json = json.dumps(funnel, sort_keys=True).replace("</", "<\\/")
    status = ("" if funnel.get("ok") is None else
              '<span class="ok">accounting identity holds</span>' if funnel["ok"] else
              f'<span class="bad">accounting identity FAILS: {escape("; ".join(funnel["problems"]))}</span>')
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>curate report: {escape(run)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head><body>'
            f'<pre id="js-errors"></pre><script>{CHECK_JS}</script>'
            f'<h1>curate report</h1><p class="meta">run <code>{escape(run)}</code>'
            f' · {funnel["input_rows"]:,} input rows'
            f' · {_fmt(funnel.get("kept"))} kept · {status}</p>'
            f'<script type="application/json" id="curate-funnel">{funnel_json}</script>'
            + "".join(sections) + "</body></html>")


def _fmt(n: int | None) -> str:
    return "–" if n is None else f"{n:,}"


def _funnel(funnel: dict) -> str:
    if not funnel["stages"]:
        return NA.format(" (no stage has finished)")
    rows = ['<table id="funnel-table"><tr><th>stage</th><th>in</th><th>kept</th><th>rejected</th>'
            '<th>share of input kept</th><th class="reasons">reasons</th></tr>']
    total = funnel["input_rows"] or 1
    for stage, s in funnel["stages"].items():
        rej = sum(s["rejected"].values())
        reasons = ", ".join(f'<span data-reason="{escape(r)}" data-count="{n}">{escape(r)} {n:,}</span>'
                            for r, n in s["rejected"].items()) or "–"
        rows.append(f'<tr data-stage="{escape(stage)}" data-rows-in="{s["rows_in"]}" data-kept="{s["kept"]}" '
                    f'data-rejected="{rej}"><td>{escape(stage)}</td><td>{s["rows_in"]:,}</td><td>{s["kept"]:,}</td>'
                    f'<td>{rej:,}</td><td>{s["kept"] / total:.1%}</td><td class="reasons">{reasons}</td></tr>')
    rows.append("</table>")
    chart = svg.bars([(st, [s["kept"] / total]) for st, s in funnel["stages"].items()], ["kept, share of input"],
                     "rows kept after each stage")
    return "".join(rows) + f'<div class="chart">{chart}</div>'


def _chart(title: str, body: str) -> str:
    return f'<div class="chart"><h3>{escape(title)}</h3>{body}</div>'


def _scores(d: data.ReportData) -> str:
    found = d.scores()
    if found is None:
        return NA.format(" (no score stage output)")
    if not found:
        return NA.format(" (no score columns)")
    thresholds = data.thresholds(d.run)
    charts = []
    for col, series, edges in found:
        thr = thresholds.get(col, [])
        note = "" if thr else " (no threshold in the policy)"
        charts.append(_chart(f"{col}{note}", svg.histogram_counts(series, edges, col, thr)))
    return f'<div class="charts">{"".join(charts)}</div>'


def _languages(d: data.ReportData) -> str:
    langs = d.languages()
    if langs is None:
        return NA.format(" (no language column)")
    before, after = langs["before"], langs["after"] or {}
    nb, na = sum(before.values()) or 1, sum(after.values()) or 1
    top = sorted(set(before) | set(after), key=lambda k: (-before.get(k, 0), k))[:12]
    rows = [(lang, [before.get(lang, 0) / nb, after.get(lang, 0) / na]) for lang in top]
    label = "kept" if langs["after"] is not None else "kept (not available)"
    table = "".join(f'<tr data-language="{escape(lang)}"><td>{escape(lang)}</td><td>{before.get(lang, 0):,}</td>'
                    f'<td>{after.get(lang, 0):,}</td></tr>' for lang in top)
    return (_chart("share of rows per language (top 12)", svg.bars(rows, ["scored pool", label], "languages"))
            + f'<table><tr><th>language</th><th>scored</th><th>kept</th></tr>{table}</table>')


def _weights(d: data.ReportData) -> str:
    found = d.weights()
    if found is None:
        return NA.format(" (select/decisions has no weight column)")
    series, edges = found
    return _chart("weight of kept samples", svg.histogram_counts(series, edges, "weights"))


def _duplicates(d: data.ReportData) -> str:
    groups = d.duplicate_groups()
    if groups is None:
        return NA.format(" (no dedup decisions)")
    if not groups:
        return "<p>no duplicate groups</p>"
    n = sum(groups.values())
    rows = "".join(f'<tr data-group-size="{k}" data-groups="{v}"><td>{k}</td><td>{v:,}</td></tr>'
                   for k, v in groups.items())
    hist = svg.integer_histogram({"groups": groups}, "group sizes")
    return (f"<p>{n:,} groups of two or more rows (survivor plus duplicates)</p>"
            + _chart("rows per duplicate group", hist)
            + f"<table><tr><th>group size</th><th>groups</th></tr>{rows}</table>")


def _repetition(d: data.ReportData) -> str:
    rep = d.repetition()
    if rep is None:
        return NA.format(" (shard/manifest.parquet has no repetition column)")
    name, counts = rep
    return _chart(f"{name} per kept sample", svg.integer_histogram({name: counts}, name))


def _cell(uid: str, row: dict, thumbs: dict[str, str], note: str = "") -> str:
    caption = escape((row.get("caption") or "")[:120])
    img = (f'<img src="{thumbs[uid]}" alt="{caption}" loading="eager">' if uid in thumbs
           else f'<div class="noimg">no image{(" (" + escape(note) + ")") if note else ""}</div>')
    return f'<div class="cell" data-uid="{escape(uid)}">{img}{caption}</div>'


def _kept(d: data.ReportData) -> str:
    kept = d.kept()
    if kept is None:
        return NA.format(" (no selection yet)")
    n, first = kept
    rows, thumbs = d.examples(first[:KEPT_SAMPLES])
    chosen = {u: rows[u] for u, _ in first[:KEPT_SAMPLES] if u in rows}
    cells = "".join(_cell(u, row, thumbs) for u, row in chosen.items())
    return f"<p>the first {len(chosen)} of {n:,} kept samples by uid</p><div class=\"grid\">{cells}</div>"


def _rejected(d: data.ReportData) -> str:
    by_reason = d.rejected()
    if not by_reason:
        return "<p>no rejected samples</p>"
    rows, thumbs = d.examples([pair for _, first in by_reason.values() for pair in first[:PER_REASON]])
    parts = []
    for reason, (n, first) in by_reason.items():
        cells = "".join(_cell(u, rows[u], thumbs, reason) for u, _ in first[:PER_REASON] if u in rows)
        parts.append(f'<h3 data-reason="{escape(reason)}" data-count="{n}">{escape(reason)}: {n:,}'
                     f' rows</h3><div class="grid">{cells}</div>')
    return "".join(parts)
