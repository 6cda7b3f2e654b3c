"""Why downloads fail: each failed fetch's error class (DNS, connect, TLS, HTTP status, timeout, ...) and the
hosts that fail most, counted from the samples parts on the engine (one task per group of parts) and merged
on the driver into the download's `_stats.json` (`failures`), which `curate report` shows.

The class follows from a row's status and error text (`error_class`), so it is the same on a resume and after
`--retry-failed`. Bounded: each part reports its TOP_HOSTS_PER_PART most-failing hosts, and the stats keep the
TOP_HOSTS most-failing of what the parts reported (a host that is never among a part's top is undercounted:
the figures are lower bounds for hosts outside the tops).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pyarrow.compute as pc

from curate.io import dataset

TOP_HOSTS_PER_PART = 20
TOP_HOSTS = 25
# statuses that are failures of the fetch itself (consent refusals and content verdicts are not)
FETCH_FAILURES = ("http_error", "timeout", "network_error", "redirect_error", "download_error", "host_gave_up")
_DNS = ("name or service not known", "temporary failure in name resolution", "nodename nor servname",
        "no address associated", "name resolution", "getaddrinfo")
_TLS = ("ssl", "certificate", "tls")


def error_class(status: str, error: str | None) -> str | None:
    """dns, connect, tls, http_NNN, timeout, redirect, host_gave_up or other, for a fetch failure; else None."""
    if status not in FETCH_FAILURES:
        return None
    text = (error or "").lower()
    if status == "http_error":
        code = re.search(r"http error (\d{3})", text)
        return f"http_{code.group(1)}" if code else "http"
    if status == "timeout":
        return "timeout"
    if status in ("redirect_error", "host_gave_up"):
        return status.replace("_error", "")
    if any(s in text for s in _DNS):
        return "dns"
    if any(s in text for s in _TLS):
        return "tls"
    return "connect" if status == "network_error" else "other"


def host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower() or "(no host)"
    except ValueError:
        return "(no host)"


def count_part(samples_part: str) -> dict:
    """Rows per status, failures per class, and the part's most-failing hosts (rows and failures each)."""
    table = dataset.read_part(samples_part, ["url", "status", "error"])
    status = table.column("status")
    counts = {item["values"]: item["counts"] for item in pc.value_counts(status).to_pylist()}
    classes: dict[str, int] = {}
    hosts: dict[str, list[int]] = {}
    for url, st, err in zip(table.column("url").to_pylist(), status.to_pylist(), table.column("error").to_pylist(),
                            strict=True):
        host = hosts.setdefault(host_of(url), [0, 0])
        host[0] += 1
        cls = error_class(st, err)
        if cls is not None:
            classes[cls] = classes.get(cls, 0) + 1
            host[1] += 1
    failing = sorted((h for h in hosts.items() if h[1][1]), key=lambda h: (-h[1][1], h[0]))[:TOP_HOSTS_PER_PART]
    return {"rows": len(status), "status": counts, "errors": classes,
            "hosts": {h: {"rows": r, "failed": f} for h, (r, f) in failing}}


def summary(counted: dict) -> dict:
    """The `failures` entry of the stats: classes and the TOP_HOSTS most-failing hosts, sorted."""
    hosts = sorted(counted.get("hosts", {}).items(), key=lambda h: (-h[1]["failed"], h[0]))
    return {"by_class": dict(sorted(counted.get("errors", {}).items())),
            "top_hosts": [{"host": h, "rows": v["rows"], "failed": v["failed"]} for h, v in hosts[:TOP_HOSTS]],
            "hosts_reported": len(hosts)}
