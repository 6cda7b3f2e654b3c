"""Column mappings for the URL lists users already have: a plain list, DataComp metadata, LAION parquet.

A preset names the url, caption, uid and source columns, the input columns carried through to
download/samples under our names (samples.v3), and the face boxes carried to the fetch tasks (urls.v3) and
whether they are blurred by default. Explicit `url_col`/`caption_col`/`uid_col`/`source_col`/`blur_faces`
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
    faces: str | None = None  # face boxes to blur ([x0, y0, x1, y1] in [0, 1]), carried to the fetch tasks
    blur_faces: bool = False  # --blur-faces by default


PRESETS: dict[str, Preset] = {
    "plain": Preset("url", "caption", "uid"),
    # DataComp metadata parquet: uid is 32 hex chars; sha256 is the image's (datacomp/download_upstream.py)
    # face_bboxes: blurred by default, as DataComp's own downloader does (datacomp/download_upstream.py)
    "datacomp": Preset("url", "text", "uid", (("original_width", "input_width"),
                                              ("original_height", "input_height"), ("sha256", "input_sha256")),
                       faces="face_bboxes", blur_faces=True),
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
    faces: str | None = None
    blur_faces: bool = False


def resolve(config: DownloadConfig) -> Columns:
    """The input columns `config` reads: its preset's, overridden by any explicit column."""
    preset = PRESETS.get(config.preset)
    if preset is None:
        raise CurateError(f"unknown preset {config.preset!r}; choose one of {', '.join(PRESETS)}")
    blur = preset.blur_faces if config.blur_faces is None else config.blur_faces
    return Columns(url=config.url_col or preset.url, caption=config.caption_col or preset.caption,
                   uid=config.uid_col or preset.uid, carry=preset.carry, source=config.source_col or preset.source,
                   faces=preset.faces or ("face_bboxes" if blur else None), blur_faces=blur)
