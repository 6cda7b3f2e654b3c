"""WAT and WARC files written with warcio, for the extract tests and `bench/bench_extract.py`.

`write_wat` writes what Common Crawl's WAT files hold per page: a warcinfo record first, then for each page
three metadata records (JSON): the request, the response (with the HTML metadata: Head.Base, Head.Metas,
Links) and the crawler's metadata record. `write_warc` writes a warcinfo record, then a request and a
response record per page. `cc_like_pages` makes pages shaped like Common Crawl's (its docstring says how).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from curate.io import fs

DATE = "2024-02-20T21:10:55Z"


@dataclass(frozen=True)
class WatPage:
    url: str
    links: tuple[dict, ...] = ()  # HTML-Metadata.Links entries, e.g. img("a.jpg", alt="a cat")
    base: str | None = None  # Head.Base
    metas: tuple[dict, ...] = ()  # Head.Metas entries, e.g. {"name": "robots", "content": "noai"}
    headers: dict = field(default_factory=lambda: {"Content-Type": "text/html; charset=UTF-8"})
    title: str | None = "a page"
    anchors: int = 0  # A@/href links added before the images (bulk, as real pages have)


@dataclass(frozen=True)
class HtmlPage:
    url: str
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def img(url: str, alt: str | None = None, title: str | None = None, attr: str = "src") -> dict:
    """A WAT IMG link, as ia-web-commons writes it (alt and title only when the tag has them)."""
    link = {"path": f"IMG@/{attr}", "url": url}
    if alt is not None:
        link["alt"] = alt
    if title is not None:
        link["title"] = title
    return link


def record_id(n: int) -> str:
    return f"<urn:uuid:{uuid.UUID(int=n)}>"


def _envelope(page: WatPage, n: int, kind: str) -> dict:
    header = {"WARC-Type": kind, "WARC-Date": DATE, "WARC-Record-ID": record_id(n), "WARC-Target-URI": page.url,
              "Content-Type": f"application/http; msgtype={kind}"}
    if kind == "request":
        payload = {"Actual-Content-Type": "application/http; msgtype=request", "HTTP-Request-Metadata": {
            "Request-Message": {"Method": "GET", "Path": "/", "Version": "HTTP/1.1"},
            "Headers": {"Host": "example.com", "User-Agent": "CCBot/2.0 (https://commoncrawl.org/faq/)",
                        "Accept": "text/html,application/xhtml+xml", "Accept-Encoding": "br,gzip"}}}
    elif kind == "metadata":
        payload = {"Actual-Content-Type": "application/warc-fields", "WARC-Metadata-Metadata": {
            "Metadata-Records": [{"Name": "fetchTimeMs", "Value": "412"},
                                 {"Name": "charset-detected", "Value": "UTF-8"}]}}
    else:
        head: dict = {"Metas": list(page.metas), "Link": [{"path": "LINK@/href", "url": "/style.css",
                                                            "rel": "stylesheet"}]}
        if page.title is not None:
            head["Title"] = page.title
        if page.base is not None:
            head["Base"] = page.base
        anchors = [{"path": "A@/href", "url": f"/section/{k}/article.html", "text": f"read more about topic {k}"}
                   for k in range(page.anchors)]
        payload = {"Actual-Content-Type": "application/http; msgtype=response", "HTTP-Response-Metadata": {
            "Response-Message": {"Version": "HTTP/1.1", "Status": "200", "Reason": "OK"},
            "Headers": dict(page.headers), "Headers-Length": "512", "Entity-Length": "40000",
            "HTML-Metadata": {"Head": head, "Links": [*anchors, *page.links]}}}
    return {"Container": {"Filename": "CC-MAIN-20240220211055-20240221001055-00000.warc.gz", "Compressed": True,
                          "Offset": str(n * 1000)},
            "Envelope": {"Format": "WARC", "WARC-Header-Length": "600", "Block-Digest": "sha1:AAAA",
                         "Actual-Content-Length": "40000", "WARC-Header-Metadata": header, "Payload-Metadata": payload}}


def wat_record(page: WatPage, n: int, kind: str = "response") -> bytes:
    """The JSON of one WAT metadata record (`kind`: request, response or metadata), compact as Common Crawl's."""
    return json.dumps(_envelope(page, n, kind), separators=(",", ":")).encode()


@contextlib.contextmanager
def _writer(path: str) -> Iterator:
    """A warcio writer of gzipped records into `path` (any fsspec URL), its warcinfo record written."""
    from warcio.warcwriter import WARCWriter

    ffs, p = fs.url_to_fs(path)
    with ffs.open(p, "wb") as fh:
        writer = WARCWriter(fh, gzip=True)
        writer.write_record(writer.create_warcinfo_record(p.rsplit("/", 1)[-1], {"software": "curate synthetic"}))
        yield writer


