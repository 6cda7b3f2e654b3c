"""Weighting steps and the target-size sample.

- `language_rebalance` (WebLI-100B, Wang et al. 2025, arXiv 2502.07617): raise chosen groups (languages)
  to a target share of the weighted selection by repetition weights; nothing is dropped, and groups
  already at or above their target keep weight 1. The paper raised seven low-resource languages to 1%.
- `mix` (AIM's DFN-2B+, El-Nouby et al. 2024, arXiv 2401.08541: DFN-2B sampled with p = 0.8, an
  ImageNet-like source with 0.2): every group gets exactly its share of the weighted selection; rows of
  groups the mixture does not name are rejected (`not_in_mixture`).
- `target_sample`: with a target size and no ranking step, keep exactly N rows chosen by a seeded hash.

Weights are floats; the shard stage turns them into integer repetition counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curate.errors import CurateError
from curate.select.datacomp import strings
from curate.select.metaclip import uniform
from curate.select.policy import PoolView, StepResult, register


def raise_to_shares(counts: dict[str, int], targets: dict[str, float]) -> dict[str, float]:
    """Weights w_g >= 1 so that each target group g below its share reaches share T_g of the weighted total.

    With R the raised groups and M the rows of all other groups, the weighted total is N' = M / (1 - ΣT_R)
    and w_g = T_g N' / c_g. A group is raised only if its natural share is under target; raising others
    only lowers a group's share, so the raised set grows until it is stable."""
    total = sum(counts.values())
    raised: set[str] = set()
    while True:
        share_r = sum(targets[g] for g in raised)
        other = total - sum(counts[g] for g in raised)
        new_total = other / (1 - share_r) if share_r < 1 else math.inf
        grow = {g for g, t in targets.items() if g not in raised and counts.get(g, 0) > 0
                and counts[g] / new_total < t}
        if not grow:
            break
        raised |= grow
    return {g: targets[g] * new_total / counts[g] for g in raised}


@register
@dataclass(frozen=True)
class LanguageRebalance:
    name: ClassVar[str] = "language_rebalance"
    columns: ClassVar[tuple[str, ...]] = ()
    weighting: ClassVar[bool] = True

    column: str = "language"
    targets: dict = field(default_factory=dict)  # group -> share of the weighted selection (WebLI: 0.01 each)
    _weights: tuple[tuple[str, float], ...] | None = None
    _counts: tuple[tuple[str, int], ...] | None = None

    def __post_init__(self) -> None:
        if not self.targets:
            raise CurateError(f"{self.name}: give `targets`, a mapping of {self.column} value to share")
        if any(not 0 < float(v) < 1 for v in self.targets.values()) or sum(self.targets.values()) >= 1:
            raise CurateError(f"{self.name}: target shares must be in (0, 1) and sum to under 1")

    @property
    def needed(self) -> tuple[str, ...]:
        return (self.column,)

    def needs_pool(self) -> bool:
        return self._weights is None

    def resolve(self, pool: PoolView) -> LanguageRebalance:
        if self._weights is not None:
            return self
        counts = {str(k): int(v) for k, v in pool.value_counts(self.column, kept_only=True).items() if k is not None}
        weights = raise_to_shares(counts, {str(k): float(v) for k, v in self.targets.items()})
        return replace(self, _weights=tuple(sorted(weights.items())), _counts=tuple(sorted(counts.items())))

    def evaluate(self, table: pa.Table) -> StepResult:
        lookup = dict(self._weights or ())
        w = np.array([lookup.get(v, 1.0) for v in strings(table, self.column)], dtype=np.float64)
        return StepResult([], self.report(), weights=w)

    def report(self) -> dict:
        counts = dict(self._counts or ())
        return {"column": self.column, "targets": dict(self.targets), "weights": dict(self._weights or ()),
                "counts": {k: counts.get(k, 0) for k in self.targets},
                "unreachable": sorted(k for k in self.targets if counts.get(k, 0) == 0)}


