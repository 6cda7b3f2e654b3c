"""Where two fitted curves cross, with a bootstrap interval, and which one leads above the crossing.

Crossings are searched on a log-spaced compute grid and refined by interpolating the difference of
the two curves in log compute (point estimate: by bisection). A bootstrap pair (the i-th
resample of each curve) contributes the crossing nearest to the point estimate's, if it has one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curate.compare.bootstrap import BootstrapResult
from curate.compare.fit import ScalingLaw, predict

GRID_POINTS = 1000


@dataclass(frozen=True)
class Crossover:
    """One crossing of curves `first` and `second` (labels), or none in the searched range."""

    first: str
    second: str
    compute: float | None  # GFLOPs; None if the curves do not cross in [search_low, search_high]
    low: float | None
    high: float | None
    leader_above: str  # the curve with lower error just above the crossing (or throughout)
    leader_below: str
    bootstrap_share: float | None  # share of bootstrap pairs that cross in the range
    extrapolated: bool  # the crossing lies outside the compute range of the data
    search_low: float
    search_high: float

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _grid(low: float, high: float) -> np.ndarray:
    return np.logspace(np.log10(low), np.log10(high), GRID_POINTS)


def _sign_changes(diff: np.ndarray, grid: np.ndarray) -> list[tuple[float, bool]]:
    """Crossings (log-linear interpolation) of one row of curve differences, each with whether the
    first curve is the worse one above it. A difference of exactly 0 on a grid point counts once."""
    lg = np.log(grid)
    out = [
        (
            float(np.exp(lg[i] - diff[i] * (lg[i + 1] - lg[i]) / (diff[i + 1] - diff[i]))),
            bool(diff[i + 1] > 0),
        )
        for i in np.flatnonzero(diff[:-1] * diff[1:] < 0)
    ]
    exact = np.flatnonzero(diff[1:-1] == 0) + 1
    out += [(float(grid[i]), bool(diff[i + 1] > 0)) for i in exact if diff[i - 1] * diff[i + 1] < 0]
    return sorted(out)


def _refine(first: ScalingLaw, second: ScalingLaw, guess: float, grid: np.ndarray) -> float:
    step = np.log(grid[1]) - np.log(grid[0])

    def gap(lc: float) -> float:
        return float(first.predict(np.exp(lc)) - second.predict(np.exp(lc)))

    lo, hi = np.log(guess) - 2 * step, np.log(guess) + 2 * step
    g_lo = gap(lo)
    if g_lo * gap(hi) >= 0:
        return guess
    for _ in range(60):  # bisection in log compute, to well below 1e-10 relative
        mid = 0.5 * (lo + hi)
        g_mid = gap(mid)
        if g_mid * g_lo > 0:
            lo, g_lo = mid, g_mid
        else:
            hi = mid
    return float(np.exp(0.5 * (lo + hi)))


def _boot_crossings(
    boot_a: BootstrapResult, boot_b: BootstrapResult, grid: np.ndarray
) -> list[list[tuple[float, bool]]]:
    n = min(len(boot_a.thetas), len(boot_b.thetas))
    diff = predict(boot_a.thetas[:n], grid) - predict(boot_b.thetas[:n], grid)
    return [_sign_changes(row, grid) for row in diff]


def find_crossovers(
    first: tuple[str, ScalingLaw, BootstrapResult | None],
    second: tuple[str, ScalingLaw, BootstrapResult | None],
    data_range: tuple[float, float],
    span: tuple[float, float] = (0.1, 1e4),
) -> list[Crossover]:
    """All crossings of two laws in [min * span[0], max * span[1]] of the data's compute range."""
    (label_a, law_a, boot_a), (label_b, law_b, boot_b) = first, second
    low, high = float(data_range[0] * span[0]), float(data_range[1] * span[1])
    grid = _grid(low, high)
    diff = law_a.predict(grid) - law_b.predict(grid)
    points = [(_refine(law_a, law_b, c, grid), up) for c, up in _sign_changes(diff, grid)]
    boot = _boot_crossings(boot_a, boot_b, grid) if boot_a is not None and boot_b is not None else None
    share = float(np.mean([bool(c) for c in boot])) if boot else None

    def lead(at_diff: float) -> str:
        return label_a if at_diff < 0 else label_b

    if not points:
        leader = lead(float(np.mean(diff)))
        return [Crossover(label_a, label_b, None, None, None, leader, leader, share, False, low, high)]
    out = []
    for c, up in points:
        above = float(law_a.predict(c * 1.01) - law_b.predict(c * 1.01))
        below = float(law_a.predict(c / 1.01) - law_b.predict(c / 1.01))
        c_low = c_high = None
        if boot:
            same = ([x for x, u in row if u == up] for row in boot)
            near = [min(row, key=lambda x: abs(np.log(x / c))) for row in same if row]
            if near:
                tail = (1.0 - boot_a.level) / 2.0 * 100.0
                c_low, c_high = (float(v) for v in np.percentile(near, [tail, 100.0 - tail]))
        extrapolated = not data_range[0] <= c <= data_range[1]
        out.append(
            Crossover(
                label_a, label_b, c, c_low, c_high, lead(above), lead(below), share, extrapolated, low, high
            )
        )
    return out
