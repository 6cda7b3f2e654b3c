"""Bootstrap intervals: contain the point estimate, deterministic for a seed, switchable off."""

from __future__ import annotations

import numpy as np
import pytest

from curate.compare.bootstrap import bootstrap_fit
from curate.compare.config import BootstrapConfig, FitConfig

CURVES = ["clip/datacomp_1b/cosine/imagenet1k/acc1", "mammut/datacomp_1b/cosine/imagenet1k/acc1"]


@pytest.mark.parametrize("label", CURVES)
def test_intervals_contain_the_point_estimate(cosine_report, label):
    params = cosine_report.curve(label).params()
    for name in ("A", "lnB", "alpha", "E"):
        iv = params[name]
        assert iv.low < iv.high, name
        assert iv.low <= iv.value <= iv.high, name


def _refit(curve, seed):
    front = curve.frontier
    return bootstrap_fit(
        front["compute"].to_numpy(),
        front["error"].to_numpy(),
        curve.fit,
        FitConfig(),
        BootstrapConfig(resamples=50, seed=seed),
        curve.key.label,
    )


def test_bootstrap_is_deterministic_for_a_seed(cosine_report):
    curve = cosine_report.curve(CURVES[0])
    first, again, other = _refit(curve, 0), _refit(curve, 0), _refit(curve, 1)
    assert np.array_equal(first.thetas, again.thetas)
    assert np.array_equal(first.weights, again.weights)
    assert not np.array_equal(first.weights, other.weights)
    # every resample draws as many points as the frontier has
    assert np.all(first.weights.sum(axis=1) == len(curve.frontier))


def test_prediction_interval_contains_the_prediction(cosine_report):
    curve = cosine_report.curve(CURVES[0])
    compute = np.logspace(8, 13, 6)
    low, high = curve.boot.predict_interval(compute)
    point = curve.fit.law.predict(compute)
    assert np.all(low <= point) and np.all(point <= high)
    # the band widens away from the data (extrapolation to 1e13 is less certain than 1e10)
    assert high[-1] - low[-1] > high[2] - low[2]


def test_zero_resamples_switch_the_bootstrap_off(cosine_report):
    curve = cosine_report.curve(CURVES[0])
    front = curve.frontier
    off = bootstrap_fit(
        front["compute"].to_numpy(),
        front["error"].to_numpy(),
        curve.fit,
        FitConfig(),
        BootstrapConfig(0),
        "x",
    )
    assert off is None
