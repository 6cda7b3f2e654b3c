"""DedupConfig: which checks run and their thresholds (frozen; the CLI builds it at the edge)."""

from __future__ import annotations

from dataclasses import dataclass, field

NEAR_HASHES = ("phash", "pdq")
BITS = {"phash": 64, "pdq": 256}
# facebook/ThreatExchange pdq/README.md: "Distance Threshold to consider two hashes to be similar/matching: <=31"
# (of 256 bits); the same value as the download's write-time check (curate.download.safety.PDQ_DISTANCE)
PDQ_DISTANCE = 31


@dataclass(frozen=True)
class DedupConfig:
    by_url: bool = True  # canonical URL
    by_pair: bool = True  # same image sha256 and same caption
    by_image: bool = True  # same image sha256
    near: bool = True  # perceptual-hash near-duplicates
    # pHash bits that may differ for two images to count as near-duplicates. 3 of 64 catches re-encodes
    # and resizes (imagededup's own PHash tests use <= 10 for "duplicates"; we stay conservative, see README).
    near_distance: int = 3
    # folder of evaluation images to decontaminate against (fingerprinted with its content)
    eval_images: str | None = field(default=None, metadata={"files": True})
    eval_distance: int | None = None  # in bits of `near_hash`; None = that hash's near distance
    # safety hash lists (md5/sha1/sha256/phash/pdq hex; text, CSV or parquet), fingerprinted with their content
    hash_lists: tuple[str, ...] = field(default=(), metadata={"files": True})
    hash_list_distance: int = 3  # pHash entries of a hash list match within this many bits
    placeholder_min_urls: int = 5  # a hash shared by this many distinct canonical URLs is a placeholder; 0 = off
    # which perceptual hash the near-duplicate and eval checks compare: "phash" (64 bits, `near_distance`)
    # or "pdq" (Meta's 256-bit PDQ, `pdq_distance`); hash lists always use both kinds of entry they carry
    near_hash: str = "phash"
    pdq_distance: int = PDQ_DISTANCE  # PDQ bits two near-duplicates (or a pool and an eval image) may differ in
    hash_list_pdq_distance: int = PDQ_DISTANCE  # PDQ entries of a hash list match within this many bits

    def __post_init__(self) -> None:
        if self.near_hash not in NEAR_HASHES:
            raise ValueError(f"near_hash must be one of {', '.join(NEAR_HASHES)}, got {self.near_hash!r}")
        limits = {"near_distance": 64, "hash_list_distance": 64, "placeholder_min_urls": None, "pdq_distance": 256,
                  "hash_list_pdq_distance": 256, "eval_distance": BITS[self.near_hash]}
        for name, bits in limits.items():
            value = getattr(self, name)
            if value is None:
                continue
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
            if bits is not None and value >= bits:
                raise ValueError(f"{name} must be < {bits}, got {value}")

    @property
    def near_bits(self) -> int:
        """The near-duplicate distance in bits of `near_hash`."""
        return self.pdq_distance if self.near_hash == "pdq" else self.near_distance

    @property
    def eval_bits(self) -> int:
        """The eval-contamination distance in bits of `near_hash`."""
        return self.near_bits if self.eval_distance is None else self.eval_distance
