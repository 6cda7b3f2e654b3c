"""URL canonicalisation: two URLs that fetch the same resource compare equal after it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc

from curate.stage import Stage

DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that track the visitor and never change the resource (common analytics tags).
TRACKING_PREFIXES = ("utm_",)
TRACKING_PARAMS = frozenset({"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "_ga", "yclid"})


def canonical_url(url: str) -> str:
    """Lowercase scheme and host, drop the default port, fragment and tracking parameters.
    Path and the remaining query stay as given (they are case-sensitive on most servers)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if parts.username or parts.password:
        netloc = f"{parts.username or ''}{':' + parts.password if parts.password else ''}@{netloc}"
    query = ""
    if parts.query:
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                           if not k.lower().startswith(TRACKING_PREFIXES) and k.lower() not in TRACKING_PARAMS])
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


# The common shape, whose canonical form needs no parsing: http(s), a host of letters, digits, dots and
# dashes, no port, user, query, fragment or whitespace (which urlsplit would drop).
_PLAIN = r"^(?P<scheme>[Hh][Tt][Tt][Pp][Ss]?)://(?P<host>[A-Za-z0-9.-]+)(?P<path>/[^?#\s]*)?$"


def canonical_urls(urls: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`canonical_url` of every element, vectorised: URLs of the plain shape are lowercased and joined by
    pyarrow; the rest go through `canonical_url` (tests/unit/dedup/test_url.py checks both agree)."""
    urls = urls.combine_chunks() if isinstance(urls, pa.ChunkedArray) else urls
    plain = pc.fill_null(pc.match_substring_regex(urls, _PLAIN), False)
    parts = pc.extract_regex(pc.if_else(plain, urls, pa.scalar("http://x", pa.string())), _PLAIN)
    path = pc.fill_null(parts.field("path"), "")
    fast = pc.binary_join_element_wise(pc.utf8_lower(parts.field("scheme")), "://", pc.utf8_lower(parts.field("host")),
                                       pc.if_else(pc.equal(path, ""), pa.scalar("/"), path), "")
    out = fast.to_pylist()
    mask = plain.to_numpy(zero_copy_only=False)
    for i in (~mask).nonzero()[0]:
        u = urls[int(i)].as_py()
        out[i] = None if u is None else canonical_url(u)
    return pa.array(out, pa.string())


class CanonicalUrl(Stage[None]):
    """Adds `url_canonical`."""

    name = "canonical_url"
    reads = ("url",)
    adds = ("url_canonical",)

    def process_batch(self, table: pa.Table) -> pa.Table:
        return table.append_column("url_canonical", canonical_urls(table.column("url")))
