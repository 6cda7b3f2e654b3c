"""URL canonicalisation: two URLs that fetch the same resource compare equal after it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow as pa

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
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith(TRACKING_PREFIXES) and k.lower() not in TRACKING_PARAMS]
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))


class CanonicalUrl(Stage[None]):
    """Adds `url_canonical`."""

    name = "canonical_url"
    reads = ("url",)
    adds = ("url_canonical",)

    def process_batch(self, table: pa.Table) -> pa.Table:
        urls = table.column("url").to_pylist()
        return table.append_column("url_canonical", pa.array([canonical_url(u) for u in urls], pa.string()))
