"""From Common Crawl to training shards (issue 18's proof): WAT files the test writes, whose pages show images
served by a loopback server, run through the CLI as a user would: `extract` (Spark), `download RUN --input
RUN/extract` (Spark), `dedup` (Spark), `score` (Ray), `select` and `shard`.

Every image reference the pages hold has a planted fate, worked out here from what the test writes: rejected
by extract (data: URL, loopback literal, no alt text, a repeat in the page or the file), by download (a noai
page: no request at all; robots.txt and tdmrep.json, served properly, refuse a path each; a 404), by dedup
(one URL in two files and twice in one file; one image at two URLs, with and without the same caption), by
select (DataComp's basic filter: small, elongated, two words, German), or kept. The pages link their images
through `localhost`: extract rejects literal loopback addresses (the download guard's rule), a host name is
checked only when download connects, and `--allow-address localhost:PORT` opens it there.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate.audit import audit
from curate.extract.synthetic import WatPage, img, write_wat

# ~75 s (six CLI runs): make test-long and make bench
pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.ray, pytest.mark.long]

ROBOTS = "User-agent: *\nDisallow: /private/\n"
TDMREP = [{"location": "/reserved/*", "tdm-reservation": 1}]
CLEAN = ("a red bicycle leaning against an old brick wall", "a small wooden boat on a calm lake at sunset",
         "two children playing football in a city park", "a bowl of fresh strawberries on a kitchen table",
         "a black cat sleeping on a blue sofa", "snow covered mountains under a clear winter sky",
         "a yellow taxi waiting at a busy street corner", "a glass of orange juice next to a croissant",
         "an old lighthouse standing on a rocky coast", "a brown dog running along the sandy beach",
         "a vintage camera lying on a pile of maps", "green tea leaves drying in the morning sun",
         "a white church with a tall bell tower", "a pair of running shoes on a wooden floor",
         "a steaming cup of coffee on a rainy window sill", "colourful hot air balloons over a green valley",
         "a stack of books beside a reading lamp")


def _jpeg(seed: int, size: tuple[int, int] = (256, 256)) -> bytes:
    """Seeded noise: no two images are near duplicates by pHash, and every side passes the basic filter."""
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    server: _Site
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.hits[path] += 1
        if path == "/robots.txt":
            self._send(200, ROBOTS.encode(), "text/plain")
        elif path == "/.well-known/tdmrep.json":
            self._send(200, json.dumps(TDMREP).encode(), "application/json")
        elif path in self.server.bodies:
            self._send(200, self.server.bodies[path], "image/jpeg")
        else:
            self._send(404, b"missing", "text/plain")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Site(ThreadingHTTPServer):
    """The images on 127.0.0.1 (any port), with robots.txt and tdmrep.json; counts the requests per path."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: dict[str, bytes] = {}
        self.hits: Counter = Counter()
        self.lock = threading.Lock()


@pytest.fixture()
def site():
    server = _Site()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class Ref:
    """One <img> of a page and where it must end: `kept`, `STAGE:REASON`, or `group:NAME:REASON` (a dedup
    group: its smallest uid is kept, the others get REASON)."""

    page: str
    raw: str  # the URL as the page gives it
    alt: str | None
    url: str | None  # the absolute URL extract must resolve it to (None: rejected by extract)
    fate: str


