"""LAION-5B's CLIP thresholds (Schuhmann et al. 2022, arXiv 2210.08402), probe filters, and Re-LAION.

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
from curate.select.datacomp import scores, strings
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
    """Drop samples whose probe score (a float column named after the probe) is above `max_value`.
    A missing probe score (null) is kept: the probe said nothing."""

    name: ClassVar[str] = "probe"
    columns: ClassVar[tuple[str, ...]] = ()

    column: str = "nsfw"  # the probe's column in the scores table: nsfw or watermark
    max_value: float = 0.5  # LAION's tags used 0.5 on their NSFW and watermark probes' outputs

    def __post_init__(self) -> None:
        if self.column not in PROBE_REASONS:
            raise CurateError(f"probe: column must be one of {sorted(PROBE_REASONS)}, not {self.column!r}")

    @property
    def needed(self) -> tuple[str, ...]:
        return (self.column,)

    def evaluate(self, table: pa.Table) -> StepResult:
        s = np.asarray(table.column(self.column).to_numpy(zero_copy_only=False), dtype=np.float64)
        return StepResult([(PROBE_REASONS[self.column], s > self.max_value)], asdict(self))


@register
@dataclass(frozen=True)
class WatermarkProbe(Probe):
    """A second probe step in one policy (a step name appears once): the watermark probe."""

    name: ClassVar[str] = "watermark_probe"
    column: str = "watermark"
