"""Run filters: none by default, the study's filter_data limits counted by reason, the divergence scope."""

from __future__ import annotations

import pandas as pd
import pytest

from curate.compare.analysis import compare_runs
from curate.compare.config import NO_FILTER, STUDY_FILTER, CompareConfig, RunFilter, filter_set_name
from curate.compare.errors import CompareError
from curate.compare.filters import filter_runs


def _runs(rows: list[tuple[float, float, float]], metric: str = "imagenet1k/acc1") -> pd.DataFrame:
    compute, samples, error = zip(*rows, strict=True)
    n = len(rows)
    return pd.DataFrame(
        {"family": ["clip"] * n, "dataset": ["d"] * n, "schedule": ["cosine"] * n, "arch": ["B"] * n}
        | {"samples_seen": samples, "compute": compute, "metric": [metric] * n, "value": [0.0] * n}
        | {"error": error}
    )


# (compute GFLOPs, samples seen, error)
ROWS = [
    (5e5, 1e6, 0.99),  # below min_flops 1e6
    (1e8, 1e7, 0.8),
    (5e11, 2e10, 0.3),  # more samples than 1e10
    (2e11, 1e9, 0.75),  # diverged: above 1e11 GFLOPs with error >= 0.7
    (2e11, 1e9, 0.69),  # large but fine
    (9e10, 1e9, 0.9),  # bad but below 1e11: kept
    (2e12, 3e10, 0.2),  # above max_x 1e12 (and above max samples: counted once, by the first filter)
]


def test_study_filters_drop_and_count_by_reason():
    kept, dropped = filter_runs(_runs(ROWS), STUDY_FILTER, "imagenet1k/acc1")
    assert kept["error"].tolist() == [0.8, 0.69, 0.9]
    assert dropped == {"above_max_compute": 1, "below_min_compute": 1, "above_max_samples_seen": 1, "diverged": 1}


@pytest.mark.parametrize(
    ("metric", "diverges"),
    [
        ("imagenet1k/acc1", True),
        ("acc1", True),  # ImageNet-1k top-1 in the study's per-run table
        ("mscoco_captions/image_retrieval_recall@5", True),
        ("datacomp_classification/acc1", False),
        ("imagenet_distribution_shift/acc1", False),
    ],
)
def test_divergence_filter_applies_where_the_study_applies_it(metric, diverges):
    assert STUDY_FILTER.diverges(metric) is diverges
    _, dropped = filter_runs(_runs(ROWS, metric), STUDY_FILTER, metric)
    assert ("diverged" in dropped) is diverges


def test_the_default_keeps_every_run():
    # A table of one's own runs must not lose its large runs to the study's limits unasked.
    assert RunFilter() == NO_FILTER == CompareConfig().filters
    kept, dropped = filter_runs(_runs(ROWS), RunFilter(), "imagenet1k/acc1")
    assert len(kept) == len(ROWS) and dropped == {}
    assert RunFilter().is_off and not RunFilter().diverges("imagenet1k/acc1")
    assert filter_set_name(RunFilter()) == "none" and RunFilter().describe() == "every run kept"


def test_the_study_filter_is_scripts_fig1():
    # scripts/fig1.sh of LAION-AI/scaling-laws-for-comparison: --max_x 1e12 (main.py's default),
    # --min_flops 1e6, --max_samples_seen 1e10; filter_data's divergence filter, 1e11 GFLOPs and 0.7.
    assert (STUDY_FILTER.max_compute, STUDY_FILTER.min_compute) == (1e12, 1e6)
    assert (STUDY_FILTER.max_samples_seen, STUDY_FILTER.divergence_compute) == (1e10, 1e11)
    assert STUDY_FILTER.divergence_error == 0.7 and filter_set_name(STUDY_FILTER) == "study"
    assert filter_set_name(RunFilter(max_compute=1e12)) == "custom"


def test_none_switches_single_filters_off():
    kept, dropped = filter_runs(_runs(ROWS), RunFilter(min_compute=1e6), "imagenet1k/acc1")
    assert len(kept) == len(ROWS) - 1 and dropped == {"below_min_compute": 1}
    off = RunFilter(max_compute=None, min_compute=None, max_samples_seen=None, divergence_compute=None)
    assert off == RunFilter() and off.is_off


def test_a_curve_the_filters_empty_is_skipped_with_the_reason():
    tiny = _runs([(5e5, 1e6, 0.99), (6e5, 1e6, 0.98), (7e5, 1e6, 0.97)])
    other = _runs([(1e7 * 2**i, 1e6 * 2**i, 0.9 - 0.05 * i) for i in range(8)]).assign(family="mammut")
    report = compare_runs(pd.concat([tiny, other], ignore_index=True), CompareConfig(filters=STUDY_FILTER))
    assert [c.key.family for c in report.curves] == ["mammut"]
    (skipped,) = report.skipped
    assert skipped["id"].startswith("clip/") and "3 below_min_compute" in skipped["reason"]
    with pytest.raises(CompareError, match="below_min_compute"):
        compare_runs(tiny, CompareConfig(filters=STUDY_FILTER))
