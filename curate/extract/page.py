"""One crawled page as the extractor sees it, whichever file format it came from."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

_SPLIT = re.compile(r"[\s,]+")


class ImageRef(NamedTuple):
    """One <img> (WARC HTML) or one IMG link (WAT): its URL attributes in order of preference, as written."""

    candidates: tuple[tuple[str, str | None], ...]  # (attribute, value)
    alt: str | None = None
    title: str | None = None
    width: int | None = None
    height: int | None = None


class Page(NamedTuple):
    url: str | None  # the page's URL (WARC-Target-URI)
    images: list[ImageRef]
    base_href: str | None = None  # <base href>, as written
    robots: frozenset[str] = frozenset()  # directives of its robots meta tags and X-Robots-Tag header, lowercase
    record_id: str | None = None  # WARC-Record-ID of the page's response record


def directives(values: Iterable[str | None]) -> frozenset[str]:
    """`noai, NoImageAI` -> {"noai", "noimageai"}. A directive scoped to a user agent (`otherbot: noai`) is
    taken as applying to us too: opting out is honoured whenever it is unclear."""
    out: set[str] = set()
    for value in values:
        if value:
            out.update(t.rstrip(":") for t in _SPLIT.split(value.lower()) if t)
    return frozenset(out)


def dimension(value: str | None) -> int | None:
    """A width/height attribute as whole pixels (`300`, `300px`, ` 300 `); None for `100%`, `auto`, junk."""
    if not value:
        return None
    text = value.strip().lower().removesuffix("px").strip()
    if not text.isdigit() or len(text) > 6:
        return None
    n = int(text)
    return n if n > 0 else None
