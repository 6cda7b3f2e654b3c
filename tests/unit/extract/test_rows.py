"""What a WAT file's image links become: every case of the issue, with values worked out by hand."""

import hashlib

from curate.extract import rows
from curate.extract.synthetic import WatPage, img, record_id, write_wat

PAGE = "https://example.com/a/page.html"


def uid(url, caption, key):
    return hashlib.sha256(f"{url}\x00{caption}\x00{key}".encode()).hexdigest()[:32]


def _pages():
    one = WatPage(PAGE, anchors=3, links=(
        img("https://cdn.example.com/x.jpg", alt="  A  red\u00a0bike "),
        img("/img/root.png", alt="root"),
        img("rel/pic.jpg", alt="rel"),
        img("../up.jpg", alt="up"),
        img("//static.example.org/p.gif", alt="proto"),
        img("data:image/png;base64,AAAA", alt="data"),
        img("javascript:void(0)", alt="js"),
        img("https://cdn.example.com/x.jpg", alt="A red bike"),  # the same pair after normalisation
        img("https://cdn.example.com/x.jpg", alt="another caption"),
        img("https://cdn.example.com/noalt.jpg"),
        img("https://cdn.example.com/t.jpg", alt="", title="a title"),
        img("http://127.0.0.1/x.jpg", alt="loopback"),
        img("http:///nohost.jpg", alt="no host"),
        img("https://example.com/a b.jpg#frag", alt="space"),
        {"path": "IMG@/longdesc", "url": "desc.html"},  # not an image URL: not an image reference at all
    ))
    two = WatPage("https://example.com/b/two.html", base="https://base.example.net/dir/",
                  metas=({"name": "ROBOTS", "content": "NoAI, follow"},), links=(
                      img("x.jpg", alt="based"),
                      img("https://cdn.example.com/x.jpg", alt="A red bike"),  # kept on page one
                  ))
    three = WatPage("https://example.com/c.html", headers={"Content-Type": "text/html", "X-Robots-Tag": "noimageai"},
                    links=(img("c.jpg", alt="header opt-out"),))
    four = WatPage("ftp://files.example.com/index.html", links=(
        img("rel.jpg", alt="no base"), img("https://cdn.example.com/abs.jpg", alt="absolute")))
    return [one, two, three, four]


def test_a_wat_file(tmp_path, extract):
    path = tmp_path / "in.warc.wat.gz"
    records = write_wat(str(path), _pages())
    stats, pairs, rejects = extract(path)
    key = str(path)
    kept = [(r["url"], r["caption"], r["caption_source"], r["page_url"], r["opt_out"]) for r in pairs]
    assert kept == [
        ("https://cdn.example.com/x.jpg", "A red bike", "alt", PAGE, False),
        ("https://example.com/img/root.png", "root", "alt", PAGE, False),
        ("https://example.com/a/rel/pic.jpg", "rel", "alt", PAGE, False),
        ("https://example.com/up.jpg", "up", "alt", PAGE, False),
        ("https://static.example.org/p.gif", "proto", "alt", PAGE, False),
        ("https://cdn.example.com/x.jpg", "another caption", "alt", PAGE, False),
        ("https://cdn.example.com/t.jpg", "a title", "title", PAGE, False),
        ("https://example.com/a%20b.jpg", "space", "alt", PAGE, False),
        ("https://base.example.net/dir/x.jpg", "based", "alt", "https://example.com/b/two.html", True),
        ("https://example.com/c.jpg", "header opt-out", "alt", "https://example.com/c.html", True),
        ("https://cdn.example.com/abs.jpg", "absolute", "alt", "ftp://files.example.com/index.html", False),
    ]
    assert pairs[0]["caption_raw"] == "  A  red\u00a0bike "
    assert pairs[0]["uid"] == uid("https://cdn.example.com/x.jpg", "A red bike", key)
    assert len({r["uid"] for r in pairs}) == len(pairs)
    assert pairs[0]["record_id"] == record_id(2)  # ids count records from 1: page one's request 1, response 2
    assert (pairs[8]["robots"], pairs[9]["robots"]) == ("follow,noai", "noimageai")
    assert all(r["url_attr"] == "src" and r["width"] is None and r["crawl"] is None for r in pairs)

    assert [(r["reason"], r["url_raw"], r["url"]) for r in rejects] == [
        ("bad_scheme", "data:image/png;base64,AAAA", None),
        ("bad_scheme", "javascript:void(0)", None),
        ("duplicate_in_page", "https://cdn.example.com/x.jpg", "https://cdn.example.com/x.jpg"),
        ("no_caption", "https://cdn.example.com/noalt.jpg", "https://cdn.example.com/noalt.jpg"),
        ("blocked_address", "http://127.0.0.1/x.jpg", None),
        ("invalid_url", "http:///nohost.jpg", None),
        ("duplicate_in_file", "https://cdn.example.com/x.jpg", "https://cdn.example.com/x.jpg"),
        ("relative_unresolvable", "rel.jpg", None),
    ]
    assert stats["records"] == records == 12
    assert (stats["pages"], stats["images"], stats["kept"], stats["rejected_total"]) == (4, 19, 11, 8)
    assert stats["with_alt"] == 17  # every image with non-blank alt text, kept or not (19 less noalt, t.jpg)
    assert stats["pages_opted_out"] == 2
    assert stats["rejected"] == {"bad_scheme": 2, "blocked_address": 1, "duplicate_in_file": 1,
                                 "duplicate_in_page": 1, "invalid_url": 1, "no_caption": 1,
                                 "relative_unresolvable": 1}


