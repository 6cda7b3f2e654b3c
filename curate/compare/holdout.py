"""Holdout check of extrapolation: fit on frontier points below a compute threshold, test above it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.compare.config import FitConfig
from curate.compare.fit import MIN_POINTS, ScalingLaw, fit_law


@dataclass(frozen=True)
class HoldoutResult:
    """Errors of the law fitted below `threshold` on the held-out frontier points at or above it."""

    threshold: float
    n_fit: int
    n_heldout: int
    law: ScalingLaw
    mae: float  # mean absolute difference of predicted and observed error
    rmse: float
    max_abs: float
    mean_relative: float  # mean |predicted - observed| / observed
    points: list[dict[str, float]]

    def to_dict(self) -> dict[str, object]:
        out = dict(self.__dict__)
        out["law"] = self.law.to_dict()
        return out


def default_threshold(compute: np.ndarray, decades: float) -> float:
    """Hold out the top `decades` of the compute range."""
    return float(np.max(compute) / 10.0**decades)


def holdout(
    compute: np.ndarray, error: np.ndarray, threshold: float, config: FitConfig
) -> HoldoutResult | None:
    """Fit below `threshold`, evaluate at or above it; None when either side is too small."""
    compute = np.asarray(compute, dtype=float)
    error = np.asarray(error, dtype=float)
    below = compute < threshold
    if below.sum() < MIN_POINTS or (~below).sum() == 0:
        return None
    law = fit_law(compute[below], error[below], config).law
    predicted = law.predict(compute[~below])
    observed = error[~below]
    diff = predicted - observed
    points = [
        {"compute": float(c), "observed": float(o), "predicted": float(p)}
        for c, o, p in zip(compute[~below], observed, predicted, strict=True)
    ]
    return HoldoutResult(
        threshold=float(threshold),
        n_fit=int(below.sum()),
        n_heldout=int((~below).sum()),
        law=law,
        mae=float(np.mean(np.abs(diff))),
        rmse=float(np.sqrt(np.mean(diff**2))),
        max_abs=float(np.max(np.abs(diff))),
        mean_relative=float(np.mean(np.abs(diff) / np.abs(observed))),
        points=points,
    )
