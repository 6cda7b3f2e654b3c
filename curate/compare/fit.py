"""Fit L(C) = A * (C + B)^-alpha + E by bounded least squares from a grid of starting points.

The default ("fast") start grid fits theta = (ln A, ln B, alpha, E): B of the study's fits is about
e^18 GFLOPs, and fitting its logarithm keeps the problem well scaled. All starting points (and, in
bootstrap.py, all resamples) are solved at once by one vectorised Levenberg-Marquardt loop with an
active-set projection onto the bounds, so a fit costs milliseconds rather than one scipy call per start.
The "study" start grid runs the study's own 3,200 scipy fits instead (study_fit.py).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from curate.compare.config import FitConfig
from curate.compare.errors import CompareError

log = logging.getLogger(__name__)

N_PARAMS = 4
MIN_POINTS = 3


@dataclass(frozen=True)
class ScalingLaw:
    """A fitted law. `ln_b` is -inf when the law has no offset (B = 0)."""

    a: float
    ln_b: float
    alpha: float
    e: float

    @property
    def b(self) -> float:
        return float(np.exp(self.ln_b))

    def theta(self) -> np.ndarray:
        ln_a = np.log(self.a) if self.a > 0 else -np.inf
        return np.array([ln_a, self.ln_b, self.alpha, self.e])

    @classmethod
    def from_theta(cls, theta: np.ndarray) -> ScalingLaw:
        return cls(float(np.exp(theta[0])), float(theta[1]), float(theta[2]), float(theta[3]))

    def predict(self, compute: np.ndarray | float) -> np.ndarray:
        """Predicted error at `compute` (GFLOPs), with the shape of `compute`."""
        compute = np.asarray(compute, dtype=float)
        return predict(self.theta()[None, :], compute.ravel())[0].reshape(compute.shape)

    def to_dict(self) -> dict[str, float | None]:
        finite_b = bool(np.isfinite(self.ln_b))
        return {
            "A": self.a,
            "lnB": self.ln_b if finite_b else None,
            "B": self.b,
            "alpha": self.alpha,
            "E": self.e,
        }


@dataclass(frozen=True)
class FitResult:
    """The best fit over all starting points, with how well it fits and how many starts agree."""

    law: ScalingLaw
    rmse: float  # root mean squared residual, in the fit's space
    n_points: int
    starts: int
    agreeing_starts: int  # starts that reached the best cost (to 1e-6 relative, or 1e-7 rms absolute)


def predict(theta: np.ndarray, compute: np.ndarray) -> np.ndarray:
    """Errors of laws `theta` (S, 4) at `compute` (n,): an (S, n) array."""
    lx = np.log(np.asarray(compute, dtype=float))
    u = np.logaddexp(lx[None, :], theta[:, 1:2])
    return np.exp(theta[:, 0:1] - theta[:, 2:3] * u) + theta[:, 3:4]


def _residuals(theta: np.ndarray, lx: np.ndarray, y: np.ndarray, log_space: bool):
    """Residuals (S, n) and their Jacobian (S, n, 4) with respect to theta."""
    ln_a, ln_b, alpha, e = (theta[:, i : i + 1] for i in range(N_PARAMS))
    u = np.logaddexp(lx[None, :], ln_b)
    g = np.exp(ln_a - alpha * u)
    f = g + e
    share_b = np.exp(ln_b - u)  # B / (C + B); 0 when B = 0
    jac = np.stack([g, -alpha * g * share_b, -u * g, np.ones_like(g)], axis=-1)
    if log_space:
        return np.log(f) - np.log(y)[None, :], jac / f[..., None]
    return f - y[None, :], jac


def solve_batch(
    lx: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    theta0: np.ndarray,
    free: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    log_space: bool = False,
    max_iter: int = 300,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares for S problems at once; returns (theta (S, 4), cost (S,)).

    `weights` (S, n) are per-point multiplicities (bootstrap counts, or ones). Parameters not `free`
    stay at their starting value. Steps are Levenberg-Marquardt with Marquardt's diagonal scaling;
    parameters at a bound whose gradient points outward are held for that step.
    """
    theta = np.clip(theta0.astype(float), lower, upper)
    lam = np.full(theta.shape[0], 1e-3)
    r, jac = _residuals(theta, lx, y, log_space)
    cost = 0.5 * np.einsum("sn,sn->s", weights, r * r)
    done = np.zeros(theta.shape[0], dtype=bool)
    eye = np.eye(N_PARAMS)
    for _ in range(max_iter):
        jw = jac * weights[..., None]
        hess = np.einsum("snp,snq->spq", jw, jac)
        grad = np.einsum("snp,sn->sp", jw, r)
        held = ~free[None, :] | ((theta <= lower) & (grad > 0)) | ((theta >= upper) & (grad < 0))
        keep = ~held
        hess = hess * keep[:, :, None] * keep[:, None, :] + eye * held[:, :, None]
        grad = grad * keep
        diag = np.einsum("spp->sp", hess) + 1e-12
        step = -np.linalg.solve(hess + lam[:, None, None] * eye * diag[:, None, :], grad[..., None])[..., 0]
        cand = np.clip(theta + step * keep, lower, upper)
        r2, jac2 = _residuals(cand, lx, y, log_space)
        cost2 = 0.5 * np.einsum("sn,sn->s", weights, r2 * r2)
        ok = np.isfinite(cost2) & (cost2 < cost) & ~done
        gain = np.where(ok, (cost - cost2) / np.maximum(cost, 1e-300), 0.0)
        theta[ok], r[ok], jac[ok], cost[ok] = cand[ok], r2[ok], jac2[ok], cost2[ok]
        lam = np.clip(np.where(ok, lam / 3.0, lam * 4.0), 1e-12, 1e12)
        done |= (ok & (gain < 1e-13)) | (lam >= 1e12)
        if done.all():
            break
    return theta, cost