def write_wat(path: str, pages: Iterable[WatPage | bytes], start_id: int = 1) -> int:
    """Write a gzipped WAT file (one gzip member per record, as Common Crawl's); returns its record count. A
    `bytes` item is written as one metadata record holding those bytes (a malformed record, for tests)."""
    n = 0
    with _writer(path) as writer:
        for page in pages:
            if isinstance(page, bytes):
                writer.write_record(writer.create_warc_record(
                    "https://example.com/", "metadata", payload=io.BytesIO(page), warc_content_type="application/json"))
                n += 1
                continue
            for kind in ("request", "response", "metadata"):
                body = wat_record(page, start_id + n, kind)
                writer.write_record(writer.create_warc_record(
                    page.url, "metadata", payload=io.BytesIO(body), warc_content_type="application/json"))
                n += 1
    return n


def write_warc(path: str, pages: Iterable[HtmlPage]) -> int:
    """Write a gzipped WARC file with a request and a response record per page; returns the page count."""
    from warcio.statusandheaders import StatusAndHeaders

    n = 0
    with _writer(path) as writer:
        for page in pages:
            request = StatusAndHeaders("GET / HTTP/1.1", [("Host", "example.com")], is_http_request=True)
            writer.write_record(writer.create_warc_record(page.url, "request", http_headers=request))
            response = StatusAndHeaders("200 OK", [("Content-Type", page.content_type), *page.headers],
                                        protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(page.url, "response", payload=io.BytesIO(page.body),
                                                          http_headers=response))
            n += 1
    return n


def cc_like_pages(n_pages: int, seed: int = 0, anchors: tuple[int, int] = (20, 120)) -> Iterator[WatPage]:
    """Pages shaped like a Common Crawl WAT file's (our assumptions, not measured on a real file): `anchors`
    anchor links and 0-16 IMG links per page (8 on average); of the images 55% have alt text (20% an empty alt, 25%
    none); their URLs are 45% absolute on the page's host, 15% on a CDN host, 30% relative (root- or
    path-relative), 5% protocol-relative, 3% data: URIs and 2% repeats of an earlier image of the page;
    one page in 50 has a <base href>, one in 200 a robots noai meta tag; about 12 HTTP headers each."""
    rng = random.Random(seed)
    words = ("red", "bicycle", "wall", "summer", "garden", "photo", "of", "a", "the", "with", "logo", "product",
             "blue", "dress", "kitchen", "table", "cat", "dog", "beach", "sunset", "city", "night", "view")
    headers = {"Content-Type": "text/html; charset=UTF-8", "Server": "nginx", "Cache-Control": "max-age=600",
               "Date": "Tue, 20 Feb 2024 21:10:55 GMT", "Vary": "Accept-Encoding", "Connection": "keep-alive",
               "X-Frame-Options": "SAMEORIGIN", "Content-Language": "en", "Last-Modified": "Mon, 19 Feb 2024",
               "X-Content-Type-Options": "nosniff", "Strict-Transport-Security": "max-age=31536000",
               "X-Crawler-Content-Encoding": "gzip"}
    for i in range(n_pages):
        host = f"www.site{rng.randrange(5000)}.example.com"
        links: list[dict] = []
        for j in range(rng.randrange(17)):
            r = rng.random()
            if r < 0.02 and links:
                links.append(dict(rng.choice(links)))
                continue
            u = (f"https://{host}/wp-content/uploads/2024/02/img-{i}-{j}.jpg" if r < 0.47 else
                 f"https://cdn{rng.randrange(50)}.example.net/i/{i}/{j}.webp?w=800" if r < 0.62 else
                 f"/images/{i}/{j}.png" if r < 0.77 else f"thumbs/{j}.jpg" if r < 0.92 else
                 f"//static.example.org/{i}/{j}.gif" if r < 0.97 else "data:image/gif;base64,R0lGODlhAQABAAAAACw=")
            a = rng.random()
            alt = (" ".join(rng.choice(words) for _ in range(rng.randint(2, 9))) if a < 0.55 else
                   "" if a < 0.75 else None)
            links.append(img(u, alt))
        metas = [{"name": "viewport", "content": "width=device-width, initial-scale=1"},
                 {"name": "description", "content": " ".join(rng.choice(words) for _ in range(25))},
                 {"property": "og:title", "content": "A title"}]
        if i % 200 == 7:
            metas.append({"name": "robots", "content": "noai, noimageai"})
        yield WatPage(url=f"https://{host}/blog/2024/02/post-{i}.html", links=tuple(links),
                      base=f"https://{host}/blog/" if i % 50 == 3 else None, metas=tuple(metas),
                      headers=headers, title=" ".join(rng.choice(words) for _ in range(6)),
                      anchors=rng.randint(*anchors))
