"""Curate's own fetch: every request the download makes, and every redirect hop of it, goes through the
opener built here and called directly (never urllib's global opener, which `urlopen(..., context=...)`
bypasses): the address guard on the connected address, the total deadline, the body cap, consent before the
request (robots.txt, tdmrep.json, for the URL and for every redirect hop's URL) and before the body
(X-Robots-Tag, `tdm-reservation`), and per-host politeness (concurrency, rate, Retry-After, backoff, give-up).

`Fetcher.fetch(url)` returns a `Fetched`: the status (curate's download statuses), the error text, and for a
success the body and its Content-Type. One Fetcher serves one run in one worker process (`for_run`), so
its per-host state (politeness, consent) is shared by the process's download threads and its tasks.
"""

from __future__ import annotations

import http.client
import logging
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace

from curate.download import limits
from curate.download.consent import Consent, Refusal, origin, tdm_header_reserved, x_robots_refusal
from curate.download.guard import BLOCKED_PREFIX, AddressPolicy, build_opener
from curate.download.polite import HostGaveUp, PoliteConfig, Politeness, retry_after
from curate.download.status import SUCCESS, classify

log = logging.getLogger(__name__)

# img2dataset 1.47's User-Agent, so that servers see what they saw before (a token is appended as it does)
USER_AGENT = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:72.0) Gecko/20100101 Firefox/72.0"
# the robots.txt user agents we answer to, plus any --user-agent-token: a URL is fetched only when each of them
# may fetch it. Sites name img2dataset's; "curate" is named by no one yet, so the `*` group applies to it (a
# site with an img2dataset group and a `*` group gets both honoured).
ROBOTS_AGENTS = ("curate", "img2dataset")


@dataclass(frozen=True)
class FetchSettings:
    """Everything a worker process needs to build its Fetcher (picklable)."""

    allow: tuple[str, ...] = ()
    limits: limits.FetchLimits = field(default_factory=limits.FetchLimits)
    timeout: float = 10.0  # seconds per socket operation
    user_agent_token: str | None = None
    directives: tuple[str, ...] = ("noai", "noimageai", "noindex", "noimageindex")
    robots: bool = True
    tdmrep: bool = True
    polite: PoliteConfig = field(default_factory=PoliteConfig)
    consent_dir: str | None = None  # the run's cache of robots.txt and tdmrep.json answers

    @property
    def token(self) -> str | None:
        return self.user_agent_token.strip().lower() if self.user_agent_token else None

    @property
    def user_agent(self) -> str:
        token = self.user_agent_token
        return USER_AGENT + (f" (compatible; {token}; +https://github.com/rom1504/img2dataset)" if token else "")


@dataclass
class Fetched:
    status: str
    error: str | None = None
    body: bytes | None = None
    content_type: str = ""


