"""Column mappings for the URL lists users already have: a plain list, DataComp metadata, LAION parquet.

A preset names the url, caption, uid and source columns, and the input columns carried through to
download/samples under our names (samples.v3). Explicit `url_col`/`caption_col`/`uid_col`/`source_col`
win over it.
"""

from __future__ import annotations

from dataclasses import dataclass

from curate.download.config import DownloadConfig
from curate.errors import CurateError


@dataclass(frozen=True)
class Preset:
    url: str
    caption: str
    uid: str
    carry: tuple[tuple[str, str], ...] = ()  # (input column, samples.v3 column), used when present
    source: str = "source"  # the row's source dataset, for select's `mix` step; null when absent


PRESETS: dict[str, Preset] = {
    "plain": Preset("url", "caption", "uid"),
    # DataComp metadata parquet: uid is 32 hex chars; sha256 is the image's (datacomp/download_upstream.py)
    "datacomp": Preset("url", "text", "uid", (("original_width", "input_width"),
                                              ("original_height", "input_height"), ("sha256", "input_sha256"))),
    # LAION-400M/5B parquet: no uid (we derive one); similarity is the CLIP ViT-B/32 image-text cosine
    "laion": Preset("URL", "TEXT", "uid", (("WIDTH", "input_width"), ("HEIGHT", "input_height"),
                                           ("similarity", "similarity"))),
}

# samples.v3 columns filled from the input, with their Arrow types in schemas/urls.v2.json and samples.v3.json
CARRIED = ("input_width", "input_height", "input_sha256", "similarity", "source")


@dataclass(frozen=True)
class Columns:
    url: str
    caption: str
    uid: str
    carry: tuple[tuple[str, str], ...]
    source: str


def resolve(config: DownloadConfig) -> Columns:
    """The input columns `config` reads: its preset's, overridden by any explicit column."""
    preset = PRESETS.get(config.preset)
    if preset is None:
        raise CurateError(f"unknown preset {config.preset!r}; choose one of {', '.join(PRESETS)}")
    return Columns(url=config.url_col or preset.url, caption=config.caption_col or preset.caption,
                   uid=config.uid_col or preset.uid, carry=preset.carry, source=config.source_col or preset.source)
