"""The column-wise fast paths give exactly what the scalar functions give, row by row."""

import random

import numpy as np
import pyarrow as pa

from curate.extract import captions, fast, urls

PAGES = [urls.page_base(u) for u in (
    "https://example.com/a/page.html", "http://Shop.Example.net", "https://example.com:8443/x/", None,
    "ftp://files.example.com/", "https://u@host.example/a/b?q=1", "https://10.0.0.1/p/", "https://a.com/a b/")]
PIECES = ["https://cdn.example.com/x.jpg", "HTTP://A.COM/Y.PNG", "/root.png", "rel/pic.jpg", "../up.jpg",
          "./here.jpg", "?v=2", "#top", "//static.example.org/p.gif", "data:image/gif;base64,R0l", "javascript:x",
          "", " ", " /pad.jpg ", "a b.jpg", "https://bücher.example/ü.jpg", "http://127.0.0.1/x", "https://cdn1/x",
          "https://0x7f.1/x", "https://h.com:80/x", "https://h.com:99999/x", "http:///x", "https://u@h.com/x",
          "img.jpg?u=http://x", "c:/win.jpg", "x/./y.jpg", "q\"uote.jpg", "https://h.com/x#f", "https://h.com/?a",
          "https://-bad.com/x", "https://h.com./x", "https://h_1.com/x", None, "//", "/", "https://", "a:b/c.jpg"]


def test_resolve_matches_the_scalar_path():
    rng = random.Random(0)
    raw = [rng.choice(PIECES) for _ in range(3000)] + PIECES
    page_of = np.array([rng.randrange(len(PAGES)) for _ in raw], np.int32)
    url, reason = fast.resolve(pa.array(raw, pa.string()), page_of, PAGES, 60)
    expected = [urls.resolve(r, PAGES[p], 60) for r, p in zip(raw, page_of, strict=True)]
    assert list(zip(url.to_pylist(), reason.to_pylist(), strict=True)) == expected


def test_normalise_matches_the_scalar_path():
    rng = random.Random(1)
    pieces = ["a", "B", " ", "  ", "\t", "\n", "\u00a0", "é", "e\u0301", "\u200b", "\x07", "猫", "x" * 30, ""]
    raw = ["".join(rng.choice(pieces) for _ in range(rng.randrange(8))) for _ in range(3000)] + [None, ""]
    out = fast.normalise(pa.array(raw, pa.string()), 40)
    assert out.to_pylist() == [captions.normalise(r, 40) for r in raw]


def test_empty_inputs():
    assert len(fast.resolve(pa.array([], pa.string()), np.zeros(0, np.int32), PAGES, 60)[0]) == 0
    assert len(fast.normalise(pa.array([], pa.string()), 40)) == 0
