"""Map img2dataset's per-sample status and message to our closed set of download statuses."""

from __future__ import annotations

from curate import schemas
from curate.download.guard import BLOCKED_PREFIX
from curate.download.limits import DEADLINE_PREFIX, TOO_LARGE_PREFIX

SUCCESS = "success"

# (substring of the lower-cased message, status), first match wins
_MESSAGE_RULES: tuple[tuple[str, str], ...] = (
    (BLOCKED_PREFIX, "blocked_address"),
    (TOO_LARGE_PREFIX, "too_large"),
    (DEADLINE_PREFIX, "timeout"),
    ("infinite loop", "redirect_error"),  # urllib: a loop, or more than 10 redirects
    ("redirection to url", "blocked_address"),  # urllib refuses a redirect to a non-HTTP scheme
    ("x-robots-tag", "opted_out"),
    ("http error", "http_error"),
    ("timed out", "timeout"),
    ("timeout", "timeout"),
    ("unknown url type", "invalid_url"),
    ("no host given", "invalid_url"),
    ("control characters", "invalid_url"),
    ("connection refused", "network_error"),
    ("connection reset", "network_error"),
    ("remote end closed", "network_error"),
    ("name or service not known", "network_error"),
    ("temporary failure in name resolution", "network_error"),
    ("incompleteread", "network_error"),
)


def classify(i2d_status: str | None, message: str | None, content_type: str | None = None) -> str:
    """The status of one sample; `content_type` tells a non-image body from a broken image."""
    if i2d_status == SUCCESS:
        return SUCCESS
    text = (message or "").lower()
    for needle, status in _MESSAGE_RULES:
        if needle in text:
            return status
    if i2d_status == "failed_to_resize":
        if content_type and not content_type.lower().startswith(("image/", "application/octet-stream")):
            return "not_image"
        return "decode_error"
    return "download_error"


def statuses() -> frozenset[str]:
    return schemas.reasons("download") | {SUCCESS}
