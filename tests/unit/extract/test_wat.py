"""The two WAT readers: the fast one (msgspec against the WAT shape) answers exactly as the reference one (a whole
parse) for every record it decides, and hands every record it cannot decide to the reference one."""

from __future__ import annotations

import json
import random

import pytest

from curate.extract import wat
from curate.extract.page import Page
from curate.extract.synthetic import WatPage, cc_like_pages, img, record_id, wat_record

ATTRS = frozenset(("data-src", "src", "srcset", "data-srcset"))
NAMES = frozenset(("robots",))
PAGE = "https://example.com/a/page.html"


def _reference(data: bytes):
    try:
        return wat._reference(data, ATTRS, NAMES)
    except wat.BadRecord:
        return "bad"


def _page(data: bytes):
    try:
        return wat.page(data, ATTRS, NAMES)
    except wat.BadRecord:
        return "bad"


def test_the_fast_reader_takes_common_crawl_records():
    links = (img("a.jpg", alt="a cat"), {"path": "A@/href", "url": "/x", "text": "x"},
             img("b.jpg", title="t", attr="data-src"), {"path": "IMG@/usemap", "url": "#m"}, img("c.jpg"))
    page = WatPage(PAGE, links=links, base="/base/", metas=({"name": "ROBOTS", "content": "NoAI, index"},),
                   headers={"x-robots-tag": "noimageai", "Content-Type": "text/html"}, anchors=30)
    data = wat_record(page, 7)
    expected = Page(PAGE, [((("src", "a.jpg"),), "a cat", None, None, None),
                           ((("data-src", "b.jpg"),), None, "t", None, None),
                           ((("src", "c.jpg"),), None, None, None, None)],
                    "/base/", frozenset({"noai", "index", "noimageai"}), record_id(7))
    assert wat._fast(data, ATTRS, NAMES) == expected
    assert _reference(data) == expected
    assert wat.page(wat_record(page, 7, "request"), ATTRS, NAMES) is None  # no HTML metadata: not a page
    fast = [wat._fast(wat_record(p, k), ATTRS, NAMES) for k, p in enumerate(cc_like_pages(200, anchors=(5, 40)))]
    assert all(isinstance(p, Page) for p in fast)  # none needed the reference reader
    assert sum(len(p.images) for p in fast) > 1000


def _with(record: bytes, old: bytes, new: bytes) -> bytes:
    assert old in record
    return record.replace(old, new, 1)


BASE = wat_record(WatPage(PAGE, links=(img("a.jpg", alt="a cat"),), anchors=3), 1)


@pytest.mark.parametrize(("label", "data", "expected"), [
    ("bytes that are not UTF-8 where the fast reader skips", _with(BASE, b"read more about topic 1", b"read \xff"),
     Page(PAGE, [((("src", "a.jpg"),), "a cat", None, None, None)], None, frozenset(), record_id(1))),
    ("a UTF-8-encoded surrogate in an alt: U+FFFD", _with(BASE, b'"alt":"a cat"', b'"alt":"a\xed\xa0\x80"'),
     Page(PAGE, [((("src", "a.jpg"),), "a\ufffd\ufffd\ufffd", None, None, None)], None, frozenset(), record_id(1))),
    ("an escaped lone surrogate", _with(BASE, b"read more about topic 1", b"\\ud800"), "bad"),
    ("nesting deeper than the recursion limit", _with(BASE, b'"Headers-Length":"512"',
                                                      b'"Headers-Length":' + b"[" * 5000 + b"]" * 5000), "bad"),
    ("cut short", BASE[:-40], "bad"),
    ("not an object", b'["HTML-Metadata"]', "bad"),
    ("a link that is not an object", _with(BASE, b'"Links":[', b'"Links":[7,'), "bad"),
    ("a number for a URL: taken as absent", _with(BASE, b'"url":"a.jpg"', b'"url":12'),
     Page(PAGE, [((("src", None),), "a cat", None, None, None)], None, frozenset(), record_id(1))),
    ("a list for the page URL: taken as absent", _with(BASE, f'"WARC-Target-URI":"{PAGE}"'.encode(),
                                                       b'"WARC-Target-URI":["x"]'),
     Page(None, [((("src", "a.jpg"),), "a cat", None, None, None)], None, frozenset(), record_id(1))),
    ("a null Head and Links",
     _with(_with(BASE, b'"Head":{', b'"Head":null,"x":{'), b'"Links":[', b'"Links":null,"y":['),
     Page(PAGE, [], None, frozenset(), record_id(1))),
    ("an empty object for Links", _with(BASE, b'"Links":[', b'"Links":{},"y":['),
     Page(PAGE, [], None, frozenset(), record_id(1))),
    ("an escaped key and a repeated one", _with(BASE, b'"path":"IMG@/src","url":"a.jpg"',
                                                b'"p\\u0061th":"IMG@/src","url":"b.jpg","url":"a.jpg"'),
     Page(PAGE, [((("src", "a.jpg"),), "a cat", None, None, None)], None, frozenset(), record_id(1))),
    ("not a response", _with(BASE, b'"WARC-Type":"response"', b'"WARC-Type":"revisit"'), None),
])
def test_records_the_fast_reader_hands_on(label, data, expected):
    assert _page(data) == expected, label
    assert _reference(data) == expected, label
    fast = wat._fast(data, ATTRS, NAMES)
    assert fast is wat._UNSURE or fast == expected, label


def _mutations(record: bytes, rng: random.Random):
    """Damaged and reshaped copies of one record: bytes flipped or cut, values of other types, pretty-printed."""
    doc = json.loads(record)
    for _ in range(60):
        kind = rng.randrange(5)
        if kind == 0:
            data = bytearray(record)
            data[rng.randrange(len(data))] = rng.randrange(256)
            yield bytes(data)
        elif kind == 1:
            yield record[: rng.randrange(len(record))]
        elif kind == 2:
            yield json.dumps(doc, indent=1, ensure_ascii=False).encode()
        else:
            copy = json.loads(record)
            node, key = _random_slot(copy, rng)
            node[key] = rng.choice([None, 3, 2.5, True, [], {}, "", "x", ["a"], {"k": "v"}, "é\u00e9"])
            yield json.dumps(copy, ensure_ascii=bool(rng.randrange(2))).encode()


def _random_slot(doc, rng: random.Random):
    node, key = doc, None
    for _ in range(12):
        child = node if key is None else node[key]
        keys = list(child) if isinstance(child, dict) else range(len(child)) if isinstance(child, list) else []
        if not keys or (key is not None and rng.random() < 0.25):
            break
        node, key = child, rng.choice(list(keys))
    return (node, key) if key is not None else (doc, "Envelope")


def test_mutated_records_get_the_reference_answer():
    rng = random.Random(20261207)
    records = [wat_record(p, k) for k, p in enumerate(cc_like_pages(12, seed=3, anchors=(2, 6)))]
    decided = unsure = 0
    for record in records:
        for data in _mutations(record, rng):
            if wat.MARKER not in data:
                continue
            expected = _reference(data)
            assert _page(data) == expected
            fast = wat._fast(data, ATTRS, NAMES)
            if fast is wat._UNSURE:
                unsure += 1
            else:
                decided += 1
                assert fast == expected, data[:200]
    assert decided > 100 and unsure > 100  # both readers were exercised