def _plan(base: str, site: _Site) -> tuple[list[list[WatPage]], list[Ref]]:
    """The WAT files' pages (two files) and every image reference's planted fate; fills the site's images."""
    seeds = iter(range(1, 1000))
    refs: list[Ref] = []
    clean = iter(CLEAN)

    def serve(path: str, body: bytes | None = None) -> str:
        site.bodies[path] = body if body is not None else _jpeg(next(seeds))
        return base + path

    def page(url: str, items: list[tuple[str, str | None, str | None, str]], **kw) -> WatPage:
        for raw, alt, absolute, fate in items:
            refs.append(Ref(url, raw, alt, absolute, fate))
        return WatPage(url=url, links=tuple(img(raw, alt) for raw, alt, _, _ in items), **kw)

    home, blog, shop, gallery = (f"{base}/index.html", f"{base}/blog/2024/post.html", f"{base}/shop/item.html",
                                 f"{base}/gallery/private.html")
    shared = serve("/img/shared.jpg")
    first = serve("/img/first.jpg")
    copy = _jpeg(next(seeds))
    pair = _jpeg(next(seeds))
    c = next(clean)
    file_a = [
        page(home, [
            (first, c, first, "kept"),
            (first, c, None, "extract:duplicate_in_page"),
            ("/img/root-relative.jpg", next(clean), serve("/img/root-relative.jpg"), "kept"),
            ("//" + base.split("//", 1)[1] + "/img/protocol-relative.jpg", next(clean),
             serve("/img/protocol-relative.jpg"), "kept"),
            ("data:image/gif;base64,R0lGODlhAQABAAAAACw=", "a transparent pixel", None, "extract:bad_scheme"),
            (f"http://127.0.0.1:{site.server_address[1]}/img/literal.jpg", "a photo on a loopback address",
             None, "extract:blocked_address"),
            ("/img/no-alt.jpg", None, None, "extract:no_caption"),
            (shared, "the shared picture of a garden", shared, "group:shared:duplicate_url"),
            ("/img/missing.jpg", "a picture that is not there", base + "/img/missing.jpg", "download:http_error"),
        ]),
        page(blog, [
            ("photos/relative.jpg", next(clean), serve("/blog/2024/photos/relative.jpg"), "kept"),
            ("../../img/dot-dot.jpg", next(clean), serve("/img/dot-dot.jpg"), "kept"),
            ("/private/secret.jpg", "a picture robots.txt keeps away", serve("/private/secret.jpg"),
             "download:robots_disallowed"),
            ("/reserved/mine.jpg", "a picture whose TDM rights are reserved", serve("/reserved/mine.jpg"),
             "download:tdm_reserved"),
            (first, c, None, "extract:duplicate_in_file"),  # the pair of the home page, again
            (shared, "another caption for the shared picture", shared, "group:shared:duplicate_url"),
        ]),
        # a noai page: its pairs are extracted, marked opt_out, and never requested
        page(gallery, [(f"/gallery/{k}.jpg", next(clean), serve(f"/gallery/{k}.jpg"), "download:opted_out")
                       for k in range(3)], metas=({"name": "robots", "content": "noai"},)),
        page(shop, [
            ("thumbs/small.jpg", "a thumbnail photo of the green lamp on my desk",
             serve("/assets/thumbs/small.jpg", _jpeg(next(seeds), (64, 64))),
             "select:image_too_small"),
            ("banner.jpg", "a wide banner announcing the summer sale in our shop",
             serve("/assets/banner.jpg", _jpeg(next(seeds), (900, 250))),
             "select:aspect_ratio"),
            ("birthday.jpg", "happy birthday", serve("/assets/birthday.jpg"), "select:too_few_words"),
            ("fahrrad.jpg", "ein rotes Fahrrad steht vor einer alten Mauer im Garten", serve("/assets/fahrrad.jpg"),
             "select:not_english"),
            ("copy-a.jpg", "a copy of one photo of a harbour", serve("/assets/copy-a.jpg", copy),
             "group:copy:duplicate_image"),
            ("pair-a.jpg", "the same photo of a meadow twice", serve("/assets/pair-a.jpg", pair),
             "group:pair:duplicate_pair"),
        ], base=f"{base}/assets/"),  # relative URLs resolve against <base href>
    ]
    more = f"{base}/more/page.html"
    file_b = [
        page(more, [
            (shared, "the shared picture of a garden", shared, "group:shared:duplicate_url"),  # as in file A
            ("/mirror/copy-b.jpg", "another copy of that harbour photo", serve("/mirror/copy-b.jpg", copy),
             "group:copy:duplicate_image"),
            ("/mirror/pair-b.jpg", "the same photo of a meadow twice", serve("/mirror/pair-b.jpg", pair),
             "group:pair:duplicate_pair"),
            *[(f"/more/{k}.jpg", alt, serve(f"/more/{k}.jpg"), "kept") for k, alt in enumerate(clean)],
        ]),
    ]
    return [file_a, file_b], refs


