"""DataComp's baselines (Gadre et al. 2023, arXiv 2304.14108; mlfoundations/datacomp baselines.py)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curate.errors import CurateError
from curate.select.policy import StepResult, register


@register
@dataclass(frozen=True)
class DataCompBasic:
    """DataComp "basic filtering": English caption, > 2 words, > 5 characters, shorter image side
    >= 200 px, aspect ratio <= 3 (datacomp baselines.py, get_basic_filter / basic_filter_helper)."""

    name: ClassVar[str] = "datacomp_basic"
    columns: ClassVar[tuple[str, ...]] = ("caption", "language", "original_width", "original_height")

    language: str = "en"  # fasttext lid.176 prediction must be English
    min_words: int = 3  # "caption_num_words > 2", words by str.split()
    min_chars: int = 6  # "caption_num_chars > 5"
    min_side: int = 200  # "min(original_width, original_height) >= 200"
    max_aspect_ratio: float = 3.0  # "max / min side <= 3.0"

    def evaluate(self, table: pa.Table) -> StepResult:
        captions = [c or "" for c in table.column("caption").to_pylist()]
        lang = np.array(table.column("language").to_pylist(), dtype=object)
        w = np.asarray(table.column("original_width").to_numpy(zero_copy_only=False), dtype=float)
        h = np.asarray(table.column("original_height").to_numpy(zero_copy_only=False), dtype=float)
        short, long_ = np.minimum(w, h), np.maximum(w, h)
        with np.errstate(divide="ignore", invalid="ignore"):
            aspect = np.where(short > 0, long_ / short, np.inf)
        return StepResult([
            ("not_english", lang != self.language),
            ("too_few_words", np.array([len(c.split()) < self.min_words for c in captions])),
            ("caption_too_short", np.array([len(c) < self.min_chars for c in captions])),
            ("image_too_small", ~(short >= self.min_side)),
            ("aspect_ratio", ~(aspect <= self.max_aspect_ratio)),
        ], asdict(self))


@register
@dataclass(frozen=True)
class ClipScore:
    """DataComp "CLIP score" filtering: keep the top `fraction` of the pool by similarity (DataComp's
    best: ViT-L-14 top 30%) or every sample at or above `threshold` (ViT-B-32 >= 0.3 in DataComp).
    With a fraction, exactly ceil(fraction * n) rows are kept; ties at the cut go to the smaller uid."""

    name: ClassVar[str] = "clip_score"
    columns: ClassVar[tuple[str, ...]] = ("uid", "clip_similarity")

    column: str = "clip_similarity"
    fraction: float | None = 0.3  # DataComp CLIP score (L/14 30%)
    threshold: float | None = None

    def __post_init__(self) -> None:
        if (self.fraction is None) == (self.threshold is None):
            raise CurateError("clip_score: give exactly one of fraction and threshold")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise CurateError(f"clip_score: fraction {self.fraction} is not in (0, 1]")

    def evaluate(self, table: pa.Table) -> StepResult:
        sim = np.asarray(table.column(self.column).to_numpy(zero_copy_only=False), dtype=float)
        sim = np.where(np.isnan(sim), -np.inf, sim)
        if self.threshold is not None:
            keep = sim >= self.threshold
            return StepResult([("low_clip_score", ~keep)],
                              {"column": self.column, "threshold": self.threshold, "kept": int(keep.sum())})
        n = len(sim)
        k = math.ceil(self.fraction * n)
        order = np.lexsort((np.array(table.column("uid").to_pylist(), dtype=str), -sim))
        keep = np.zeros(n, dtype=bool)
        keep[order[:k]] = True
        cut = float(sim[order[k - 1]]) if k else math.inf
        return StepResult([("low_clip_score", ~keep)],
                          {"column": self.column, "fraction": self.fraction, "threshold": cut, "kept": k})
