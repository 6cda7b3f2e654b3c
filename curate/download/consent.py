"""Consent signals, checked before a body is read: robots.txt (RFC 9309, parsed by `protego`), the W3C TDM
Reservation Protocol (TDMRep: the `tdm-reservation` response header and `/.well-known/tdmrep.json`) and the
X-Robots-Tag directives of the image's own response.

robots.txt and tdmrep.json are fetched once per host per run, through the download's own guarded fetch (the
address guard, deadline and body cap apply to them as to images), and kept twice: in this process (so
concurrent download threads wait for one fetch) and in the run folder (`download/_consent/HOST.json`), so
that later tasks, other worker processes, a resume and `--retry-failed` reuse the answer. On local disk an
exclusive claim file makes the fetch happen once even when processes race (a claim older than CLAIM_WAIT,
left by a killed process, is taken over); on an object store two tasks starting at the same moment may both
fetch it (neither is wrong, one answer wins). Only lasting answers are kept in the run: a 5xx or no answer
at all is kept in the process only, so a later run or `--retry-failed` asks again.

What an answer means (RFC 9309 section 2.3.1): a robots.txt answered 2xx is parsed; 4xx means no rules
(everything allowed); a 5xx means the host is unreachable, which RFC 9309 asks crawlers to treat as a complete
disallow (`robots_disallowed`). No answer at all (DNS, connect, timeout, the address guard) is not read as a
refusal: the host's rows get that failure's own status, without requesting the image (it would fail the same
way). A tdmrep.json that is absent or malformed reserves nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from curate.download.status import classify
from curate.io import fs

log = logging.getLogger(__name__)

ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309 2.5: crawlers must parse at least the first 500 KiB
TDMREP_PATH = "/.well-known/tdmrep.json"
CLAIM_WAIT = 30.0  # seconds a process waits for another one's fetch of the same host before fetching itself

# fetch(url) -> (HTTP status or None when no answer came, body or None, error text or None)
TextFetch = Callable[[str], tuple[int | None, bytes | None, str | None]]


@dataclass(frozen=True)
class Refusal:
    status: str  # robots_disallowed or tdm_reserved; a host that gave no answer: that failure's status
    error: str


def origin(url: str) -> str | None:
    """scheme://host[:port] of an http(s) URL, lower-cased; None for anything else."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower().rsplit('@', 1)[-1]}"


def x_robots_refusal(values: list[str], token: str | None, directives: frozenset[str]) -> str | None:
    """The X-Robots-Tag directive that opts the image out, if any: `noai`, or `TOKEN: noai` for our token.
    A value names a user agent when the part before its first colon is one word (`otherbot: noai`)."""
    for value in values:
        head, sep, rest = value.partition(":")
        agent = head.strip().lower() if sep and re.fullmatch(r"[\w.-]+", head.strip()) else None
        if agent is not None and agent != token:
            continue
        for directive in (rest if agent is not None else value).split(","):
            if directive.strip().lower() in directives:
                return directive.strip().lower()
    return None


def tdm_header_reserved(value: str | None) -> bool:
    """TDMRep's HTTP header: `tdm-reservation: 1` reserves text and data mining rights."""
    return value is not None and value.strip() == "1"


def _pattern(location: str) -> re.Pattern:
    """A TDMRep location: robots.txt path syntax (`*` any characters, a final `$` the end of the path)."""
    end = location.endswith("$")
    body = re.escape(location[:-1] if end else location).replace(r"\*", ".*")
    return re.compile(body + ("$" if end else ""))


@dataclass
class HostRules:
    """What one host said: its robots.txt (None: no rules) and its TDMRep rules."""

    robots: Protego | None
    robots_note: str  # "ok", "none (HTTP 404)", "HTTP 503", or the error of a fetch that got no answer
    unreachable: bool  # a 5xx answer: RFC 9309 says disallow everything
    failed: str | None  # no answer at all (DNS, connect, timeout): the host's rows fail with this error
    tdm: list[tuple[re.Pattern, bool, str | None]]

    @classmethod
    def from_record(cls, record: dict) -> HostRules:
        robots = record.get("robots") or {}
        text = robots.get("text")
        tdm = []
        for rule in record.get("tdmrep") or []:
            try:
                tdm.append((_pattern(str(rule["location"])), int(rule.get("tdm-reservation", 0)) == 1,
                            rule.get("tdm-policy")))
            except (KeyError, TypeError, ValueError):
                continue
        return cls(robots=Protego.parse(text) if text is not None else None, robots_note=robots.get("note", ""),
                   unreachable=bool(robots.get("unreachable")), failed=robots.get("failed"), tdm=tdm)

    @property
    def lasting(self) -> bool:
        """Worth keeping in the run: a real answer, not a failure that another try may not have."""
        return not self.unreachable and self.failed is None

    def robots_refusal(self, url: str, agents: tuple[str, ...]) -> str | None:
        if self.unreachable:
            return f"robots.txt answered {self.robots_note}: RFC 9309 treats the host as disallowed"
        if self.robots is None:
            return None
        for agent in agents:
            if not self.robots.can_fetch(url, agent):
                return f"robots.txt disallows {agent}"
        return None

    def tdm_refusal(self, url: str) -> str | None:
        path = urlsplit(url).path or "/"
        for pattern, reserved, policy in self.tdm:
            if pattern.match(path):  # the first matching rule applies
                if not reserved:
                    return None
                return f"tdmrep.json reserves TDM rights for {path}" + (f" (policy {policy})" if policy else "")
        return None