def bounds(config: FitConfig, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(free, lower, upper) for theta under `config`; E is bounded by [0, max observed error]."""
    free = np.array([True, config.offset, True, config.irreducible])
    lower = np.array([config.ln_a_bounds[0], config.ln_b_bounds[0], config.alpha_bounds[0], 0.0])
    upper = np.array([config.ln_a_bounds[1], config.ln_b_bounds[1], config.alpha_bounds[1], float(y.max())])
    if not config.offset:
        lower[1] = upper[1] = -np.inf
    if not config.irreducible:
        upper[3] = 0.0
    return free, lower, upper


def start_grid(config: FitConfig, compute: np.ndarray, error: np.ndarray) -> np.ndarray:
    """All starting points, (S, 4): a grid over (ln B, alpha, E), with ln A set so that each start
    passes through the cheapest point (a start far above or below the data can stall on a plateau)."""
    ln_b = config.ln_b_grid if config.offset else (-np.inf,)
    e = tuple(f * float(error.min()) for f in config.e_grid) if config.irreducible else (0.0,)
    grid = np.array(list(itertools.product(ln_b, config.alpha_grid, dict.fromkeys(e))), dtype=float)
    first = int(np.argmin(compute))
    height = np.maximum(error[first] - grid[:, 2], 1e-3 * abs(error[first]) + 1e-12)
    ln_a = np.log(height) + grid[:, 1] * np.logaddexp(np.log(compute[first]), grid[:, 0])
    return np.column_stack([ln_a, grid])


def check_points(compute: np.ndarray, error: np.ndarray, config: FitConfig) -> None:
    """Raise CompareError unless the points can be fitted."""
    if len(compute) < MIN_POINTS:
        raise CompareError(
            f"need at least {MIN_POINTS} frontier points to fit a scaling law, got {len(compute)}"
        )
    if not (np.all(np.isfinite(compute)) and np.all(compute > 0)):
        raise CompareError("compute must be positive and finite for every run; check the compute column")
    if not np.all(np.isfinite(error)):
        raise CompareError(
            "the metric has missing or non-finite values; drop those runs or pick another metric"
        )
    if config.space == "log" and np.any(error <= 0):
        raise CompareError("a log-space fit needs every error above 0; use the linear fit")


def fit_law(compute: np.ndarray, error: np.ndarray, config: FitConfig | None = None) -> FitResult:
    """Fit the law to (compute, error) points, keeping the best of the start grid."""
    config = config or FitConfig()
    compute = np.asarray(compute, dtype=float)
    error = np.asarray(error, dtype=float)
    check_points(compute, error, config)
    if config.start_grid == "study":
        return _fit_study(compute, error, config)
    free, lower, upper = bounds(config, error)
    starts = start_grid(config, compute, error)
    weights = np.ones((len(starts), len(compute)))
    theta, cost = solve_batch(
        np.log(compute), error, weights, starts, free, lower, upper, config.space == "log", config.max_iter
    )
    cost = np.where(np.isfinite(cost), cost, np.inf)
    best = int(np.argmin(cost))
    agreeing = int(np.sum(cost <= cost[best] * (1 + 1e-6) + 1e-14 * len(compute)))
    law = ScalingLaw.from_theta(theta[best])
    rmse = float(np.sqrt(2 * cost[best] / len(compute)))
    log.debug("fit %d points from %d starts (%d agree): %s", len(compute), len(starts), agreeing, law)
    return FitResult(law, rmse, len(compute), len(starts), agreeing)


def _fit_study(compute: np.ndarray, error: np.ndarray, config: FitConfig) -> FitResult:
    from curate.compare.study_fit import fit_study_grid  # imports scipy.optimize

    (a, b, c, d), mse, starts, agreeing = fit_study_grid(compute, error, config)
    law = ScalingLaw(float(a), float(np.log(b)) if b > 0 else -np.inf, float(-c), float(d))
    log.debug("fit %d points from the study's %d starts (%d agree): %s", len(compute), starts, agreeing, law)
    return FitResult(law, float(np.sqrt(mse)), len(compute), starts, agreeing)
