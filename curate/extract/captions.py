"""Captions from alt text: the raw text kept, a normalised one used.

Normalised: Unicode NFC; control and format characters (zero-width spaces, soft hyphens, bidi marks)
removed; every run of whitespace (no-break spaces included) one space; trimmed; cut at a word boundary
when longer than the cap. Empty after that is no caption. HTML character references are already decoded
by the parsers (WAT's generator, and selectolax for WARC HTML).
"""

from __future__ import annotations

import unicodedata

# C0/C1 controls other than whitespace, and format characters that render as nothing
_INVISIBLE = {c: None for c in (*range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F, *range(0x80, 0x85),
                                *range(0x86, 0xA0), 0xAD, 0x180E, *range(0x200B, 0x2010), *range(0x202A, 0x202F),
                                *range(0x2060, 0x2065), 0xFEFF)}


def normalise(raw: str | None, max_chars: int) -> str | None:
    """The caption to train on, or None when nothing is left."""
    if not raw:
        return None
    if raw.isascii():
        text = " ".join(raw.translate(_INVISIBLE).split()) if not raw.isprintable() or "  " in raw else raw.strip()
    else:
        text = " ".join(unicodedata.normalize("NFC", raw).translate(_INVISIBLE).split())
    if len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars + 1)
        text = text[:cut if cut > max_chars // 2 else max_chars].rstrip()
    return text or None


def pick(alt: str | None, title: str | None, max_chars: int, title_fallback: bool = True
         ) -> tuple[str | None, str | None, str | None]:
    """(caption, raw text, source): the alt text when it has any, else the title (when allowed)."""
    caption = normalise(alt, max_chars)
    if caption is not None:
        return caption, alt, "alt"
    if title_fallback:
        caption = normalise(title, max_chars)
        if caption is not None:
            return caption, title, "title"
    return None, alt if alt else None, None
