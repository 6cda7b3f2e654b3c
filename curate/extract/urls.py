"""Image URLs as a page gives them, made absolute and checked: the rules of what `curate download` may fetch.

`resolve(raw, base)` returns `(url, None)` or `(None, reason)`:
- relative URLs are resolved against the page's base (its `<base href>` resolved against the page URL, or
  the page URL); protocol-relative ones (`//cdn/x.jpg`) take the base's scheme. A relative URL on a page
  with no http(s) URL to resolve against is `relative_unresolvable`.
- schemes other than http and https (`data:`, `javascript:`, `blob:`, ...) are `bad_scheme`: the download
  guard refuses them (curate/download/guard.py).
- a host that is a literal private, loopback, link-local, multicast, reserved or unspecified address is
  `blocked_address`, by the guard's own AddressPolicy; host names are resolved, and checked, only when the
  download connects.
- empty, malformed (no host, a bad port, spaces in the host) or over-long URLs are `invalid_url`.
Kept URLs lose their `#fragment` (never sent to a server), spaces and non-ASCII characters are
percent-encoded as UTF-8 and international host names IDNA-encoded, as a browser does before fetching.

The common cases (an absolute ASCII URL, a root-relative or plain relative path) take fast paths;
anything else goes through urllib.parse.urljoin.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import NamedTuple
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from curate.download.guard import AddressPolicy

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_WS = " \t\n\r\f\v\x00"  # leading/trailing spaces and C0 controls are stripped (WHATWG URL parsing)
_DROP = str.maketrans("", "", "\t\n\r")  # tabs and newlines anywhere in a URL are removed (WHATWG)
_HOST = re.compile(r"[a-z0-9_](?:[a-z0-9_\-.]*[a-z0-9_\-])?\.?", re.IGNORECASE)
_SAFE = "/:?=&;%@!$'()*+,~[]"  # kept as they are when percent-encoding a URL's path and query
_GUARD = AddressPolicy()


class Base(NamedTuple):
    """What relative URLs of one page resolve against (a NamedTuple: one is made per page, and a frozen
    dataclass costs several times as much to construct)."""

    url: str  # the base URL (http or https)
    origin: str  # scheme://netloc
    dir: str  # the base URL up to the last "/" of its path
    scheme: str


def page_base(page_url: str | None, base_href: str | None = None) -> Base | None:
    """The Base of a page: `<base href>` (resolved against the page URL) when it is an http(s) URL, else
    the page URL; None when neither is an absolute http(s) URL."""
    for candidate in (_absolute(page_url, base_href), page_url):
        base = _as_base(candidate)
        if base is not None:
            return base
    return None


def _absolute(page_url: str | None, href: str | None) -> str | None:
    if not href or not href.strip(_WS):
        return None
    try:
        return urljoin(page_url or "", href.strip(_WS).translate(_DROP))
    except ValueError:
        return None


# an http(s) URL whose scheme and host need no parsing: scheme, ://host, path, ?query (no port, no userinfo)
_PLAIN = re.compile(r"(?i:(https?))(://[A-Za-z0-9_.\-]+)(/[!$-;=@-\[\]-~]*)?(\?[^#]*)?(?:#.*)?")


def _as_base(url: str | None) -> Base | None:
    if not url:
        return None
    return _plain_base(url) or _parsed_base(url)


def _plain_base(url: str) -> Base | None:
    """_parsed_base's result without urllib for the URLs _PLAIN matches (most page URLs), else None."""
    found = _PLAIN.fullmatch(url)
    if found is None or not url.isascii():
        return None
    scheme = found.group(1).lower()
    origin, path, query = scheme + found.group(2), found.group(3) or "/", found.group(4) or ""
    return Base(url=origin + path + (query if len(query) > 1 else ""), origin=origin,
                dir=origin + path[:path.rfind("/") + 1], scheme=scheme)


def _parsed_base(url: str) -> Base | None:
    try:
        parts = urlsplit(url.strip(_WS))
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        return None
    origin = f"{scheme}://{parts.netloc}"
    path = parts.path or "/"
    return Base(url=urlunsplit((scheme, parts.netloc, path, parts.query, "")), origin=origin,
                dir=origin + path[:path.rfind("/") + 1], scheme=scheme)


