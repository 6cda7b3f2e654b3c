"""Fixtures of the `curate compare` tests: the published scaling data in tests/data/scaling/."""

from __future__ import annotations

from pathlib import Path

import pytest

from curate.compare.analysis import Report, compare_runs
from curate.compare.config import BEST_PER_CELL, PRESETS
from curate.compare.runs import load_runs, select_curves

DATA = Path(__file__).resolve().parents[2] / "data" / "scaling"
BEST_PER_CELL_CSV = DATA / "best_per_cell_imagenet1k.csv"
RUNS_PARQUET = DATA / "openclip_openmammut_datacomp_runs.parquet"
CHERTI_CSV = DATA / "cherti2023_imagenet1k.csv"

# openCLIP ViT-L-14 at 12.8B samples seen is about 2.14e12 GFLOPs; the study's fit predicts ~79.6% there.
TARGET_COMPUTE = 2.14e12


@pytest.fixture(scope="session")
def scaling_data() -> Path:
    """The folder of the published scaling tables (see its README.md for provenance)."""
    return DATA


@pytest.fixture(scope="session")
def cosine_report() -> Report:
    """openCLIP and openMaMMUT on DataComp-1.4B and Re-LAION-2B-en (cosine schedule), with the settings of
    the best-per-cell preset, which are the study's (filters of scripts/fig1.sh, and the default pareto_bin
    frontier and linear fit)."""
    tidy = select_curves(load_runs(BEST_PER_CELL_CSV, BEST_PER_CELL), ["cosine"])
    tidy = tidy[tidy["family"].isin(["clip", "mammut"])]
    config = PRESETS["best-per-cell"].config(predict_at=(TARGET_COMPUTE,), budgets=(TARGET_COMPUTE,))
    return compare_runs(tidy, config)


@pytest.fixture(scope="session")
def runs_report() -> Report:
    """The per-run parquet (DataComp-1.4B, openCLIP and openMaMMUT) with the runs preset's settings, which
    are the study's: the table the study's openCLIP fit is reproduced from."""
    return compare_runs(load_runs(RUNS_PARQUET), PRESETS["runs"].config(predict_at=(TARGET_COMPUTE,)))
