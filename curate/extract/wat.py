"""A WAT metadata record (JSON) to a Page: the IMG links of its HTML metadata, with their alt and title.

Common Crawl's WAT generator (ia-web-commons, ExtractingParseObserver) writes one link per `<img src>` as
`{"path": "IMG@/src", "url": ..., "alt": ..., "title": ...}` under
`Envelope.Payload-Metadata.HTTP-Response-Metadata.HTML-Metadata.Links`, the page's `<base href>` as
`Head.Base`, and its meta tags as `Head.Metas` (`{"name": ..., "content": ...}`). It writes no width, height,
srcset or data-src; other `IMG@/...` paths (a future generator's) are read when `url_attributes` names them.
"""

from __future__ import annotations

import functools

import orjson

from curate.extract.page import Page, directives

MARKER = b'"HTML-Metadata"'  # records without it hold no page links: skipped without parsing their JSON


@functools.cache
def _paths(url_attributes: frozenset[str]) -> frozenset[str]:
    return frozenset(f"IMG@/{a}" for a in url_attributes)


class BadRecord(ValueError):
    """The record's JSON is malformed or not shaped like a WAT record."""


def page(data: bytes, url_attributes: frozenset[str], robots_names: frozenset[str]) -> Page | None:
    """The page of a WAT record, or None for records that describe no HTML response (requests, metadata)."""
    if MARKER not in data:
        return None
    try:
        doc = orjson.loads(data)
        envelope = doc["Envelope"]
        header = envelope.get("WARC-Header-Metadata") or {}
        if header.get("WARC-Type") != "response":
            return None
        http = envelope["Payload-Metadata"]["HTTP-Response-Metadata"]
        html = http["HTML-Metadata"]
        head = html.get("Head") or {}
        robots = [m.get("content") for m in head.get("Metas") or () if isinstance(m, dict)
                  and (m.get("name") or "").lower() in robots_names]
        robots += [v for k, v in (http.get("Headers") or {}).items() if k.lower() == "x-robots-tag"]
        paths = _paths(url_attributes)
        images = [(((link["path"][5:], link.get("url")),), link.get("alt"), link.get("title"), None, None)
                  for link in html.get("Links") or () if link.get("path") in paths]
        base = head.get("Base")
        return Page(header.get("WARC-Target-URI"), images, base if isinstance(base, str) else None,
                    directives(v for v in robots if isinstance(v, str)), header.get("WARC-Record-ID"))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise BadRecord(str(exc)) from exc

