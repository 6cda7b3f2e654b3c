"""Compare curves: filters, frontier, fit, bootstrap, holdout, samples law per curve; crossovers per pair."""

from __future__ import annotations

import itertools
import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from curate.compare.bootstrap import BootstrapResult, Interval, bootstrap_fit
from curate.compare.config import CompareConfig, filter_set_name
from curate.compare.crossover import Crossover, find_crossovers
from curate.compare.errors import CompareError
from curate.compare.filters import filter_runs
from curate.compare.fit import FitResult, fit_law
from curate.compare.frontier import frontier_index
from curate.compare.holdout import HoldoutResult, default_threshold, holdout
from curate.compare.optimal import SamplesLaw, fit_samples_law, predict_samples
from curate.compare.runs import CurveKey, split_curves

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurveReport:
    """Everything fitted for one curve. `runs` (those that passed the filters) and `frontier` are tidy
    sub-tables (see runs.py); `dropped` counts the runs each filter removed."""

    key: CurveKey
    runs: pd.DataFrame
    frontier: pd.DataFrame
    fit: FitResult
    boot: BootstrapResult | None
    holdout: HoldoutResult | None
    samples_law: SamplesLaw | None
    predictions: list[dict[str, object]] = field(default_factory=list)
    optimal: list[dict[str, object]] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    def params(self) -> dict[str, Interval]:
        law = self.fit.law
        if self.boot is None:
            points = {"A": law.a, "lnB": law.ln_b, "B": law.b, "alpha": law.alpha, "E": law.e}
            return {k: Interval(v, np.nan, np.nan) for k, v in points.items()}
        return self.boot.param_intervals(self.fit)

    def to_dict(self) -> dict[str, object]:
        compute = self.frontier["compute"]
        return {
            "id": self.key.label,
            **asdict(self.key),
            "n_runs": len(self.runs),
            "dropped": self.dropped,
            "n_frontier": len(self.frontier),
            "compute_range": [float(compute.min()), float(compute.max())],
            "params": {name: iv.to_dict() for name, iv in self.params().items()},
            "rmse": self.fit.rmse,
            "agreeing_starts": f"{self.fit.agreeing_starts}/{self.fit.starts}",
            "predictions": self.predictions,
            "holdout": self.holdout.to_dict() if self.holdout else None,
            "samples_law": asdict(self.samples_law) if self.samples_law else None,
            "optimal": self.optimal,
            "frontier": self.frontier[["arch", "samples_seen", "compute", "error"]].to_dict(orient="records"),
        }


@dataclass(frozen=True)
class Report:
    """The result of `compare_runs`: curves, crossovers of comparable pairs, and skipped curves."""

    config: CompareConfig
    curves: list[CurveReport]
    crossovers: list[Crossover]
    skipped: list[dict[str, str]]

    def curve(self, label: str) -> CurveReport:
        for curve in self.curves:
            if curve.key.label == label:
                return curve
        raise KeyError(label)

    def dropped(self) -> dict[str, int]:
        """How many runs each filter dropped, over all fitted curves (only filters that dropped any)."""
        totals: dict[str, int] = {}
        for curve in self.curves:
            for reason, count in curve.dropped.items():
                totals[reason] = totals.get(reason, 0) + count
        return totals

    def filters_line(self) -> str:
        """Which preset and run filters were used, and what they dropped, in one line of text."""
        dropped = ", ".join(f"{n} {reason}" for reason, n in self.dropped().items()) or "nothing"
        filters = self.config.filters
        return (
            f"preset {self.config.preset or '-'}; filters {filter_set_name(filters)}: {filters.describe()}; "
            f"dropped: {dropped}"
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "settings": settings(self.config),
            "dropped": self.dropped(),
            "curves": [c.to_dict() for c in self.curves],
            "crossovers": [c.to_dict() for c in self.crossovers],
            "skipped": self.skipped,
        }


