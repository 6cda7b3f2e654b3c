"""Compare datasets and recipes by scaling laws fitted to training runs (`curate compare`).

The approach is that of arXiv 2506.04598 (Nezhurina et al., "Scaling Laws for Robust Comparison of
Open Foundation Language-Vision Models and Datasets"): per model family and dataset, take the
compute-error frontier of the runs, fit error(C) = A (C + B)^-alpha + E, and compare the curves
(with bootstrap intervals, holdout errors and crossovers) rather than single training runs.

Names are imported lazily, so that registering the CLI does not import pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "compare_runs": "analysis",
    "CurveReport": "analysis",
    "Report": "analysis",
    "BEST_PER_CELL": "config",
    "CHERTI2023": "config",
    "NO_FILTER": "config",
    "PRESETS": "config",
    "STUDY_FILTER": "config",
    "STUDY_RUNS": "config",
    "Preset": "config",
    "BootstrapConfig": "config",
    "CompareConfig": "config",
    "FitConfig": "config",
    "FrontierConfig": "config",
    "RunColumns": "config",
    "RunFilter": "config",
    "StudyGrid": "config",
    "CompareError": "errors",
    "FitResult": "fit",
    "ScalingLaw": "fit",
    "fit_law": "fit",
    "filter_runs": "filters",
    "frontier_index": "frontier",
    "CurveKey": "runs",
    "load_runs": "runs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
