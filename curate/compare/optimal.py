"""Compute-optimal samples seen: log D = intercept + slope * log C, fitted on the frontier runs.

The frontier runs are the best run found at each compute, so their samples seen trace how the best
allocation grows with compute; the prediction for a budget feeds `curate shard --samples-seen`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.compare.bootstrap import BootstrapResult, Interval
from curate.compare.errors import CompareError


@dataclass(frozen=True)
class SamplesLaw:
    """D(C) = exp(intercept) * C^slope, with D in samples and C in GFLOPs."""

    slope: float
    intercept: float
    n_points: int

    def predict(self, compute: np.ndarray | float) -> np.ndarray:
        return np.exp(self.intercept + self.slope * np.log(np.asarray(compute, dtype=float)))


def weighted_line(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares slopes and intercepts of y on x for each row of `weights` (R, n)."""
    total = weights.sum(axis=1)
    mx = weights @ x / total
    my = weights @ y / total
    sxx = weights @ (x * x) / total - mx * mx
    sxy = weights @ (x * y) / total - mx * my
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 1e-12, sxy / sxx, np.nan)
    return slope, my - slope * mx


def fit_samples_law(compute: np.ndarray, samples: np.ndarray) -> SamplesLaw:
    """Fit log samples against log compute; needs two distinct compute values."""
    compute = np.asarray(compute, dtype=float)
    samples = np.asarray(samples, dtype=float)
    if len(np.unique(compute)) < 2 or np.any(samples <= 0):
        raise CompareError("compute-optimal samples seen needs frontier runs at two or more compute values")
    slope, intercept = weighted_line(np.log(compute), np.log(samples), np.ones((1, len(compute))))
    return SamplesLaw(float(slope[0]), float(intercept[0]), len(compute))


def predict_samples(
    law: SamplesLaw,
    compute: np.ndarray,
    samples: np.ndarray,
    budgets: tuple[float, ...],
    boot: BootstrapResult | None,
) -> list[dict[str, object]]:
    """Predicted samples seen for each budget, with a bootstrap interval over the same resamples."""
    if not budgets:
        return []
    budgets_arr = np.asarray(budgets, dtype=float)
    point = law.predict(budgets_arr)
    low = high = np.full(len(budgets_arr), np.nan)
    if boot is not None:
        slope, intercept = weighted_line(np.log(compute), np.log(samples), boot.weights)
        draws = np.exp(intercept[:, None] + slope[:, None] * np.log(budgets_arr)[None, :])
        low, high = boot.quantiles(draws)
    return [
        {"compute": float(c), "samples_seen": Interval(float(p), float(lo), float(hi)).to_dict()}
        for c, p, lo, hi in zip(budgets_arr, point, low, high, strict=True)
    ]
