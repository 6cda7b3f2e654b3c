import pytest

from curate.dedup.url import canonical_url


@pytest.mark.parametrize("a,b", [
    ("HTTP://Example.COM/a.jpg", "http://example.com/a.jpg"),
    ("http://example.com:80/a.jpg", "http://example.com/a.jpg"),
    ("https://example.com:443/a.jpg#frag", "https://example.com/a.jpg"),
    ("http://example.com/a.jpg?utm_source=x&utm_medium=y", "http://example.com/a.jpg"),
    ("http://example.com/a.jpg?id=3&fbclid=abc", "http://example.com/a.jpg?id=3"),
    ("http://example.com", "http://example.com/"),
])
def test_equivalent_urls_canonicalise_equal(a, b):
    assert canonical_url(a) == canonical_url(b)


@pytest.mark.parametrize("a,b", [
    ("http://example.com/A.jpg", "http://example.com/a.jpg"),  # paths are case-sensitive
    ("http://example.com:8080/a.jpg", "http://example.com/a.jpg"),
    ("http://example.com/a.jpg?id=3", "http://example.com/a.jpg?id=4"),
    ("https://example.com/a.jpg", "http://example.com/a.jpg"),
])
def test_different_resources_stay_different(a, b):
    assert canonical_url(a) != canonical_url(b)


def test_malformed_url_is_kept_as_is():
    assert canonical_url("http://[::1") == "http://[::1"


def test_vectorised_canonical_urls_agree_with_the_parser():
    import random

    import pyarrow as pa

    from curate.dedup.url import canonical_urls

    rng = random.Random(3)
    pieces = ["http", "HTTPS", "Http", "ftp", "javascript"]
    hosts = ["Example.COM", "a-b.c.org", "127.0.0.1", "[::1]", "h_x.org", "user:pw@h.org", "h.org:80",
             "h.org:8080", "h.org:99999", "", "ex ample.org"]
    paths = ["", "/", "/A.jpg", "/a b.jpg", "/x?y=1", "/x?utm_source=q&id=2", "/x#frag", "/%20", "/\tx", "//y"]
    urls = [f"{rng.choice(pieces)}://{rng.choice(hosts)}{rng.choice(paths)}" for _ in range(3000)]
    urls += [" http://a.org/x ", "http://a.org", "not a url", "", "http://[::1", None]
    got = canonical_urls(pa.array(urls, pa.string())).to_pylist()
    assert got == [None if u is None else canonical_url(u) for u in urls]
