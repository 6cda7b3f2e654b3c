"""LAION-5B's CLIP thresholds (Schuhmann et al. 2022, arXiv 2210.08402), probe filters (any probe column,
a minimum or a maximum: NSFW, watermark, LAION-Aesthetics), and Re-LAION.

LAION-5B kept English pairs with OpenAI ViT-B/32 similarity >= 0.28 (laion2B-en) and the others with
multilingual CLIP (mCLIP) similarity >= 0.26 (laion2B-multi, laion1B-nolang). NSFW and watermark
probes were tags there, not filters; here they are optional `probe` steps. Re-LAION-5B (LAION 2024)
is LAION-5B after removing samples on safety hash lists (done by `curate dedup`'s hash-list removal);
its `research-safe` variant also drops samples the NSFW probe flags.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curate.errors import CurateError
from curate.select.datacomp import raw_scores, scores, strings
from curate.select.policy import StepResult, register

PROBE_REASONS = {"nsfw": "nsfw_probe", "watermark": "watermark_probe"}


@register
@dataclass(frozen=True)
class LaionClip:
    """English captions need `english_column` >= 0.28; every other caption needs `other_column` >= 0.26."""

    name: ClassVar[str] = "laion_clip"
    columns: ClassVar[tuple[str, ...]] = ("language",)

    english_column: str = "clip_vit_b_32"  # LAION-5B: OpenAI ViT-B/32 for laion2B-en
    english_threshold: float = 0.28  # LAION-5B paper, section 3.1
    other_column: str = "clip_multilingual"  # LAION-5B: mCLIP (multilingual ViT-B/32) for the rest
    other_threshold: float = 0.26  # LAION-5B paper, section 3.1
    language: str = "en"

    @property
    def needed(self) -> tuple[str, ...]:
        return ("language", self.english_column, self.other_column)

    def evaluate(self, table: pa.Table) -> StepResult:
        english = strings(table, "language") == self.language
        ok = np.where(english, scores(table, self.english_column) >= self.english_threshold,
                      scores(table, self.other_column) >= self.other_threshold)
        return StepResult([("low_clip_score", ~ok)], asdict(self))


@register
@dataclass(frozen=True)
class Probe:
    """Drop samples whose probe score (a float column, e.g. the score stage's probe column named after
    the probe) is above `max_value` or below `min_value`. A missing score (null or NaN) passes a maximum
    (the probe flagged nothing) and fails a minimum (nothing shows the sample meets it).

    LAION's NSFW and watermark tags used 0.5 on their probes' outputs (the default maximum for the `nsfw`
    and `watermark` columns); LAION-Aesthetics V2 kept laion2B-en samples whose aesthetic predictor score
    is at least 5 (600M samples), 6 (12M), 6.25 or 6.5 (`min_value`)."""

    name: ClassVar[str] = "probe"
    columns: ClassVar[tuple[str, ...]] = ()

    column: str = "nsfw"  # the probe's column in the scores table (any float column)
    max_value: float | None = None  # reject above this; default 0.5 for nsfw and watermark (LAION's tags)
    min_value: float | None = None  # reject below this (LAION-Aesthetics V2: 5, 6, 6.25 or 6.5)

    def __post_init__(self) -> None:
        if self.max_value is None and self.min_value is None:
            if self.column not in PROBE_REASONS:
                raise CurateError(f"{self.name}: give min_value or max_value for the probe column {self.column!r}")
            object.__setattr__(self, "max_value", 0.5)
        for bound in (self.max_value, self.min_value):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
                raise CurateError(f"{self.name}: bounds must be numbers, not {bound!r}")

    @property
    def needed(self) -> tuple[str, ...]:
        return (self.column,)

    @property
    def reason(self) -> str:
        return PROBE_REASONS.get(self.column, "probe_score")

    def evaluate(self, table: pa.Table) -> StepResult:
        s = raw_scores(table, self.column)
        out = np.zeros(len(s), dtype=bool)
        if self.max_value is not None:
            out |= s > self.max_value
        if self.min_value is not None:
            out |= ~(s >= self.min_value)
        return StepResult([(self.reason, out)], asdict(self))


@register
@dataclass(frozen=True)
class WatermarkProbe(Probe):
    """A second probe step in one policy (a step name appears once): the watermark probe."""

    name: ClassVar[str] = "watermark_probe"
    column: str = "watermark"
