"""Refuse URLs we must not fetch: non-HTTP schemes, and hosts that are or resolve to private,
loopback, link-local (cloud metadata), multicast, reserved or unspecified addresses.

The check runs where the socket is opened, on the address actually connected to, so it covers every
redirect hop and DNS rebinding. An explicit allow-list opens specific hosts, host:port pairs or
CIDRs (the demo and tests allow their loopback server). The opener is called directly by curate's fetch
(curate.download.fetch), never installed as urllib's global opener: a `urlopen(..., context=...)` (as
img2dataset's development branch calls it) builds a fresh opener that would bypass a global one.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from curate.download import limits
from curate.errors import CurateError

BLOCKED_PREFIX = "curate-blocked:"  # the downloader's error message starts with this for a refusal


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [::1]:8080
        host, _, rest = entry[1:].partition("]")
        return host.lower(), int(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host.lower(), int(port)
    return entry.lower(), None


@dataclass(frozen=True)
class AddressPolicy:
    """`allow`: hosts (`localhost`), host:port (`127.0.0.1:8080`) or CIDRs (`127.0.0.0/8`)."""

    allow: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for entry in self.allow:
            try:
                if "/" in entry:
                    ipaddress.ip_network(entry, strict=False)
                else:
                    _split_host_port(entry)
            except ValueError as exc:
                raise CurateError(f"--allow-address {entry!r}: not a host, host:port or CIDR") from exc

    def _allowed(self, host: str, port: int, ip: ipaddress._BaseAddress) -> bool:
        for entry in self.allow:
            if "/" in entry:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
                continue
            a_host, a_port = _split_host_port(entry)
            if a_host in (host.lower(), str(ip)) and a_port in (None, port):
                return True
        return False

    def check(self, host: str, port: int, ip_text: str) -> None:
        """Raise OSError with the blocked prefix unless `ip_text` (what `host` resolved to) may be used."""
        ip = ipaddress.ip_address(ip_text.split("%")[0])
        if getattr(ip, "ipv4_mapped", None):
            ip = ip.ipv4_mapped
        bad = [name for name in ("private", "loopback", "link_local", "multicast", "reserved", "unspecified")
               if getattr(ip, f"is_{name}")]
        if bad and not self._allowed(host, port, ip):
            raise OSError(f"{BLOCKED_PREFIX} {host} resolves to {ip} ({', '.join(bad)})")

    def connect(self, address: tuple[str, int], timeout: object = socket._GLOBAL_DEFAULT_TIMEOUT,
                source_address: tuple[str, int] | None = None, **_: object) -> socket.socket:
        """socket.create_connection, but only to addresses the policy allows (checked, then used)."""
        host, port = address
        timeout = limits.clamp(timeout)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        err: OSError | None = None
        for *_, sockaddr in infos:
            self.check(host, port, sockaddr[0])
        for family, type_, proto, _canon, sockaddr in infos:
            sock = socket.socket(family, type_, proto)
            try:
                if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                    sock.settimeout(timeout)  # type: ignore[arg-type]
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                err = exc
        raise err or OSError(f"cannot connect to {host}:{port}")


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, policy: AddressPolicy, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = policy.connect


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, policy: AddressPolicy, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._create_connection = policy.connect


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, policy: AddressPolicy) -> None:
        super().__init__()
        self.policy = policy

    def http_open(self, req):
        return self.do_open(partial(_GuardedHTTPConnection, policy=self.policy), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, policy: AddressPolicy) -> None:
        super().__init__()
        self.policy = policy

    def https_open(self, req):
        return self.do_open(partial(_GuardedHTTPSConnection, policy=self.policy), req,
                            context=self._context)


class _RefuseOtherSchemes(urllib.request.BaseHandler):
    def unknown_open(self, req):
        raise urllib.error.URLError(f"{BLOCKED_PREFIX} scheme {req.type!r} is not http or https")


def build_opener(policy: AddressPolicy, fetch: limits.FetchLimits | None = None,
                 on_hop: Callable[[str], None] | None = None) -> urllib.request.OpenerDirector:
    """An opener with HTTP(S), redirects and error handling only (no file://, ftp:// or proxies), within
    `fetch`'s deadline, body cap and retries; `on_hop(url)` may refuse a redirect before it is requested.
    Callers use its `open` directly: it is never installed as urllib's global opener."""
    fetch = fetch or limits.FetchLimits()
    opener = limits.RetryingOpener(fetch)
    for handler in (_HTTPHandler(policy), _HTTPSHandler(policy), limits.RedirectHandler(on_hop),
                    limits.StartFetch(fetch), limits.CapBody(fetch),
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor(),
                    _RefuseOtherSchemes()):
        opener.add_handler(handler)
    return opener
