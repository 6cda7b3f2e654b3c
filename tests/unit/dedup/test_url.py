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
