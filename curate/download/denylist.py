"""Denylists: input rows dropped before any request, each with the status `denylisted`.

A denylist is a text file (one entry a line, `#` comments), a CSV or a parquet file, local or on an object
store (read as `curate dedup`'s hash lists are, curate.dedup.refs.read_list). Columns name the kind of their
entries: `url`, `url_canonical` (or `canonical_url`), `domain` (or `host`), `uid`. An entry without a named
column is a uid when it is 32 hex digits, a URL when it has a scheme (`://`), else a domain.

Matching: a URL entry (plain or canonical) matches every row whose canonical URL (curate.dedup.url) equals the
entry's, so tracking parameters, fragments and case in the scheme and host do not let a listed URL through;
a domain entry matches that host and its subdomains (`example.com` lists `img.example.com`); a uid entry
matches the row's uid. The lists are read once per worker process; their size, not the pool's, bounds memory.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from curate.dedup.refs import read_list
from curate.dedup.url import canonical_url
from curate.errors import CurateError

log = logging.getLogger(__name__)

COLUMNS = ("url", "url_canonical", "canonical_url", "domain", "host", "uid")
_UID = re.compile(r"[0-9a-f]{32}")
_DOMAIN = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")


@dataclass(frozen=True)
class Denylist:
    urls: frozenset[str] = frozenset()  # canonical URLs
    domains: frozenset[str] = frozenset()
    uids: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.urls) + len(self.domains) + len(self.uids)

    def reason(self, uid: str, url: str) -> str | None:
        """Why the row is denied, or None."""
        if uid in self.uids:
            return "its uid is on a denylist"
        if not url:
            return None
        if self.urls and canonical_url(url) in self.urls:
            return "its URL is on a denylist"
        if self.domains:
            try:
                host = (urlsplit(url.strip()).hostname or "").rstrip(".")
            except ValueError:
                return None
            labels = host.split(".")
            for i in range(len(labels)):
                if ".".join(labels[i:]) in self.domains:
                    return f"its domain {'.'.join(labels[i:])} is on a denylist"
        return None


def _entry(column: str | None, raw: str) -> tuple[str, str] | None:
    entry = raw.strip()
    if not entry:
        return None
    kind = {"canonical_url": "url", "url_canonical": "url", "host": "domain"}.get(column or "", column)
    if kind is None:
        kind = "uid" if _UID.fullmatch(entry.lower()) else "url" if "://" in entry else "domain"
    if kind == "url":
        return "url", canonical_url(entry)
    if kind == "uid":
        return ("uid", entry.lower()) if _UID.fullmatch(entry.lower()) else None
    domain = entry.lower().removeprefix("*.").strip(".")
    return ("domain", domain) if _DOMAIN.fullmatch(domain) else None


def load_denylists(paths: tuple[str, ...]) -> Denylist:
    """Every entry of every list; a malformed entry is a one-line CurateError naming it."""
    kinds: dict[str, set[str]] = {"url": set(), "domain": set(), "uid": set()}
    for path in paths:
        for column, n, raw in read_list(path, COLUMNS, "denylist"):
            if not raw.strip():
                continue
            got = _entry(column, raw)
            if got is None:
                raise CurateError(f"denylist {path}: entry {n} ({raw.strip()[:70]!r}) is not a URL, domain or uid")
            kinds[got[0]].add(got[1])
    deny = Denylist(frozenset(kinds["url"]), frozenset(kinds["domain"]), frozenset(kinds["uid"]))
    log.info("denylists: %d URLs, %d domains, %d uids", len(deny.urls), len(deny.domains), len(deny.uids))
    return deny


_loaded: dict[tuple[str, ...], Denylist] = {}
_lock = threading.Lock()


def for_run(paths: tuple[str, ...]) -> Denylist | None:
    """The denylists of a run, read once per worker process; None without lists."""
    if not paths:
        return None
    with _lock:
        if paths not in _loaded:
            _loaded[paths] = load_denylists(paths)
        return _loaded[paths]
