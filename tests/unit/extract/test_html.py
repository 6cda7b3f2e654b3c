"""WARC HTML responses: srcset, data-src, <base>, width/height, broken markup, encodings, huge pages."""

import gzip
import zlib

from curate.extract import html
from curate.extract.synthetic import HtmlPage, write_warc

URL = "https://example.com/a/page.html"


def _page(body: bytes, **kw) -> HtmlPage:
    return HtmlPage(URL, body, **kw)


def test_img_attributes(tmp_path, extract):
    body = b"""<!doctype html><html><head><base href="/sub/"><title>t</title></head><body>
      <img src="a.jpg" alt="caf&eacute; au lait" width="300px" height="200">
      <img data-src="real.jpg" src="data:image/gif;base64,R0lGOD" alt="lazy" width="100%">
      <img srcset="small.jpg 300w, big.jpg 1200w, mid.jpg 800w" alt="set">
      <img src="data:image/png;base64,AAAA" alt="only data">
      <img alt="no url at all">
      <img src="//cdn.example.org/p.png" alt="protocol relative">
      <img src="a.jpg" alt="caf&eacute;  au lait">
    </body></html>"""
    path = tmp_path / "in.warc.gz"
    write_warc(str(path), [_page(body)])
    stats, pairs, rejects = extract(path, source_format="warc")
    assert [(r["url"], r["caption"], r["url_attr"], r["width"], r["height"]) for r in pairs] == [
        ("https://example.com/sub/a.jpg", "café au lait", "src", 300, 200),
        ("https://example.com/sub/real.jpg", "lazy", "data-src", None, None),
        ("https://example.com/sub/big.jpg", "set", "srcset", None, None),
        ("https://cdn.example.org/p.png", "protocol relative", "src", None, None)]
    assert [(r["reason"], r["url_attr"], r["url_raw"]) for r in rejects] == [
        ("bad_scheme", "src", "data:image/png;base64,AAAA"),
        ("no_url", None, None),
        ("duplicate_in_page", "src", "a.jpg")]
    assert (stats["records"], stats["pages"], stats["images"]) == (1, 1, 7)


def test_broken_markup_is_read_as_a_browser_would(tmp_path, extract):
    body = (b"<html><body><div><p>unclosed <span>tags</div></span><table><tr><td>"
            b"<img src=unquoted.jpg alt=plain></td>"  # unquoted attributes
            b"<p><img src='single.jpg' alt='single quotes'>"
            b"<IMG SRC=\"UPPER.JPG\" ALT=\"upper case\">"
            b"<img src=\"cut.jpg\" alt=\"cut off")  # a tag cut at the end of the file: no element
    path = tmp_path / "in.warc.gz"
    write_warc(str(path), [_page(body)])
    _, pairs, rejects = extract(path, source_format="warc")
    # content a table does not allow (the <p> and what follows it) is moved before the table, as browsers do
    assert [(r["url"], r["caption"]) for r in pairs] == [
        ("https://example.com/a/single.jpg", "single quotes"), ("https://example.com/a/UPPER.JPG", "upper case"),
        ("https://example.com/a/unquoted.jpg", "plain")]
    assert rejects == []


def test_encodings(tmp_path, extract):
    latin = b'<img src="x.jpg" alt="Cr\xe8me br\xfbl\xe9e">'  # windows-1252 bytes, nothing declared
    sjis = '<meta charset="shift_jis"><img src="y.jpg" alt="猫の写真">'.encode("shift_jis")
    header = '<img src="z.jpg" alt="été">'.encode("latin-1")
    bom = b"\xef\xbb\xbf" + '<img src="w.jpg" alt="naïve">'.encode()
    path = tmp_path / "in.warc.gz"
    write_warc(str(path), [_page(latin, content_type="text/html"), _page(sjis, content_type="text/html"),
                           _page(header, content_type="text/html; charset=ISO-8859-1"),
                           _page(bom, content_type="text/html; charset=windows-1251")])
    stats, pairs, _ = extract(path, source_format="warc")
    assert [r["caption"] for r in pairs] == ["Crème brûlée", "猫の写真", "été", "naïve"]
    assert stats["pages_decoded_fallback"] == 1


def test_robots_meta_and_header(tmp_path, extract):
    path = tmp_path / "in.warc.gz"
    write_warc(str(path), [
        _page(b'<meta name="Robots" content="noindex, NOIMAGEAI"><img src="a.jpg" alt="meta">'),
        _page(b'<img src="b.jpg" alt="header">', headers=(("X-Robots-Tag", "noai"),)),
        _page(b'<meta name="robots" content="index, follow"><img src="c.jpg" alt="allowed">'),
        _page(b'<meta name="googlebot" content="noai"><img src="d.jpg" alt="other robot">')])
    stats, pairs, _ = extract(path, source_format="warc")
    assert [(r["caption"], r["opt_out"], r["robots"]) for r in pairs] == [
        ("meta", True, "noimageai,noindex"), ("header", True, "noai"), ("allowed", False, "follow,index"),
        ("other robot", False, None)]
    assert stats["pages_opted_out"] == 2


def test_huge_pages_are_cut_and_other_records_skipped(tmp_path, extract):
    filler = b"<p>" + b"x" * 100_000 + b"</p>"
    body = b'<img src="first.jpg" alt="first">' + filler + b'<img src="late.jpg" alt="late">'
    path = tmp_path / "in.warc.gz"
    write_warc(str(path), [_page(body), HtmlPage(URL, b"\x89PNG....", content_type="image/png")])
    stats, pairs, _ = extract(path, source_format="warc", max_html_bytes=50_000)
    assert [r["caption"] for r in pairs] == ["first"]
    assert (stats["records"], stats["pages"], stats["pages_truncated"]) == (2, 1, 1)
    _, pairs, _ = extract(path, source_format="warc")
    assert [r["caption"] for r in pairs] == ["first", "late"]


def test_content_encoding_is_decoded_when_it_is_true(tmp_path, extract):
    body = b'<img src="a.jpg" alt="plain">'
    path = tmp_path / "in.warc.gz"
    write_warc(str(path), [
        _page(gzip.compress(b'<img src="g.jpg" alt="gzip">'), headers=(("Content-Encoding", "gzip"),)),
        _page(zlib.compress(b'<img src="d.jpg" alt="deflate">'), headers=(("Content-Encoding", "deflate"),)),
        _page(body, headers=(("Content-Encoding", "gzip"),)),  # says gzip but is not: read as it is
        _page(body)])
    stats, pairs, _ = extract(path, source_format="warc")
    assert [r["caption"] for r in pairs] == ["gzip", "deflate", "plain"]  # the last: a duplicate of the third
    assert (stats["pages"], stats["files_damaged"], stats["rejected"]) == (4, 0, {"duplicate_in_file": 1})


def test_codec_labels():
    assert html.codec("ISO-8859-1") == "cp1252"  # as the HTML standard reads it
    assert html.codec("Shift_JIS") == "shift_jis"
    assert html.codec("no-such-charset") is None
    assert html.codec("base64") is None  # not a text encoding
    assert html.decode(b"\xff\xfeh\x00i\x00") == ("hi", False)
