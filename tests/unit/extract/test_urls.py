import pytest

from curate.extract import urls

PAGE = urls.page_base("https://example.com/a/page.html?x=1")


@pytest.mark.parametrize("raw,expected", [
    ("https://cdn.example.com/x.jpg", "https://cdn.example.com/x.jpg"),
    ("HTTP://Example.com/X.jpg", "HTTP://Example.com/X.jpg"),  # kept as written
    ("/img/root.png", "https://example.com/img/root.png"),
    ("rel/pic.jpg", "https://example.com/a/rel/pic.jpg"),
    ("../up.jpg", "https://example.com/up.jpg"),
    ("./here.jpg", "https://example.com/a/here.jpg"),
    ("?v=2", "https://example.com/a/page.html?v=2"),
    ("//static.example.org/p.gif", "https://static.example.org/p.gif"),
    ("  \n/padded.jpg\t ", "https://example.com/padded.jpg"),
    ("/split\n/path.jpg", "https://example.com/split/path.jpg"),
    ("https://example.com/x.jpg#frag", "https://example.com/x.jpg"),
    ("https://example.com/a b.jpg", "https://example.com/a%20b.jpg"),
    ("https://bücher.example/ü.jpg", "https://xn--bcher-kva.example/%C3%BC.jpg"),
    ("https://example.com:8443/x.jpg", "https://example.com:8443/x.jpg"),
    ("https://8.8.8.8/x.jpg", "https://8.8.8.8/x.jpg"),
    ("https://cdn1/x.jpg", "https://cdn1/x.jpg"),  # a single-label name ending in a digit is no address
])
def test_resolved(raw, expected):
    assert urls.resolve(raw, PAGE) == (expected, None)


@pytest.mark.parametrize("raw,reason", [
    ("data:image/png;base64,AAAA", "bad_scheme"),
    ("javascript:void(0)", "bad_scheme"),
    ("blob:https://example.com/1", "bad_scheme"),
    ("mailto:a@example.com", "bad_scheme"),
    ("ftp://example.com/x.jpg", "bad_scheme"),
    ("", "invalid_url"),
    ("   ", "invalid_url"),
    (None, "invalid_url"),
    ("http:///nohost.jpg", "invalid_url"),
    ("https://example.com:99999/x.jpg", "invalid_url"),
    ("https://exa$mple.com/x.jpg", "invalid_url"),
    ("http://127.0.0.1/x.jpg", "blocked_address"),
    ("http://10.0.0.5:8080/x.jpg", "blocked_address"),
    ("http://169.254.169.254/latest/meta-data", "blocked_address"),
    ("http://[::1]/x.jpg", "blocked_address"),
    ("http://127.1/x.jpg", "blocked_address"),  # what getaddrinfo reads as 127.0.0.1
    ("http://2130706433/x.jpg", "blocked_address"),
])
def test_rejected(raw, reason):
    assert urls.resolve(raw, PAGE) == (None, reason)


def test_length_cap():
    long = "https://example.com/" + "a" * 100
    assert urls.resolve(long, PAGE, max_chars=50) == (None, "invalid_url")
    assert urls.resolve(long, PAGE, max_chars=200) == (long, None)


def test_relative_needs_an_http_page():
    for page_url in (None, "", "ftp://files.example.com/index.html", "not a url"):
        base = urls.page_base(page_url)
        assert base is None
        assert urls.resolve("x.jpg", base) == (None, "relative_unresolvable")
        assert urls.resolve("//cdn.example.com/x.jpg", base) == (None, "relative_unresolvable")
        assert urls.resolve("https://cdn.example.com/x.jpg", base) == ("https://cdn.example.com/x.jpg", None)


def test_base_href_wins_and_resolves_against_the_page():
    absolute = urls.page_base("https://example.com/a/page.html", "https://other.example.net/dir/")
    assert urls.resolve("x.jpg", absolute) == ("https://other.example.net/dir/x.jpg", None)
    relative = urls.page_base("https://example.com/a/page.html", "/sub/")
    assert urls.resolve("x.jpg", relative) == ("https://example.com/sub/x.jpg", None)
    assert urls.resolve("//cdn.example.com/y.jpg", urls.page_base("http://e.com/", "https://b.com/")) == (
        "https://cdn.example.com/y.jpg", None)
    # a base that is no http(s) URL is ignored: the page URL is the base
    ignored = urls.page_base("https://example.com/a/page.html", "javascript:alert(1)")
    assert urls.resolve("x.jpg", ignored) == ("https://example.com/a/x.jpg", None)


@pytest.mark.parametrize("page_url", [
    "https://a.com/b/c.html", "HTTPS://A.com", "http://a.com/b/c/?q=1/2", "https://a.com/x.html?q=a/b",
    "https://a.com:8080/x/y", "https://a.com/b/c.html#frag", "https://a.com/b/", "https://a.com/x?",
    "https://u@a.com/x", "https://a.com?x=1", "https://a.com/a b/c", "http://[::1]:80/x/"])
def test_the_plain_base_fast_path_agrees_with_urllib(page_url):
    fast = urls._plain_base(page_url)
    assert fast is None or fast == urls._parsed_base(page_url)


@pytest.mark.parametrize("srcset,best", [
    ("small.jpg 300w, big.jpg 1200w, mid.jpg 800w", "big.jpg"),
    ("a.jpg, b.jpg 2x, c.jpg 1.5x", "b.jpg"),
    ("a.jpg 2x, b.jpg 600w", "b.jpg"),
    ("https://cdn.example.com/w_100,h_100/x.jpg 1x, https://cdn.example.com/w_200,h_200/x.jpg 2x",
     "https://cdn.example.com/w_200,h_200/x.jpg"),
    ("only.jpg", "only.jpg"),
    ("one.jpg,two.jpg 2x", "one.jpg,two.jpg"),  # the standard splits at whitespace first: one URL
    ("one.jpg, two.jpg 2x", "two.jpg"),
    ("", None),
    (None, None),
])
def test_srcset_takes_the_largest_candidate(srcset, best):
    assert urls.srcset_best(srcset) == best