def _curate(args: list[str], tmp: Path) -> str:
    proc = subprocess.run([sys.executable, "-m", "curate.cli", "-q", *args], env={**os.environ, "TMPDIR": str(tmp)},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"curate {args[0]} failed:\n{proc.stderr[-3000:]}"
    return proc.stdout


def _read(folder: Path) -> pa.Table:
    parts = sorted(folder.glob("*.parquet"))
    assert parts, f"no parts in {folder}"
    return pa.concat_tables([pq.read_table(p) for p in parts], promote_options="default")


def _fates(run: Path) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """(the extracted pairs by uid, every place each uid was found in: `kept` or `STAGE:REASON`)."""
    pairs = {r["uid"]: r for r in _read(run / "extract").to_pylist()}
    places: dict[str, list[str]] = {uid: [] for uid in pairs}

    def put(uid: str, place: str) -> None:
        places.setdefault(uid, []).append(place)  # a uid extract did not write shows up as a place too

    for r in _read(run / "download" / "samples").to_pylist():
        if r["status"] != "success":
            put(r["uid"], f"download:{r['status']}")
    for r in _read(run / "dedup" / "decisions").to_pylist():
        if r["reason"] is not None:
            put(r["uid"], f"dedup:{r['reason']}")
    for r in _read(run / "score" / "scores").to_pylist():
        if r["status"] != "ok":
            put(r["uid"], f"score:{r['status']}")
    for r in _read(run / "select" / "decisions").to_pylist():
        if not r["kept"]:
            put(r["uid"], f"select:{r['reason']}")
    for uid in _read(run / "shard" / "manifest").column("uid").to_pylist():
        put(uid, "kept")
    return pairs, places


def _expected(refs: list[Ref], pairs: dict[str, dict]) -> Counter:
    """(page, url, caption, fate) of every pair extract keeps, dedup groups resolved by their smallest uid."""
    uid_of: dict[tuple, list[str]] = {}
    for uid, r in pairs.items():
        uid_of.setdefault((r["page_url"], r["url"], r["caption"]), []).append(uid)
    groups: dict[str, list[str]] = {}
    for ref in refs:
        if ref.fate.startswith("group:"):
            found = uid_of.get((ref.page, ref.url, ref.alt), [])
            assert len(found) == 1, (ref, found)
            groups.setdefault(ref.fate.split(":")[1], []).extend(found)
    survivors = {min(uids) for uids in groups.values()}
    out: Counter = Counter()
    for ref in refs:
        if ref.fate.startswith("extract:"):
            continue
        fate = ref.fate
        if fate.startswith("group:"):
            fate = "kept" if uid_of[(ref.page, ref.url, ref.alt)][0] in survivors else f"dedup:{fate.split(':')[2]}"
        out[(ref.page, ref.url, ref.alt, fate)] += 1
    return out


def _tar_members(run: Path) -> dict[str, bytes]:
    out = {}
    tars = sorted((run / "shard").glob("*.tar"))
    assert tars, "no shards written"
    for path in tars:
        with tarfile.open(path) as tar:
            for m in tar.getmembers():
                if m.isfile():
                    out[m.name] = tar.extractfile(m).read()
    return out


def test_wat_files_to_shards_on_loopback(site, tmp_path):
    port = site.server_address[1]
    base = f"http://localhost:{port}"
    files, refs = _plan(base, site)
    wat = tmp_path / "crawl-data" / "CC-MAIN-2024-10" / "segments" / "1700000000000.0" / "wat"
    wat.mkdir(parents=True)
    for k, pages in enumerate(files):
        write_wat(str(wat / f"CC-MAIN-2024-0000{k}.warc.wat.gz"), pages)
    run = tmp_path / "run"
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    _curate(["extract", str(run), "--input", str(wat / "*.warc.wat.gz")], scratch)
    pairs = _read(run / "extract").to_pylist()
    rejects = _read(run / "extract" / "rejects").to_pylist()
    stats = json.loads((run / "extract" / "_stats.json").read_text())
    # extract: every reference is one kept pair or one reject, and the rejects are the planted ones
    assert len(pairs) + len(rejects) == len(refs) == stats["images"]
    assert Counter((r["page_url"], r["url_raw"], r["caption"], f"extract:{r['reason']}") for r in rejects) == \
        Counter((f.page, f.raw, f.alt, f.fate) for f in refs if f.fate.startswith("extract:"))
    assert stats["rejected"] == dict(Counter(f.fate.split(":")[1] for f in refs if f.fate.startswith("extract:")))
    assert {r["page_url"] for r in pairs if r["opt_out"]} == {f"{base}/gallery/private.html"}
    assert len(pairs) == len({r["uid"] for r in pairs})

    ray_tmp = Path(tempfile.mkdtemp(prefix="rs"))  # short: Ray's socket paths must fit in 107 bytes
    try:
        # a generous timeout: on a loaded test machine a loopback answer must not become a `timeout` row
        _curate(["download", str(run), "--input", str(run / "extract"), "--shard-size", "10", "--threads", "4",
                 "--timeout", "30", "--allow-address", f"localhost:{port}"], scratch)
        _curate(["dedup", str(run)], scratch)
        _curate(["score", str(run)], ray_tmp)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    # DataComp's basic filter, and every CLIP similarity passes: select's rejections are the planted ones
    _curate(["select", str(run), "--engine", "local", "--clip-threshold", "-1"], scratch)
    _curate(["shard", str(run), "--engine", "local", "--samples-per-shard", "8"], scratch)

    by_uid, places = _fates(run)
    misplaced = {uid: where for uid, where in places.items() if len(where) != 1}
    assert not misplaced, f"uids not in exactly one place: {misplaced}"
    got = Counter((by_uid[uid]["page_url"], by_uid[uid]["url"], by_uid[uid]["caption"], where[0])
                  for uid, where in places.items())
    want = _expected(refs, by_uid)
    assert got == want, {"missing": want - got, "unexpected": got - want}
    kept = [uid for uid, where in places.items() if where == ["kept"]]
    # the clean captions less the noai page's three, plus one survivor per dedup group
    assert len(kept) == sum(n for key, n in want.items() if key[3] == "kept") == len(CLEAN) - 3 + 3

    # the noai page's images were never asked for; the others were, with robots.txt and tdmrep.json first
    for ref in refs:
        path = ref.url[len(base):] if ref.url else None
        if ref.fate == "download:opted_out":
            assert site.hits[path] == 0, path
        elif ref.fate in ("download:robots_disallowed", "download:tdm_reserved"):
            assert site.hits[path] == 0, path  # refused by the consent files, before any request
        elif ref.url is not None:
            assert site.hits[path] >= 1, path
    assert site.hits["/robots.txt"] >= 1 and site.hits["/.well-known/tdmrep.json"] >= 1

    result = audit(str(run))  # curate's own accounting from download on agrees
    assert result.ok, result.problems
    assert (result.input_rows, result.kept) == (len(pairs), len(kept))

    # the shards hold, for every kept uid, the bytes the server sent and the caption the page gave
    manifest = _read(run / "shard" / "manifest").to_pylist()
    assert sorted(r["uid"] for r in manifest) == sorted(kept)
    members = _tar_members(run)
    for r in manifest:
        pair = by_uid[r["uid"]]
        assert members[f"{r['key']}.jpg"] == site.bodies[pair["url"][len(base):]], pair["url"]
        assert members[f"{r['key']}.txt"].decode() == pair["caption"]
