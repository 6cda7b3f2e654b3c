"""The report's "Download failures" section: why fetches failed, per error class (DNS, connect, TLS, HTTP
status, timeout, redirect, host given up) and per host, from the download's `_stats.json` (`failures`,
counted on the engine by `curate.download.failures`), with the consent and safety refusals beside them."""

from __future__ import annotations

from html import escape

from curate.io.stagedir import StageDir

# statuses that are refusals by consent, lists or politeness rather than failures of the fetch itself
REFUSALS = ("denylisted", "robots_disallowed", "tdm_reserved", "opted_out", "safety_hash_list", "blocked_address")
NA = '<p class="na">not available for this run{}</p>'


def section(run: str) -> str:
    sd = StageDir(run, "download")
    if not sd.done():
        return NA.format(" (the download has not finished)")
    stats = sd.stats()
    failures = stats.get("failures")
    if failures is None:
        return NA.format(" (a download from an older curate: no failure counts)")
    by_class = failures.get("by_class") or {}
    rejected = stats.get("rejected") or {}
    parts = []
    if by_class:
        rows = "".join(f'<tr data-error-class="{escape(c)}" data-count="{n}"><td>{escape(c)}</td><td>{n:,}</td></tr>'
                       for c, n in sorted(by_class.items(), key=lambda item: (-item[1], item[0])))
        parts.append(f'<table id="failure-classes"><tr><th>error class</th><th>rows</th></tr>{rows}</table>')
    else:
        parts.append("<p>no fetch failed</p>")
    refused = {s: rejected[s] for s in REFUSALS if rejected.get(s)}
    if refused:
        rows = "".join(f'<tr data-refusal="{escape(s)}" data-count="{n}"><td>{escape(s)}</td><td>{n:,}</td></tr>'
                       for s, n in refused.items())
        parts.append(f'<table id="refusals"><tr><th>refused before storing</th><th>rows</th></tr>{rows}</table>')
    hosts = failures.get("top_hosts") or []
    if hosts:
        rows = "".join(f'<tr data-host="{escape(h["host"])}" data-failed="{h["failed"]}"><td>{escape(h["host"])}</td>'
                       f'<td>{h["rows"]:,}</td><td>{h["failed"]:,}</td></tr>' for h in hosts)
        parts.append(f'<table id="failing-hosts"><tr><th>host</th><th>rows</th><th>failed</th></tr>{rows}</table>'
                     f'<p class="meta">the {len(hosts)} most-failing of {failures.get("hosts_reported", len(hosts)):,}'
                     " hosts reported by the shards (counts are lower bounds outside each shard's top)</p>")
    return "".join(parts)
