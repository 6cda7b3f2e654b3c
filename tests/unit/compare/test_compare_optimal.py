"""Compute-optimal samples seen: log D on log C over the frontier, predicted for a budget."""

from __future__ import annotations

import numpy as np
import pytest

from curate.compare.errors import CompareError
from curate.compare.optimal import fit_samples_law, predict_samples


def test_recovers_an_exact_allocation_law():
    compute = np.logspace(8, 12, 9)
    law = fit_samples_law(compute, 3.0 * compute**0.7)
    assert law.slope == pytest.approx(0.7, rel=1e-10)
    assert law.intercept == pytest.approx(np.log(3.0), rel=1e-10)
    (row,) = predict_samples(law, compute, 3.0 * compute**0.7, (1e13,), None)
    assert row["samples_seen"]["value"] == pytest.approx(3.0 * 1e13**0.7, rel=1e-9)
    assert row["samples_seen"]["low"] is None


def test_openclip_datacomp_budget_prediction(cosine_report):
    # This tool's own output on best_per_cell.csv with the study's settings, pinned to catch regressions:
    # on openCLIP's DataComp-1.4B frontier (24 points), samples seen grow as C^0.69, giving about 1.6e10
    # samples for 2.14e12 GFLOPs (ViT-L-14 at 12.8B samples is that compute, so the fitted allocation is
    # close to the study's own largest openCLIP run).
    curve = cosine_report.curve("clip/datacomp_1b/cosine/imagenet1k/acc1")
    assert curve.samples_law.slope == pytest.approx(0.6926, abs=0.002)
    (row,) = curve.optimal
    samples = row["samples_seen"]
    assert row["compute"] == 2.14e12
    assert samples["value"] == pytest.approx(1.586e10, rel=0.01)
    assert samples["low"] < samples["value"] < samples["high"]
    # the prediction follows the frontier: it lies between the frontier's largest samples seen x 1 and x 10
    assert curve.frontier["samples_seen"].max() < samples["value"] < 10 * curve.frontier["samples_seen"].max()


def test_needs_two_compute_values():
    with pytest.raises(CompareError, match="two or more"):
        fit_samples_law(np.array([1e9, 1e9]), np.array([1e7, 2e7]))
