"""DedupConfig: which checks run and their thresholds (frozen; the CLI builds it at the edge)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DedupConfig:
    by_url: bool = True  # canonical URL
    by_pair: bool = True  # same image sha256 and same caption
    by_image: bool = True  # same image sha256
    near: bool = True  # perceptual-hash near-duplicates
    # pHash bits that may differ for two images to count as near-duplicates. 3 of 64 catches re-encodes
    # and resizes (imagededup's own PHash tests use <= 10 for "duplicates"; we stay conservative, see README).
    near_distance: int = 3
    eval_images: str | None = None  # folder of evaluation images to decontaminate against
    eval_distance: int | None = None  # None = near_distance
    hash_lists: tuple[str, ...] = ()  # safety hash lists (md5/sha1/sha256/phash hex; text, CSV or parquet)
    hash_list_distance: int = 3  # pHash entries of a hash list match within this many bits
    placeholder_min_urls: int = 5  # a hash shared by this many distinct canonical URLs is a placeholder; 0 = off

    def __post_init__(self) -> None:
        for name in ("near_distance", "hash_list_distance", "placeholder_min_urls"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.eval_distance is not None and self.eval_distance < 0:
            raise ValueError(f"eval_distance must be >= 0, got {self.eval_distance}")
        for name in ("near_distance", "hash_list_distance"):
            if getattr(self, name) > 63:
                raise ValueError(f"{name} must be < 64, got {getattr(self, name)}")