class Refused(OSError):
    """A consent check refused a redirect hop (its status and why)."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.error)
        self.refusal = refusal


def _unwrap(exc: BaseException) -> BaseException:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError) \
            and isinstance(exc.reason, BaseException):
        return exc.reason
    return exc


def host_trouble(exc: BaseException) -> bool:
    """Does this failure say the host is in trouble (counts toward backoff and give-up)?"""
    exc = _unwrap(exc)
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500 or exc.code == 429
    if isinstance(exc, (limits.BodyTooLarge, Refused)) or BLOCKED_PREFIX in str(exc):
        return False
    return isinstance(exc, (TimeoutError, ConnectionError, socket.gaierror, http.client.RemoteDisconnected,
                            http.client.IncompleteRead, limits.DeadlineExceeded))


class Fetcher:
    def __init__(self, settings: FetchSettings, politeness: Politeness | None = None) -> None:
        self.settings = settings
        policy = AddressPolicy(settings.allow)
        one_try = replace(settings.limits, retries=0)  # retries are per host here (politeness), not per open
        self.opener = build_opener(policy, one_try, on_hop=self._hop)
        self.plain = build_opener(policy, one_try)  # robots.txt and tdmrep.json: no consent check of their own
        agents = ROBOTS_AGENTS + ((settings.token,) if settings.token else ())
        self.consent = Consent(self._text, settings.consent_dir, agents, settings.robots, settings.tdmrep)
        self.polite = politeness or Politeness(settings.polite)
        self.directives = frozenset(d.strip().lower() for d in settings.directives)

    def _request(self, url: str) -> urllib.request.Request:
        return urllib.request.Request(url, headers={"User-Agent": self.settings.user_agent})

    def _text(self, url: str) -> tuple[int | None, bytes | None, str | None]:
        """A robots.txt or tdmrep.json: (status, body, error), through the guarded opener."""
        with limits.own_deadline():
            try:
                with self.plain.open(self._request(url), timeout=self.settings.timeout) as r:
                    return r.status, r.read(), None
            except urllib.error.HTTPError as exc:
                exc.close()
                return exc.code, None, str(exc)
            except Exception as exc:  # noqa: BLE001 - every failure is an answer here
                return None, None, str(exc)

    def _hop(self, url: str) -> None:
        refusal = self.consent.refusal(url)
        if refusal is not None:
            raise Refused(refusal)

    def fetch(self, url: str) -> Fetched:
        host = origin(url)
        if host is None:  # not http(s) or no host: the opener refuses or the URL is invalid, with no request
            return self._attempt(url)[0]
        why = self.polite.gave_up(host)
        if why:
            return Fetched("host_gave_up", f"{host} was given up ({why}); not requested")
        refusal = self.consent.refusal(url)
        if refusal is not None:
            return Fetched(refusal.status, refusal.error)
        tries = self.settings.limits.retries + 1
        for attempt in range(tries):
            try:
                self.polite.acquire(host)
            except HostGaveUp as exc:
                return Fetched("host_gave_up", f"{host} was given up ({exc}); not requested")
            result, trouble, wait, transient = self._attempt(url)
            self.polite.release(host, trouble, wait)
            if not transient or attempt == tries - 1:
                return result
        raise AssertionError("unreachable")

    def _attempt(self, url: str) -> tuple[Fetched, bool, float | None, bool]:
        """One request: (result, host in trouble, Retry-After seconds, worth another try)."""
        try:
            with self.opener.open(self._request(url), timeout=self.settings.timeout) as r:
                refusal = self._before_body(r)
                if refusal is not None:
                    return Fetched(refusal.status, refusal.error), False, None, False
                body = r.read()
                return Fetched(SUCCESS, None, body, r.headers.get("Content-Type", "")), False, None, False
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            inner = _unwrap(exc)
            if isinstance(inner, Refused):
                return Fetched(inner.refusal.status, inner.refusal.error), False, None, False
            wait = None
            if isinstance(exc, urllib.error.HTTPError):
                if exc.code in (429, 503):
                    wait = retry_after(exc.headers.get("Retry-After"), self.polite.wall())
                exc.close()
            message = str(exc)
            return (Fetched(classify("failed_to_download", message), message), host_trouble(exc), wait,
                    limits.transient(exc))

    def _before_body(self, response) -> Refusal | None:
        """Consent read from the headers, before a byte of the body: X-Robots-Tag, then tdm-reservation."""
        if self.directives:
            tag = x_robots_refusal(response.headers.get_all("X-Robots-Tag") or [], self.settings.token,
                                   self.directives)
            if tag:
                return Refusal("opted_out", f"use of the image disallowed by X-Robots-Tag: {tag}")
        if self.settings.tdmrep and tdm_header_reserved(response.headers.get("tdm-reservation")):
            return Refusal("tdm_reserved", "the response says tdm-reservation: 1")
        return None


_fetchers: dict[FetchSettings, Fetcher] = {}
_fetchers_lock = threading.Lock()


def for_run(settings: FetchSettings) -> Fetcher:
    """The Fetcher of this process for these settings (one run's), made once and shared by its tasks."""
    with _fetchers_lock:
        if settings not in _fetchers:
            _fetchers[settings] = Fetcher(settings)
        return _fetchers[settings]
