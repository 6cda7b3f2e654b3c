"""A WAT metadata record (JSON) to a Page: the IMG links of its HTML metadata, with their alt and title.

Common Crawl's WAT generator (ia-web-commons, ExtractingParseObserver) writes one link per `<img src>` as
`{"path": "IMG@/src", "url": ..., "alt": ..., "title": ...}` under
`Envelope.Payload-Metadata.HTTP-Response-Metadata.HTML-Metadata.Links`, the page's `<base href>` as
`Head.Base`, and its meta tags as `Head.Metas` (`{"name": ..., "content": ...}`). It writes no width, height,
srcset or data-src; other `IMG@/...` paths (a future generator's) are read when `url_attributes` names them.

Two readers, one JSON library (msgspec), the same Page for every record. The fast one decodes the record
against the shape above: the fields it names become Python objects and the rest (anchor texts, scripts, the
crawler's headers: most of a page's bytes) is validated and skipped without making objects, which makes it
about half the cost of a full parse. A record it cannot take as that shape (a field of another type, nesting
past the recursion limit, bytes that are not UTF-8 in a field it reads, malformed JSON) goes to the reference
reader, which parses the whole record and decides whether it is a page, not a page, or a bad record.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

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
    found = _fast(data, url_attributes, robots_names)
    return _reference(data, url_attributes, robots_names) if found is _UNSURE else found


# --- the fast reader: the WAT shape as msgspec types; a field absent is None, as `dict.get` gives ----------
class _Link(msgspec.Struct, gc=False):
    path: str | None = None
    url: str | None = None
    alt: str | None = None
    title: str | None = None


class _Head(msgspec.Struct, gc=False):
    Base: Any = None  # noqa: N815 (WAT's names)
    Metas: Any = None  # noqa: N815


class _Html(msgspec.Struct, gc=False):
    Head: _Head | None = None  # noqa: N815
    Links: list[_Link] | None = None  # noqa: N815


class _Http(msgspec.Struct, gc=False):
    html: _Html = msgspec.field(name="HTML-Metadata")
    Headers: dict[str, Any] | None = None  # noqa: N815


class _Payload(msgspec.Struct, gc=False):
    http: _Http = msgspec.field(name="HTTP-Response-Metadata")


class _Header(msgspec.Struct, gc=False):
    type: str | None = msgspec.field(default=None, name="WARC-Type")
    url: str | None = msgspec.field(default=None, name="WARC-Target-URI")
    record_id: str | None = msgspec.field(default=None, name="WARC-Record-ID")


class _Envelope(msgspec.Struct, gc=False):
    payload: _Payload = msgspec.field(name="Payload-Metadata")
    header: _Header | None = msgspec.field(default=None, name="WARC-Header-Metadata")


class _Record(msgspec.Struct, gc=False):
    Envelope: _Envelope  # noqa: N815


_DECODER = msgspec.json.Decoder(_Record)
_UNSURE = object()  # the fast reader's answer when the reference reader must decide


def _fast(data: bytes, url_attributes: frozenset[str], robots_names: frozenset[str]) -> Page | None | object:
    try:
        envelope = _DECODER.decode(data).Envelope  # raises on invalid UTF-8 in what it decodes, not in what it skips
    except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
        return _UNSURE
    header = envelope.header
    if header is None or header.type != "response":
        return None
    http = envelope.payload.http
    html = http.html
    head = html.Head
    try:
        robots = _robots(head.Metas if head is not None else None, http.Headers, robots_names)
    except (AttributeError, TypeError):
        return _UNSURE
    paths = _paths(url_attributes)
    images = [(((link.path[5:], link.url),), link.alt, link.title, None, None)
              for link in html.Links or () if link.path in paths]
    return Page(header.url, images, _text(head.Base) if head is not None else None, robots, header.record_id)


def _text(value: Any) -> str | None:
    """A field the rows read as text: a number, list or object there is taken as absent (the image is then
    rejected with the reason its absence gives: invalid_url, no_caption), never passed on."""
    return value if isinstance(value, str) else None


def _robots(metas, headers, robots_names: frozenset[str]) -> frozenset[str]:
    """The directives of the robots meta tags and X-Robots-Tag headers (both readers)."""
    values = [m.get("content") for m in metas or () if isinstance(m, dict)
              and (m.get("name") or "").lower() in robots_names]
    values += [v for k, v in (headers or {}).items() if len(k) == 12 and k.lower() == "x-robots-tag"]
    return directives(v for v in values if isinstance(v, str))


# --- the reference reader: the whole record parsed -------------------------------------------------------
# Bytes that are not UTF-8 read as U+FFFD (as browsers and Python's "replace" read them), so such bytes in an
# anchor's text do not make a page's images bad; the fast reader skips them and finds the same images.
def _reference(data: bytes, url_attributes: frozenset[str], robots_names: frozenset[str]) -> Page | None:
    try:
        doc = msgspec.json.decode(data.decode("utf-8", "replace"))
        envelope = doc["Envelope"]
        header = envelope.get("WARC-Header-Metadata") or {}
        if header.get("WARC-Type") != "response":
            return None
        http = envelope["Payload-Metadata"]["HTTP-Response-Metadata"]
        html = http["HTML-Metadata"]
        head = html.get("Head") or {}
        robots = _robots(head.get("Metas"), http.get("Headers"), robots_names)
        paths = _paths(url_attributes)
        images = [(((link["path"][5:], _text(link.get("url"))),), _text(link.get("alt")), _text(link.get("title")),
                   None, None) for link in html.get("Links") or () if link.get("path") in paths]
        return Page(_text(header.get("WARC-Target-URI")), images, _text(head.get("Base")), robots,
                    _text(header.get("WARC-Record-ID")))
    except (msgspec.DecodeError, RecursionError, KeyError, TypeError, AttributeError) as exc:
        raise BadRecord(str(exc) or type(exc).__name__) from exc
