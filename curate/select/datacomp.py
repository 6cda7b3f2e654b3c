"""DataComp's baselines (Gadre et al. 2023, arXiv 2304.14108; mlfoundations/datacomp baselines/apply_filter.py)
and DFN's top fraction (Fang et al. 2023, arXiv 2309.17425).

Each DataComp rule mirrors a function of apply_filter.py, named where it is applied, so that a policy
named after a DataComp baseline keeps the same uids as DataComp's own code on the same scored pool. The
`language` column must come from the score stage, whose language ID prepares captions as DataComp's
`get_fasttext_language` does (curate/models/langid.py), with the same model (lid.176.bin).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curate.errors import CurateError
from curate.select.policy import PoolView, StepResult, register


def strings(table: pa.Table, name: str) -> np.ndarray:
    return np.array([c or "" for c in table.column(name).to_pylist()], dtype=object)


def raw_scores(table: pa.Table, name: str) -> np.ndarray:
    """A score column as float64 (float32 widens exactly, so comparisons are unchanged), null as NaN."""
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def scores(table: pa.Table, name: str) -> np.ndarray:
    """A score column as float64, with null and NaN as -inf (never kept by a cut, ranked last)."""
    arr = raw_scores(table, name)
    return np.where(np.isnan(arr), -np.inf, arr)


_FASTTEXT_WORD = re.compile("[^ \n\r\t\v\f\x00]+")


def split_word_count(text: str) -> int:
    """`load_uids_with_basic_filter_helper`: `len(x.split())`, so any Unicode whitespace separates words."""
    return len(text.split())


def fasttext_token_count(text: str) -> int:
    """`caption_filter`: `len(fasttext.tokenize(x))` on the raw caption. fastText's `Dictionary::readWord`
    splits on ASCII space, \\n, \\r, \\t, \\v, \\f and NUL only, and every \\n is a token of its own (`</s>`)."""
    return len(_FASTTEXT_WORD.findall(text)) + text.count("\n")


def caption_checks(table: pa.Table, language: str, min_words: int, min_chars: int,
                   count: Callable[[str], int] = split_word_count) -> list[tuple[str, np.ndarray]]:
    """English by the `language` column, then > min_words - 1 words (by `count`), then > min_chars - 1
    characters (`len(x)`, code points, as DataComp's `caption_num_chars`); a null caption is ""."""
    captions = strings(table, "caption")
    lang = strings(table, "language")
    return [("not_english", lang != language),
            ("too_few_words", np.array([count(c) < min_words for c in captions], dtype=bool)),
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


CUTS = ("datacomp", "exact")


@register
@dataclass(frozen=True)
class ClipScore:
    """DataComp "CLIP score" filtering: keep the top `fraction` of the pool by a score column (DataComp's
    best: ViT-L-14 top 30%) or every sample at or above `threshold` (ViT-B-32 >= 0.3 in DataComp).

    `cut` says how a fraction becomes a cut:
    - `datacomp` (DataComp's `get_threshold` then `load_uids_with_clip_score_helper`): the threshold is
      the score at 0-based index int(n * fraction) of the descending sort of all n scores (NaN and null
      sort last), and every score >= it is kept, ties included; a NaN or null score is never kept.
    - `exact`: exactly ceil(fraction * n) rows, ranked by (score desc, uid asc), so ties at the cut go to
      the smaller uid. This is the cut a policy target size (`--target-size`) uses, among the rows every
      other step kept.
    `over` says which rows n counts: `pool` (DataComp: the whole pool, whatever earlier steps rejected) or
    `kept` (the rows earlier steps kept)."""

    name: ClassVar[str] = "clip_score"
    columns: ClassVar[tuple[str, ...]] = ("uid",)
    reason: ClassVar[str] = "low_clip_score"

    column: str = "clip_similarity"  # DataComp uses clip_l14_similarity_score / clip_b32_similarity_score
    fraction: float | None = 0.3  # DataComp CLIP score (L/14 30%)
    threshold: float | None = None
    over: str = "pool"
    cut: str = "datacomp"  # datacomp: DataComp's get_threshold (ties kept); exact: ceil(f * n), ties by uid
    _target: int | None = None
    _n: int | None = None  # with a fraction or target: the rows counted when the cut was resolved
    _cut_uid: str | None = None  # exact cut: the last kept uid at the cut score

    def __post_init__(self) -> None:
        if self._target is None and self._n is None and (self.fraction is None) == (self.threshold is None):
            raise CurateError(f"{self.name}: give exactly one of fraction and threshold")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise CurateError(f"{self.name}: fraction {self.fraction} is not in (0, 1]")
        if self.over not in ("pool", "kept"):
            raise CurateError(f"{self.name}: over must be 'pool' or 'kept', not {self.over!r}")
        if self.cut not in CUTS:
            raise CurateError(f"{self.name}: cut must be one of {CUTS}, not {self.cut!r}")

    @property
    def needed(self) -> tuple[str, ...]:
        return ("uid", self.column)

    def unresolved(self) -> bool:
        return self._n is None and (self.fraction is not None or self._target is not None)

    def needs_pool(self) -> bool:
        """Only a cut among the rows earlier steps kept needs them decided first."""
        return self.unresolved() and self.over == "kept"

    def with_target(self, n: int) -> ClipScore:
        return replace(self, _target=n, fraction=None, threshold=None, over="kept", cut="exact")

    def resolve(self, pool: PoolView) -> ClipScore:
        if not self.unresolved():
            return self
        kept_only = self.over == "kept"
        n = pool.count(kept_only=kept_only)
        if self.cut == "datacomp" and self._target is None:
            return replace(self, threshold=datacomp_threshold(pool, self.column, n, self.fraction, kept_only), _n=n)
        k = self._target if self._target is not None else math.ceil(self.fraction * n)
        if k > n:
            raise CurateError(f"{self.name}: target size {k} is unreachable: only {n} samples pass the other steps")
        if k == 0:
            return replace(self, threshold=math.inf, _n=n, _cut_uid="")
        cut, uid = pool.kth(self.column, k, kept_only=kept_only)
        return replace(self, threshold=cut, _n=n, _cut_uid=uid)

    def evaluate(self, table: pa.Table) -> StepResult:
        if self._cut_uid is None:  # DataComp: `df[key] >= threshold`, so NaN and null are never kept
            keep = raw_scores(table, self.column) >= self.threshold
        else:
            sim = scores(table, self.column)
            uids = np.array(table.column("uid").to_pylist(), dtype=object)
            keep = (sim > self.threshold) | ((sim == self.threshold) & (uids <= self._cut_uid))
        return StepResult([(self.reason, ~keep)], self.report())

    def report(self) -> dict:
        out = {"column": self.column, "fraction": self.fraction, "threshold": self.threshold, "over": self.over,
               "cut": self.cut}
        if self._n is not None:
            out["counted"] = self._n
        if self._target is not None:
            out["target_size"] = self._target
        if self._cut_uid is not None:
            out["cut_uid"] = self._cut_uid
        return out


def datacomp_threshold(pool: PoolView, column: str, n: int, fraction: float, kept_only: bool) -> float:
    """DataComp's `get_threshold`: `-np.sort(-scores)[int(n * fraction)]`, with n * fraction a Python
    float product as there (so 100 * 0.29 gives index 28). NaN sorts after every number, so an index past
    the numeric scores gives a NaN threshold, which keeps nothing: returned as +inf. At fraction 1 DataComp
    indexes past the end (IndexError); here every numeric score is kept (threshold -inf). Scores are
    taken to be finite: the engine ranks a score of -inf with the missing ones."""
    index = int(n * fraction)
    if index >= n:
        return -math.inf
    value, _ = pool.kth(column, index + 1, kept_only=kept_only)
    return math.inf if value == -math.inf else value


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
    cut: str = "exact"  # DFN published uids, not a cut rule: exactly ceil(0.15 * n), ties by uid