def settings(config: CompareConfig) -> dict[str, object]:
    """The settings that decide the numbers, for the JSON output."""
    return {
        "preset": config.preset,
        # "set": "study" (the study's filter_data), "none" (every run kept) or "custom"
        "filters": {"set": filter_set_name(config.filters), **asdict(config.filters)},
        "frontier": asdict(config.frontier),
        "fit": {
            "irreducible": config.fit.irreducible,
            "offset": config.fit.offset,
            "space": config.fit.space,
            "start_grid": config.fit.start_grid,
        },
        "bootstrap": asdict(config.bootstrap),
        "holdout_compute": config.holdout_compute,
        "holdout_decades": config.holdout_decades,
        "law": "error(C) = A * (C + B)^-alpha + E, C in GFLOPs",
    }


def _predictions(
    fit: FitResult, boot: BootstrapResult | None, config: CompareConfig
) -> list[dict[str, object]]:
    if not config.predict_at:
        return []
    compute = np.asarray(config.predict_at, dtype=float)
    point = fit.law.predict(compute)
    low, high = boot.predict_interval(compute) if boot else (np.full_like(point, np.nan),) * 2
    out = []
    for c, p, lo, hi in zip(compute, point, low, high, strict=True):
        row: dict[str, object] = {"compute": float(c), "error": Interval(p, lo, hi).to_dict()}
        if not config.columns.metric_is_error:
            row["metric"] = Interval(1 - p, 1 - hi, 1 - lo).to_dict()
        out.append(row)
    return out


def analyse_curve(key: CurveKey, runs: pd.DataFrame, config: CompareConfig) -> CurveReport:
    """Filters, frontier, fit, bootstrap, holdout and samples law of one curve's runs."""
    runs, dropped = filter_runs(runs, config.filters, key.metric)
    if runs.empty:
        raise CompareError(f"the filters dropped every run ({', '.join(f'{n} {r}' for r, n in dropped.items())})")
    front = runs.iloc[frontier_index(runs["compute"].to_numpy(), runs["error"].to_numpy(), config.frontier)]
    front = front.reset_index(drop=True)
    compute, error = front["compute"].to_numpy(), front["error"].to_numpy()
    fit = fit_law(compute, error, config.fit)
    boot = bootstrap_fit(compute, error, fit, config.fit, config.bootstrap, key.label)
    threshold = config.holdout_compute or default_threshold(compute, config.holdout_decades)
    held = holdout(compute, error, threshold, config.fit)
    samples = front["samples_seen"].to_numpy()
    try:
        samples_law = fit_samples_law(compute, samples)
    except CompareError as exc:
        log.warning("%s: %s", key.label, exc)
        samples_law = None
    optimal = predict_samples(samples_law, compute, samples, config.budgets, boot) if samples_law else []
    log.info("%s: %d runs, %d on the frontier, %s", key.label, len(runs), len(front), fit.law)
    return CurveReport(
        key, runs, front, fit, boot, held, samples_law, _predictions(fit, boot, config), optimal, dropped
    )


def comparable_pairs(keys: list[CurveKey]) -> list[tuple[CurveKey, CurveKey]]:
    """Pairs with the same metric that differ in exactly one of dataset, family and schedule."""
    return [
        (a, b)
        for a, b in itertools.combinations(keys, 2)
        if len(a.differs_in(b)) == 1 and a.metric == b.metric
    ]


def compare_runs(tidy: pd.DataFrame, config: CompareConfig | None = None) -> Report:
    """Fit every curve of a tidy runs table and find the crossovers of comparable pairs."""
    config = config or CompareConfig()
    curves, skipped = [], []
    for key, runs in split_curves(tidy).items():
        try:
            curves.append(analyse_curve(key, runs, config))
        except CompareError as exc:
            log.warning("skipping curve %s: %s", key.label, exc)
            skipped.append({"id": key.label, "reason": str(exc)})
    if not curves:
        reasons = "; ".join(f"{s['id']}: {s['reason']}" for s in skipped)
        raise CompareError(f"no curve could be fitted ({reasons})")
    by_key = {c.key: c for c in curves}
    crossovers = []
    for a, b in comparable_pairs(list(by_key)):
        ca, cb = by_key[a], by_key[b]
        lo = min(ca.frontier["compute"].min(), cb.frontier["compute"].min())
        hi = max(ca.frontier["compute"].max(), cb.frontier["compute"].max())
        crossovers += find_crossovers(
            (a.label, ca.fit.law, ca.boot), (b.label, cb.fit.law, cb.boot), (lo, hi), config.crossover_span
        )
    return Report(config, curves, crossovers, skipped)
