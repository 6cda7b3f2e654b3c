"""A WARC HTML response to a Page: every <img> with its URL attributes, alt, title, width and height.

Bytes become text as a browser would decide: a byte-order mark, else the HTTP header's charset, else a
`<meta charset>` (or `http-equiv` content type) in the first 1024 bytes, else UTF-8 when the bytes are valid
UTF-8, else windows-1252 (the HTML standard's fallback). Undecodable bytes become U+FFFD. The text is parsed
by selectolax (lexbor, an HTML5 parser: broken markup is repaired the way browsers repair it).
"""

from __future__ import annotations

import codecs
import re
import zlib

from selectolax.lexbor import LexborHTMLParser

from curate.extract.page import ImageRef, Page, dimension, directives

_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:\-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# labels the HTML standard maps to another encoding than Python's codec of that name
_WHATWG = {"iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
           "l1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252", "iso-8859-9": "cp1254", "tis-620": "cp874",
           "x-sjis": "shift_jis", "gb2312": "gbk", "utf-16": "utf-8", "utf-16le": "utf-8", "utf-16be": "utf-8"}


def codec(label: str | None) -> str | None:
    """The Python codec for a charset label, or None when there is none (or it is not a text encoding)."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = _WHATWG.get(name, name)
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    return info.name if getattr(info, "_is_text_encoding", True) else None


def decode(body: bytes, http_charset: str | None = None) -> tuple[str, bool]:
    """(text, fell_back): fell_back is True when nothing declared an encoding and the bytes were not UTF-8."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return body.decode(name, "replace"), False
    meta = _META_CHARSET.search(body, 0, 1024)
    for label in (http_charset, meta.group(1).decode("ascii") if meta else None):
        name = codec(label)
        if name is not None:
            return body.decode(name, "replace"), False
    try:
        return body.decode("utf-8"), False
    except UnicodeDecodeError:
        return body.decode("cp1252", "replace"), True


def content_decoded(body: bytes, encoding: str | None, limit: int) -> tuple[bytes, bool]:
    """(body, cut): a gzip- or deflate-encoded body decoded (at most `limit` bytes kept, cut says whether more
    followed); a body that is not what its Content-Encoding says, or not encoded, as it is."""
    if (encoding or "").strip().lower() not in ("gzip", "x-gzip", "deflate"):
        return body, False
    for wbits in (47, -15):  # gzip or zlib (auto-detected), then raw deflate
        try:
            inflate = zlib.decompressobj(wbits)
            out = inflate.decompress(body, limit + 1)
        except zlib.error:
            continue
        return out[:limit], len(out) > limit
    return body, False


def page(text: str, url: str | None, url_attributes: tuple[str, ...], robots_names: frozenset[str],
         header_robots: tuple[str, ...] = (), record_id: str | None = None) -> Page:
    tree = LexborHTMLParser(text)
    base = tree.css_first("base[href]")
    robots = [m.attributes.get("content") for m in tree.css("meta[name]")
              if (m.attributes.get("name") or "").lower() in robots_names]
    images = []
    for node in tree.css("img"):
        a = node.attributes
        images.append(ImageRef(tuple((k, a[k]) for k in url_attributes if a.get(k)), a.get("alt"), a.get("title"),
                               dimension(a.get("width")), dimension(a.get("height"))))
    return Page(url, images, base.attributes.get("href") if base is not None else None,
                directives([*robots, *header_robots]), record_id)