@register
@dataclass(frozen=True)
class Mix:
    name: ClassVar[str] = "mix"
    columns: ClassVar[tuple[str, ...]] = ()
    weighting: ClassVar[bool] = True

    column: str = "source"
    shares: dict = field(default_factory=dict)  # group -> sampling probability (AIM DFN-2B+: 0.8 / 0.2)
    _weights: tuple[tuple[str, float], ...] | None = None

    def __post_init__(self) -> None:
        if not self.shares or abs(sum(float(v) for v in self.shares.values()) - 1) > 1e-9:
            raise CurateError(f"{self.name}: `shares` must map {self.column} values to probabilities summing to 1")

    @property
    def needed(self) -> tuple[str, ...]:
        return (self.column,)

    def needs_pool(self) -> bool:
        return self._weights is None

    def resolve(self, pool: PoolView) -> Mix:
        if self._weights is not None:
            return self
        counts = {str(k): int(v) for k, v in pool.value_counts(self.column, kept_only=True).items() if k is not None}
        empty = sorted(g for g in self.shares if counts.get(g, 0) == 0)
        if empty:
            raise CurateError(f"{self.name}: no kept rows for {self.column} {empty}")
        total = sum(counts.get(g, 0) for g in self.shares)
        return replace(self, _weights=tuple(sorted((str(g), float(p) * total / counts[g])
                                                   for g, p in self.shares.items())))

    def evaluate(self, table: pa.Table) -> StepResult:
        lookup = dict(self._weights or ())
        values = strings(table, self.column)
        w = np.array([lookup.get(v, 0.0) for v in values], dtype=np.float64)
        return StepResult([("not_in_mixture", np.array([v not in lookup for v in values], dtype=bool))],
                          {"column": self.column, "shares": dict(self.shares), "weights": lookup}, weights=w)


SAMPLE_KEY = "_target_key"


@register
@dataclass(frozen=True)
class TargetSample:
    """Keep exactly `size` of the rows still kept, those with the largest seeded hash of their uid."""

    name: ClassVar[str] = "target_sample"
    columns: ClassVar[tuple[str, ...]] = ("uid",)
    annotation_columns: ClassVar[tuple[str, ...]] = (SAMPLE_KEY,)
    annotation_schema: ClassVar[tuple[pa.Field, ...]] = (pa.field(SAMPLE_KEY, pa.float64()),)

    size: int = 0
    seed: int = 0
    _cut: float | None = None
    _cut_uid: str | None = None

    def needs_pool(self) -> bool:
        return self._cut is None

    def annotate(self, table: pa.Table) -> pa.Table:
        keys = [uniform(self.seed, u, "target") for u in table.column("uid").to_pylist()]
        return table.append_column(self.annotation_schema[0], pa.array(keys, pa.float64()))

    def resolve(self, pool: PoolView) -> TargetSample:
        if self._cut is not None:
            return self
        n = pool.count(kept_only=True)
        if self.size > n:
            raise CurateError(f"target size {self.size} is unreachable: only {n} samples pass the policy")
        if self.size == 0:
            return replace(self, _cut=math.inf, _cut_uid="")
        cut, uid = pool.kth(SAMPLE_KEY, self.size, kept_only=True)
        return replace(self, _cut=cut, _cut_uid=uid)

    def evaluate(self, table: pa.Table) -> StepResult:
        key = np.asarray(table.column(SAMPLE_KEY).to_numpy(zero_copy_only=False), dtype=np.float64)
        uids = np.array(table.column("uid").to_pylist(), dtype=object)
        keep = (key > self._cut) | ((key == self._cut) & (uids <= self._cut_uid))
        return StepResult([("below_target_size", ~keep)], {"size": self.size, "seed": self.seed,
                                                           "cut": self._cut, "cut_uid": self._cut_uid})
