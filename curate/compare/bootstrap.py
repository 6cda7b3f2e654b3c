"""Bootstrap confidence intervals of a fitted law's parameters and predictions.

Frontier points are resampled with replacement (as multiplicity weights), and every resample is
refitted from the point estimate in one vectorised solve. The generator is seeded from the config's
seed and the curve's label, so a curve gets the same intervals whatever else is in the table.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from curate.compare.config import BootstrapConfig, FitConfig
from curate.compare.fit import FitResult, bounds, predict, solve_batch


@dataclass(frozen=True)
class Interval:
    """A point estimate with the bounds of its percentile interval."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float | None]:
        def clean(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {"value": clean(self.value), "low": clean(self.low), "high": clean(self.high)}


@dataclass(frozen=True)
class BootstrapResult:
    """The refitted laws of all resamples, and the resample weights that produced them."""

    thetas: np.ndarray  # (R, 4): ln A, ln B, alpha, E
    weights: np.ndarray  # (R, n): multiplicity of each frontier point in each resample
    level: float

    def quantiles(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Percentile bounds over resamples (axis 0) at this result's level."""
        tail = (1.0 - self.level) / 2.0 * 100.0
        low, high = np.nanpercentile(values, [tail, 100.0 - tail], axis=0)
        return low, high

    def param_intervals(self, fit: FitResult) -> dict[str, Interval]:
        law = fit.law
        samples = {
            "A": np.exp(self.thetas[:, 0]),
            "lnB": self.thetas[:, 1],
            "B": np.exp(self.thetas[:, 1]),
            "alpha": self.thetas[:, 2],
            "E": self.thetas[:, 3],
        }
        points = {"A": law.a, "lnB": law.ln_b, "B": law.b, "alpha": law.alpha, "E": law.e}
        out = {}
        for name, values in samples.items():
            low, high = self.quantiles(values) if np.isfinite(values).any() else (np.nan, np.nan)
            out[name] = Interval(points[name], float(low), float(high))
        return out

    def predict_interval(self, compute: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the predicted error at each `compute`."""
        return self.quantiles(predict(self.thetas, np.asarray(compute, dtype=float)))


def resample_weights(n_points: int, config: BootstrapConfig, label: str) -> np.ndarray:
    """(R, n) multiplicities of a nonparametric bootstrap, deterministic for (seed, label)."""
    rng = np.random.default_rng([config.seed, zlib.crc32(label.encode())])
    return rng.multinomial(n_points, np.full(n_points, 1.0 / n_points), size=config.resamples).astype(float)


def bootstrap_fit(
    compute: np.ndarray,
    error: np.ndarray,
    fit: FitResult,
    fit_config: FitConfig,
    config: BootstrapConfig,
    label: str,
) -> BootstrapResult | None:
    """Refit `resamples` bootstrap resamples of the points; None when resampling is switched off."""
    if config.resamples <= 0:
        return None
    compute = np.asarray(compute, dtype=float)
    error = np.asarray(error, dtype=float)
    weights = resample_weights(len(compute), config, label)
    free, lower, upper = bounds(fit_config, error)
    start = np.repeat(fit.law.theta()[None, :], config.resamples, axis=0)
    thetas, _ = solve_batch(
        np.log(compute),
        error,
        weights,
        start,
        free,
        lower,
        upper,
        fit_config.space == "log",
        fit_config.max_iter,
    )
    return BootstrapResult(thetas, weights, config.level)