def _robots_record(status: int | None, body: bytes | None, error: str | None) -> dict:
    if status is not None and 200 <= status < 300:
        return {"note": "ok", "text": (body or b"")[:ROBOTS_MAX_BYTES].decode("utf-8", errors="replace")}
    if status is not None and 400 <= status < 500:
        return {"note": f"none (HTTP {status})"}
    if status is not None:
        return {"note": f"HTTP {status}", "unreachable": True}
    return {"note": "no answer", "failed": error or "no answer"}


def _tdm_record(status: int | None, body: bytes | None) -> list:
    if status is None or not 200 <= status < 300 or not body:
        return []
    try:
        rules = json.loads(body)
    except ValueError:
        return []
    return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []


class Consent:
    """Per-host robots.txt and TDMRep rules for one run, fetched with `fetch_text` at most once per host."""

    def __init__(self, fetch_text: TextFetch, cache_dir: str | None, agents: tuple[str, ...], robots: bool = True,
                 tdmrep: bool = True) -> None:
        self.fetch_text = fetch_text
        self.cache_dir = cache_dir
        self.agents = agents
        self.robots = robots
        self.tdmrep = tdmrep
        self._hosts: dict[str, HostRules] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.fetched = 0  # hosts this process fetched (not read from the run folder)

    def refusal(self, url: str) -> Refusal | None:
        """Why `url` must not be fetched (robots.txt, tdmrep.json), or None; invalid URLs are left to the fetch."""
        if not (self.robots or self.tdmrep):
            return None
        host = origin(url)
        if host is None:
            return None
        rules = self.rules(host)
        if rules.failed is not None:  # the host gave no answer at all: its images would not either
            return Refusal(classify("failed_to_download", rules.failed), rules.failed)
        if self.robots:
            why = rules.robots_refusal(url, self.agents)
            if why:
                return Refusal("robots_disallowed", why)
        if self.tdmrep:
            why = rules.tdm_refusal(url)
            if why:
                return Refusal("tdm_reserved", why)
        return None

    def rules(self, host: str) -> HostRules:
        with self._lock:
            if host in self._hosts:
                return self._hosts[host]
            lock = self._locks.setdefault(host, threading.Lock())
        with lock:  # one thread of this process fetches; the others wait for its answer
            if host not in self._hosts:
                rules = HostRules.from_record(self._record(host))
                with self._lock:
                    self._hosts[host] = rules
        return self._hosts[host]

    def _path(self, host: str, suffix: str) -> str | None:
        if self.cache_dir is None:
            return None
        name = re.sub(r"[^a-z0-9.-]+", "_", host.split("://", 1)[1])[:80]
        return fs.join(self.cache_dir, f"{name}-{hashlib.sha1(host.encode()).hexdigest()[:10]}{suffix}")

    def _record(self, host: str) -> dict:
        path, claim = self._path(host, ".json"), self._path(host, ".claim")
        if path is None:
            return self._fetch(host)
        end = time.monotonic() + CLAIM_WAIT
        while True:
            if fs.exists(path):
                return fs.read_json(path)
            if _claim(claim):
                break
            if _claim_age(claim) > CLAIM_WAIT or time.monotonic() > end:  # its owner died or is stuck: take over
                log.warning("consent: taking over the stale claim on %s", host)
                _unclaim(claim)
                continue
            time.sleep(0.05)  # another process is fetching this host: wait for its record
        try:
            record = self._fetch(host)
            if HostRules.from_record(record).lasting:
                fs.write_json(path, record)
        finally:
            _unclaim(claim)
        return record

    def _fetch(self, host: str) -> dict:
        self.fetched += 1
        record: dict = {"host": host}
        if self.robots:
            record["robots"] = _robots_record(*self.fetch_text(host + "/robots.txt"))
            if "failed" in record["robots"]:  # no answer from the host: its tdmrep.json would not answer either
                return record
        if self.tdmrep:
            status, body, _ = self.fetch_text(host + TDMREP_PATH)
            record["tdmrep"] = _tdm_record(status, body)
        return record


def _claim(path: str) -> bool:
    """Create `path` if nobody has (local disk: exclusive create); True when this process owns it. Object
    stores without exclusive create: always True (best effort)."""
    ffs, p = fs.url_to_fs(path)
    try:
        ffs.makedirs(p.rpartition("/")[0], exist_ok=True)
        with ffs.open(p, "xb") as fh:
            fh.write(repr(time.time()).encode())
        return True
    except FileExistsError:
        return False
    except (ValueError, NotImplementedError, TypeError):
        return True


def _claim_age(path: str) -> float:
    """Seconds since `path` was claimed (0 when it cannot be read: just released, or being written)."""
    try:
        ffs, p = fs.url_to_fs(path)
        with ffs.open(p, "rb") as fh:
            return time.time() - float(fh.read().decode() or "inf")
    except (OSError, ValueError):
        return 0.0


def clear_claims(cache_dir: str) -> None:
    """Remove claims a killed process left (called when the stage finishes: no fetch is running then)."""
    ffs, p = fs.url_to_fs(cache_dir)
    if ffs.exists(p):
        for name in ffs.ls(p, detail=False):
            if str(name).endswith(".claim"):
                _unclaim(fs.join(cache_dir, str(name).rsplit("/", 1)[-1]))


def _unclaim(path: str) -> None:
    ffs, p = fs.url_to_fs(path)
    try:
        ffs.rm(p)
    except FileNotFoundError:
        pass