def test_batches_give_the_same_rows(tmp_path, extract, monkeypatch):
    path = tmp_path / "in.warc.wat.gz"
    write_wat(str(path), _pages())
    whole = extract(path)
    monkeypatch.setattr(rows, "BATCH_IMAGES", 2)  # rows computed after every page or two
    assert extract(path) == whole


def test_settings_change_the_rows(tmp_path, extract):
    path = tmp_path / "in.warc.wat.gz"
    write_wat(str(path), [WatPage(PAGE, links=(img("a.jpg"), img("b.jpg", alt="", title="t"),
                                               img("c.jpg", alt="word " * 20)))])
    _, pairs, rejects = extract(path, require_caption=False, title_fallback=False, max_caption_chars=12,
                                source="pool-a", crawl="CC-MAIN-2099-01")
    assert [(r["url"], r["caption"], r["caption_source"]) for r in pairs] == [
        ("https://example.com/a/a.jpg", None, None), ("https://example.com/a/b.jpg", None, None),
        ("https://example.com/a/c.jpg", "word word", "alt")]
    assert {(r["source"], r["crawl"]) for r in pairs} == {("pool-a", "CC-MAIN-2099-01")}
    assert rejects == []


def test_a_huge_page_is_capped(tmp_path, extract):
    path = tmp_path / "in.warc.wat.gz"
    write_wat(str(path), [WatPage(PAGE, links=tuple(img(f"/i/{k}.jpg", alt=f"image {k}") for k in range(5000)))])
    stats, pairs, rejects = extract(path)
    assert len(pairs) == 2000 and pairs[-1]["url"] == "https://example.com/i/1999.jpg"
    assert len(rejects) == 3000 and {r["reason"] for r in rejects} == {"too_many_images"}
    assert rejects[0]["url_raw"] == "/i/2000.jpg"
    assert stats["images"] == 5000


def test_malformed_records_are_counted_not_fatal(tmp_path, extract):
    path = tmp_path / "in.warc.wat.gz"
    broken = b'{"Envelope": {"Payload-Metadata": {"HTTP-Response-Metadata": {"HTML-Metadata": '
    wrong_shape = b'{"Envelope": "HTML-Metadata"}'
    write_wat(str(path), [broken, WatPage(PAGE, links=(img("ok.jpg", alt="ok"),)), wrong_shape, b"not json"])
    stats, pairs, _ = extract(path)
    assert [r["url"] for r in pairs] == ["https://example.com/a/ok.jpg"]
    assert (stats["records"], stats["records_bad"], stats["pages"]) == (6, 2, 1)  # "not json" lacks the marker


def test_fields_of_another_type_are_rejections_not_failures(tmp_path, extract):
    """A number where a link's url or alt belongs is taken as absent (it used to fail the whole stage)."""
    path = tmp_path / "in.warc.wat.gz"
    links = ({"path": "IMG@/src", "url": 12, "alt": "number url"}, {"path": "IMG@/src", "alt": "no url"},
             {"path": "IMG@/src", "url": "ok.jpg", "alt": 5}, img("good.jpg", alt="good"))
    write_wat(str(path), [WatPage(PAGE, links=links)])
    stats, pairs, rejects = extract(path)
    assert [r["url"] for r in pairs] == ["https://example.com/a/good.jpg"]
    assert [(r["reason"], r["caption"]) for r in rejects] == [
        ("invalid_url", "number url"), ("invalid_url", "no url"), ("no_caption", None)]
    assert (stats["records_bad"], stats["images"], stats["rejected_total"]) == (0, 4, 3)
