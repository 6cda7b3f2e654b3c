import pytest

from curate.download.status import classify, statuses


@pytest.mark.parametrize("i2d,msg,ctype,expected", [
    ("success", None, None, "success"),
    ("failed_to_download", "HTTP Error 404: Not Found", None, "http_error"),
    ("failed_to_download", "<urlopen error timed out>", None, "timeout"),
    ("failed_to_download", "The read operation timed out", None, "timeout"),
    ("failed_to_download", "Use of image disallowed by X-Robots-Tag directive", None, "opted_out"),
    ("failed_to_download", "<urlopen error curate-blocked: x resolves to 10.0.0.1 (private)>", None,
     "blocked_address"),
    ("failed_to_download", "unknown url type: ''", None, "invalid_url"),
    ("failed_to_download", "<urlopen error [Errno 111] Connection refused>", None, "network_error"),
    ("failed_to_resize", "Image decoding error", "text/html; charset=utf-8", "not_image"),
    ("failed_to_resize", "Image decoding error", "image/jpeg", "decode_error"),
    ("failed_to_resize", "Image decoding error", None, "decode_error"),
    ("failed_to_download", "something new", None, "download_error"),
])
def test_classify(i2d, msg, ctype, expected):
    assert classify(i2d, msg, ctype) == expected
    assert expected in statuses()
