"""The demo pool's planted defects: what each is, the share of rows carrying it (`PoolConfig`), and the
download status and dedup reason each must end with. `curate.demo.pool` writes the pool from these.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFECTS: tuple[str, ...] = (
    "clean",  # English caption of the image, 220-640 px per side, aspect <= 2.5, JPEG
    "mismatched",  # English caption of a different scene (other shape and other colour)
    "non_english",  # fr/de/es caption of the image
    "short_caption",  # English caption of <= 2 words that still matches the image
    "small",  # shorter side 60-180 px (DataComp basic filter: shorter side >= 200)
    "aspect",  # aspect ratio 3.3-4.5, shorter side >= 200 (DataComp basic filter: aspect <= 3)
    "duplicate_image",  # same image bytes as its group's original, under another URL path
    "duplicate_url",  # same URL as its group's original, up to canonicalisation
    "http_404",  # path that does not exist
    "corrupt",  # truncated or garbled JPEG served as image/jpeg
    "not_image",  # HTML or plain text behind a .jpg URL
    "opted_out",  # valid image served with X-Robots-Tag: noai / noimageai
    "near_duplicate",  # re-encoded, resized or 1%-cropped copy of its group's original, another URL
    "placeholder",  # the one "image not available" picture, served at many unrelated URLs
    "eval_contaminated",  # a re-encoded copy of its image is in the evaluation set (eval/)
    "hash_listed",  # a hash of its image is on the stand-in safety hash list (hashlist.txt)
)
# The dedup reason each dedup defect must get (a group's surviving row, kept, is the exception; an image
# copy whose caption equals its original's gets the more specific duplicate_pair).
EXPECTED_DEDUP: dict[str, str] = {
    "duplicate_image": "duplicate_image", "duplicate_url": "duplicate_url", "near_duplicate": "near_duplicate",
    "placeholder": "placeholder_image", "eval_contaminated": "eval_contamination", "hash_listed": "safety_hash_list",
}
COPY_DEFECTS: tuple[str, ...] = ("duplicate_image", "duplicate_url", "near_duplicate")
MIN_PLACEHOLDERS = 6  # above dedup's default placeholder_min_urls (5), whatever the pool size
STATUSES: tuple[str, ...] = ("success", "http_error", "decode_error", "not_image", "opted_out")
EXPECTED_STATUS: dict[str, str] = {
    **{d: "success" for d in DEFECTS},
    "http_404": "http_error",
    "corrupt": "decode_error",
    "not_image": "not_image",  # told apart from a broken image by its Content-Type
    "opted_out": "opted_out",
}


@dataclass(frozen=True)
class PoolConfig:
    """How many rows, the seed, and the share of rows carrying each planted defect.

    The shares are fractions of `n` (rounded per defect); whatever is left is `clean`. Clean rows also
    serve as the originals of duplicate groups, so they must outnumber the groups.
    """

    n: int = 2000
    seed: int = 0
    mismatched: float = 0.08  # caption describes another scene; CLIP score should be low
    non_english: float = 0.08  # fr/de/es caption; language ID should reject
    short_caption: float = 0.05  # <= 2 words; DataComp basic filter wants > 2 words
    small: float = 0.05  # shorter side < 200 px
    aspect: float = 0.05  # aspect ratio > 3
    duplicate_image: float = 0.05  # exact image duplicates of a clean original, other URL
    duplicate_url: float = 0.05  # URL duplicates (after canonicalisation) of a clean original
    http_404: float = 0.04  # download fails with 404
    corrupt: float = 0.03  # body is a broken JPEG; decoding fails
    not_image: float = 0.03  # body is HTML/text; decoding fails
    opted_out: float = 0.04  # X-Robots-Tag: noai; downloader must skip
    near_duplicate: float = 0.03  # perceptual near-duplicates of a clean original, other URL
    placeholder: float = 0.01  # "image not available" placeholder (at least MIN_PLACEHOLDERS rows if > 0)
    eval_contaminated: float = 0.01  # image (re-encoded) is in the evaluation set
    hash_listed: float = 0.01  # image hash is on the safety hash list

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n must be positive, got {self.n}")
        shares = self.shares()
        bad = {k: v for k, v in shares.items() if not 0.0 <= v < 1.0}
        if bad:
            raise ValueError(f"defect shares must be in [0, 1): {bad}")
        if sum(shares.values()) >= 1.0:
            raise ValueError(f"defect shares sum to {sum(shares.values()):.3f}; leave room for clean rows")

    def shares(self) -> dict[str, float]:
        return {d: getattr(self, d) for d in DEFECTS if d != "clean"}

    def counts(self) -> dict[str, int]:
        """Rows per defect, in `DEFECTS` order; `clean` takes the remainder."""
        planted = {d: round(share * self.n) for d, share in self.shares().items()}
        if self.placeholder > 0:
            planted["placeholder"] = max(planted["placeholder"], MIN_PLACEHOLDERS)
        clean = self.n - sum(planted.values())
        if clean < 0:
            raise ValueError(f"n={self.n} is too small for the configured shares")
        return {"clean": clean, **planted}
