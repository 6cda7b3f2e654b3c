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
    ("failed_to_download", "curate-too-large: body is over the cap of 10 bytes", None, "too_large"),
    ("failed_to_resize", "curate-too-large: image of 9000x9000 pixels is over the cap of 1000", None, "too_large"),
    ("failed_to_download", "curate-deadline: the total deadline of 1 s passed (timed out)", None, "timeout"),
    ("failed_to_download", "HTTP Error 302: The HTTP server returned a redirect error that would lead to an "
                           "infinite loop.\nThe last 30x error message was:\nFound", None, "redirect_error"),
    ("failed_to_download", "HTTP Error 302: redirection to url 'file:///etc/passwd' is not allowed", None,
     "blocked_address"),
    ("failed_to_download", "Remote end closed connection without response", None, "network_error"),
])
def test_classify(i2d, msg, ctype, expected):
    assert classify(i2d, msg, ctype) == expected
    assert expected in statuses()
