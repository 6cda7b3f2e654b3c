"""DataComp's baselines (Gadre et al. 2023, arXiv 2304.14108; mlfoundations/datacomp baselines/apply_filter.py)
and DFN's top fraction (Fang et al. 2023, arXiv 2309.17425)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curate.errors import CurateError
from curate.select.policy import PoolView, StepResult, register
from curate.select.text import LemmaMatcher, imagenet21k_lemmas


def strings(table: pa.Table, name: str) -> np.ndarray:
    return np.array([c or "" for c in table.column(name).to_pylist()], dtype=object)


def scores(table: pa.Table, name: str) -> np.ndarray:
    """A score column as float64, with null and NaN as -inf (never kept by a cut, ranked last)."""
    col = table.column(name)
    arr = np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.where(np.isnan(arr), -np.inf, arr)


def caption_checks(table: pa.Table, language: str, min_words: int, min_chars: int) -> list[tuple[str, np.ndarray]]:
    captions = strings(table, "caption")
    lang = strings(table, "language")
    return [("not_english", lang != language),
            ("too_few_words", np.array([len(c.split()) < min_words for c in captions], dtype=bool)),
            ("caption_too_short", np.array([len(c) < min_chars for c in captions], dtype=bool))]


@register
@dataclass(frozen=True)
class DataCompBasic:
    """DataComp "basic filtering": English caption, > 2 words, > 5 characters, shorter image side
    >= 200 px, aspect ratio <= 3 (datacomp apply_filter.py, load_uids_with_basic_filter_helper)."""

    name: ClassVar[str] = "datacomp_basic"
    columns: ClassVar[tuple[str, ...]] = ("caption", "language", "original_width", "original_height")

    language: str = "en"  # fasttext lid.176 prediction must be English
    min_words: int = 3  # "caption_num_words > 2", words by str.split()
    min_chars: int = 6  # "caption_num_chars > 5"
    min_side: int = 200  # "min(original_width, original_height) >= 200"
    max_aspect_ratio: float = 3.0  # "max / min side <= 3.0"

    def evaluate(self, table: pa.Table) -> StepResult:
        w = np.asarray(table.column("original_width").to_numpy(zero_copy_only=False), dtype=float)
        h = np.asarray(table.column("original_height").to_numpy(zero_copy_only=False), dtype=float)
        short, long_ = np.minimum(w, h), np.maximum(w, h)
        with np.errstate(divide="ignore", invalid="ignore"):
            aspect = np.where(short > 0, long_ / short, np.inf)
        return StepResult([
            *caption_checks(table, self.language, self.min_words, self.min_chars),
            ("image_too_small", ~(short >= self.min_side)),
            ("aspect_ratio", ~(aspect <= self.max_aspect_ratio)),
        ], asdict(self))


@register
@dataclass(frozen=True)
class ClipScore:
    """DataComp "CLIP score" filtering: keep the top `fraction` of the pool by a score column (DataComp's
    best: ViT-L-14 top 30%) or every sample at or above `threshold` (ViT-B-32 >= 0.3 in DataComp).

    A fraction keeps exactly ceil(fraction * n) rows, ranked by (score desc, uid asc), so ties at the cut
    go to the smaller uid (DataComp keeps every row >= the (n * fraction)-th score, ties included). `over`
    says which rows n counts: `pool` (DataComp: the whole pool, whatever earlier steps rejected) or
    `kept` (the rows earlier steps kept). With a policy target size the cut is chosen instead so that
    exactly the target is kept after every other step."""

    name: ClassVar[str] = "clip_score"
    columns: ClassVar[tuple[str, ...]] = ("uid",)
    reason: ClassVar[str] = "low_clip_score"

    column: str = "clip_similarity"  # DataComp uses clip_l14_similarity_score / clip_b32_similarity_score
    fraction: float | None = 0.3  # DataComp CLIP score (L/14 30%)
    threshold: float | None = None
    over: str = "pool"
    _target: int | None = None
    _cut_uid: str | None = None  # with a fraction or target: the last kept uid at the cut score

    def __post_init__(self) -> None:
        if self._target is None and self._cut_uid is None and (self.fraction is None) == (self.threshold is None):
            raise CurateError(f"{self.name}: give exactly one of fraction and threshold")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise CurateError(f"{self.name}: fraction {self.fraction} is not in (0, 1]")
        if self.over not in ("pool", "kept"):
            raise CurateError(f"{self.name}: over must be 'pool' or 'kept', not {self.over!r}")

    @property
    def needed(self) -> tuple[str, ...]:
        return ("uid", self.column)

    def unresolved(self) -> bool:
        return self._cut_uid is None and (self.fraction is not None or self._target is not None)

    def needs_pool(self) -> bool:
        """Only a cut among the rows earlier steps kept needs them decided first."""
        return self.unresolved() and self.over == "kept"

    def with_target(self, n: int) -> ClipScore:
        return replace(self, _target=n, fraction=None, threshold=None, over="kept")

    def resolve(self, pool: PoolView) -> ClipScore:
        if not self.unresolved():
            return self
        kept_only = self.over == "kept"
        n = pool.count(kept_only=kept_only)
        k = self._target if self._target is not None else math.ceil(self.fraction * n)
        if k > n:
            raise CurateError(f"{self.name}: target size {k} is unreachable: only {n} samples pass the other steps")
        if k == 0:
            return replace(self, threshold=math.inf, _cut_uid="")
        cut, uid = pool.kth(self.column, k, kept_only=kept_only)
        return replace(self, threshold=cut, _cut_uid=uid)

    def evaluate(self, table: pa.Table) -> StepResult:
        sim = scores(table, self.column)
        if self._cut_uid is None:
            keep = sim >= self.threshold
        else:
            uids = np.array(table.column("uid").to_pylist(), dtype=object)
            keep = (sim > self.threshold) | ((sim == self.threshold) & (uids <= self._cut_uid))
        return StepResult([(self.reason, ~keep)], self.report())

    def report(self) -> dict:
        out = {"column": self.column, "fraction": self.fraction, "threshold": self.threshold, "over": self.over}
        if self._target is not None:
            out["target_size"] = self._target
        if self._cut_uid is not None:
            out["cut_uid"] = self._cut_uid
        return out


@register
@dataclass(frozen=True)
class DFN(ClipScore):
    """Data Filtering Networks (arXiv 2309.17425): keep the top fraction of the pool by the filtering
    network's image-text similarity. DFN-2B kept 15% of DataComp's 12.8B pool; the column is the score
    stage's `clip_<alias>` for the DFN model."""

    name: ClassVar[str] = "dfn"
    reason: ClassVar[str] = "low_dfn_score"

    column: str = "clip_dfn"
    fraction: float | None = 0.15  # DFN-2B: 15% of the 12.8B pool


@register
@dataclass(frozen=True)
class DataCompText:
    """DataComp "text-based" filtering: English captions that name an ImageNet-21k class. DataComp looks
    up each word's first WordNet synset (nltk) and keeps the caption if that synset is in ImageNet-21k;
    here a caption is kept if it contains, as whole words, a lemma of an ImageNet-21k synset (timm's
    offline lemma list), or that lemma with a plural `s`."""

    name: ClassVar[str] = "datacomp_text"
    columns: ClassVar[tuple[str, ...]] = ("caption", "language")

    language: str = "en"  # fasttext English, as in load_uids_with_text_entity_helper
    lemmas: str | None = None  # a file of lemmas, one per line; default timm's ImageNet-21k lemma list

    def evaluate(self, table: pa.Table) -> StepResult:
        matcher = LemmaMatcher.get(self.lemmas or imagenet21k_lemmas(), words=True)
        captions = strings(table, "caption")
        has = np.array([matcher.matches(c) for c in captions], dtype=bool)
        lang = strings(table, "language")
        return StepResult([("not_english", lang != self.language), ("no_imagenet_lemma", ~has)],
                          {"language": self.language, "lemmas": self.lemmas or "timm imagenet21k",
                           "entries": len(matcher)})