def resolve(raw: str | None, base: Base | None, max_chars: int = 2048) -> tuple[str | None, str | None]:
    """(absolute URL, None) for a URL download may fetch, or (None, reason)."""
    if raw is None:
        return None, "invalid_url"
    s = raw.strip(_WS)
    if "\t" in s or "\n" in s or "\r" in s:
        s = s.translate(_DROP)
    if not s:
        return None, "invalid_url"
    head = s[:8].lower()
    if head.startswith("http://") or head == "https://":
        return check(s, max_chars)
    if s.startswith(("//", "\\\\")):
        return (None, "relative_unresolvable") if base is None else check(f"{base.scheme}:{s}", max_chars)
    if _SCHEME.match(s):
        scheme = s[:s.index(":")].lower()
        if scheme not in ("http", "https"):
            return None, "bad_scheme"
    if base is None:
        return None, "relative_unresolvable"
    return check(_join(base, s), max_chars)


def _join(base: Base, s: str) -> str:
    if "./" in s or s in (".", "..") or s.startswith(("?", "#", "\\")) or ":" in s.split("/", 1)[0]:
        try:
            return urljoin(base.url, s)
        except ValueError:
            return ""
    return base.origin + s if s.startswith("/") else base.dir + s


def check(url: str, max_chars: int = 2048) -> tuple[str | None, str | None]:
    """An absolute http(s) URL as download will fetch it, or (None, invalid_url / blocked_address)."""
    cut = url.find("#")
    if cut >= 0:
        url = url[:cut]
    if not url.isascii() or " " in url or '"' in url or "<" in url or ">" in url or "\\" in url:
        url = _encode(url)
        if url is None:
            return None, "invalid_url"
    if len(url) > max_chars:
        return None, "invalid_url"
    start = url.find("//") + 2
    if start < 2:
        return None, "invalid_url"
    end = len(url)
    for sep in "/?":
        i = url.find(sep, start)
        if 0 <= i < end:
            end = i
    netloc = url[start:end]
    host_port = netloc[netloc.rfind("@") + 1:]
    if host_port.startswith("["):  # an IPv6 literal
        host, _, rest = host_port[1:].partition("]")
        if rest and not (rest.startswith(":") and _port_ok(rest[1:])):
            return None, "invalid_url"
        return _literal(url, host)
    host, _, port = host_port.partition(":")
    if not host or not _port_ok(port) or not _HOST.fullmatch(host):
        return None, "invalid_url"
    if host[-1].isdigit() or host[:2].lower() == "0x":
        try:  # what getaddrinfo would make of it: 127.1, 0x7f.1 and 2130706433 are loopback too
            return _literal(url, socket.inet_ntoa(socket.inet_aton(host)))
        except OSError:
            pass
    return url, None


def _port_ok(port: str) -> bool:
    return not port or (port.isdigit() and len(port) <= 5 and int(port) <= 65535)


def _literal(url: str, host: str) -> tuple[str | None, str | None]:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None, "invalid_url"
    try:
        _GUARD.check(host, 0, str(ip))
    except OSError:
        return None, "blocked_address"
    return url, None


def _encode(url: str) -> str | None:
    """Spaces, quotes and non-ASCII percent-encoded (UTF-8), the host IDNA-encoded; None when impossible."""
    try:
        parts = urlsplit(url.replace("\\", "/"))
        host = parts.hostname or ""
        if not host.isascii():
            host = host.encode("idna").decode("ascii")
        netloc = parts.netloc
        if parts.hostname and not parts.hostname.isascii():
            userinfo, _, hostport = netloc.rpartition("@")
            port = hostport.rpartition(":")[2] if parts.port else ""
            netloc = (userinfo + "@" if userinfo else "") + host + (":" + port if port else "")
        return urlunsplit((parts.scheme, netloc, quote(parts.path, safe=_SAFE), quote(parts.query, safe=_SAFE), ""))
    except (ValueError, UnicodeError):
        return None


def srcset_best(value: str | None) -> str | None:
    """The URL of the largest candidate of a `srcset` (by its `w` descriptor, else `x`; the first on a tie),
    split as the HTML standard does: a candidate's URL runs to whitespace, a trailing comma ends it."""
    if not value:
        return None
    best, best_size, pos, n = None, -1.0, 0, len(value)
    while pos < n:
        while pos < n and (value[pos].isspace() or value[pos] == ","):
            pos += 1
        start = pos
        while pos < n and not value[pos].isspace():
            pos += 1
        url = value[start:pos]
        if not url:
            break
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            end = value.find(",", pos)
            end = n if end < 0 else end
            descriptor, pos = value[pos:end].strip(), end + 1
        size = _descriptor_size(descriptor)
        if url and size > best_size:
            best, best_size = url, size
    return best


def _descriptor_size(descriptor: str) -> float:
    """1x when absent; `800w` counts in widths (larger than any density), `2x` in densities."""
    if not descriptor:
        return 1.0
    token = descriptor.split()[0].lower()
    try:
        if token.endswith("w"):
            return 1e6 + float(token[:-1])
        if token.endswith("x"):
            return float(token[:-1])
    except ValueError:
        pass
    return 0.0
