"""The study's fit: scipy curve_fit of a * (C + b)^c + d from every start of its grid, lowest MSE wins.

This is `fit_with_initial_params_grid` of LAION-AI/scaling-laws-for-comparison (`fitting_utils.py`)
for `saturation_both`, rewritten: bounds a, b, d >= 0 and c <= 0 (so scipy uses trust-region
reflective), `max_nfev` evaluations per start, and the best start by mean squared residual on the
fitted points. A = a, B = b, alpha = -c, E = d. It takes minutes per curve on a laptop; the default
"fast" start grid of fit.py reaches the same optimum (checked by bench/bench_compare.py).
"""

from __future__ import annotations

import itertools
import logging
import warnings

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from curate.compare.config import FitConfig, StudyGrid
from curate.compare.errors import CompareError

log = logging.getLogger(__name__)


def study_starts(grid: StudyGrid, offset: bool = True, irreducible: bool = True) -> np.ndarray:
    """All starting points (S, k) of the free parameters among (a, b, c, d), in the study's order."""
    axes = [np.arange(*grid.a), np.arange(*grid.b), np.arange(*grid.c), np.arange(*grid.d)]
    free = free_mask(offset, irreducible)
    return np.array(list(itertools.product(*(ax for ax, f in zip(axes, free, strict=True) if f))))


def free_mask(offset: bool, irreducible: bool) -> tuple[bool, bool, bool, bool]:
    """Which of (a, b, c, d) are fitted; `offset=False` fixes b = 0, `irreducible=False` fixes d = 0."""
    return (True, offset, True, irreducible)


def _model(free: tuple[bool, ...], log_space: bool):
    def full(params: np.ndarray) -> np.ndarray:
        out = np.zeros(4)
        out[np.array(free)] = params
        return out

    def model(x: np.ndarray, *params: float) -> np.ndarray:
        a, b, c, d = full(np.asarray(params))
        with np.errstate(all="ignore"):
            value = a * np.power(x + b, c) + d
            return np.log(value) if log_space else value

    return model, full


def fit_study_grid(compute: np.ndarray, error: np.ndarray, config: FitConfig) -> tuple[np.ndarray, float, int, int]:
    """Best (a, b, c, d) over the study's start grid, its mean squared residual, starts, and agreeing
    starts (mean squared residual within 1e-6 relative of the best)."""
    free = free_mask(config.offset, config.irreducible)
    log_space = config.space == "log"
    model, full = _model(free, log_space)
    target = np.log(error) if log_space else error
    lower = np.array([0.0, 0.0, -np.inf, 0.0])[np.array(free)]
    upper = np.array([np.inf, np.inf, 0.0, np.inf])[np.array(free)]
    starts = study_starts(config.study_grid, config.offset, config.irreducible)
    results, costs = [], []
    for start in starts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", OptimizeWarning)
                params, _ = curve_fit(
                    model, compute, target, p0=start, bounds=(lower, upper), maxfev=config.study_grid.max_nfev
                )
        except (RuntimeError, ValueError) as exc:  # no convergence in max_nfev, or a non-finite start
            log.debug("study start %s failed: %s", start, exc)
            continue
        mse = float(np.mean((model(compute, *params) - target) ** 2))
        if np.isfinite(mse):
            results.append(full(params))
            costs.append(mse)
    if not results:
        raise CompareError(f"no start of the study's grid ({len(starts)} starts) converged")
    costs_arr = np.array(costs)
    best = int(np.argmin(costs_arr))
    agreeing = int(np.sum(costs_arr <= costs_arr[best] * (1 + 1e-6)))
    log.debug("study grid: %d starts, %d converged, %d agree", len(starts), len(results), agreeing)
    return results[best], float(costs_arr[best]), len(starts), agreeing
