"""Reading runs tables: presets, compute, and CompareError with a one-line message on bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curate.compare.config import BEST_PER_CELL, CHERTI2023, NO_FILTER, STUDY_FILTER, STUDY_RUNS, RunColumns
from curate.compare.errors import CompareError
from curate.compare.runs import detect_columns, detect_preset, load_runs, read_table, split_curves, tidy_runs


@pytest.mark.parametrize(
    ("name", "preset", "run_filter", "curves"),
    [
        ("best_per_cell_imagenet1k.csv", BEST_PER_CELL, STUDY_FILTER, 8),
        ("openclip_openmammut_datacomp_runs.parquet", STUDY_RUNS, STUDY_FILTER, 2),
        ("cherti2023_imagenet1k.csv", CHERTI2023, NO_FILTER, 4),
    ],
)
def test_presets_are_detected(scaling_data, name, preset, run_filter, curves):
    # the study's own tables come with the study's filters, Cherti et al.'s with none
    table = read_table(scaling_data / name)
    assert detect_columns(table) == preset
    assert detect_preset(table).columns == preset and detect_preset(table).run_filter == run_filter
    assert len(split_curves(load_runs(scaling_data / name))) == curves


def test_compute_from_gflops_per_sample_matches_total(scaling_data):
    table = read_table(scaling_data / "openclip_openmammut_datacomp_runs.parquet")
    total = tidy_runs(table, STUDY_RUNS)
    product = tidy_runs(table, RunColumns(compute=None))
    np.testing.assert_allclose(product["compute"], total["compute"], rtol=1e-12)
    assert np.all(total["error"] == 1 - table["acc1"].to_numpy())


def test_cherti_compute_is_converted_from_gmacs(scaling_data):
    table = read_table(scaling_data / "cherti2023_imagenet1k.csv")
    tidy = tidy_runs(table, CHERTI2023)
    np.testing.assert_allclose(tidy["compute"], 2 * table["gmacs_total"].to_numpy())
    assert set(tidy["dataset"]) == {"LAION-80M", "LAION-400M", "LAION-2B", "CLIP-WIT"}


def _one_line_error(call, match: str) -> None:
    with pytest.raises(CompareError, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_missing_and_unreadable_files(tmp_path):
    _one_line_error(lambda: load_runs(tmp_path / "nope.csv"), "does not exist")
    (tmp_path / "runs.json").write_text("{}")
    _one_line_error(lambda: load_runs(tmp_path / "runs.json"), "must be .csv")
    (tmp_path / "broken.parquet").write_bytes(b"not a parquet file at all")
    _one_line_error(lambda: load_runs(tmp_path / "broken.parquet"), "cannot read")
    (tmp_path / "empty.csv").write_text("")
    _one_line_error(lambda: load_runs(tmp_path / "empty.csv"), "cannot read")


def test_missing_column_names_it(scaling_data):
    table = read_table(scaling_data / "openclip_openmammut_datacomp_runs.parquet").drop(columns=["gflops"])
    _one_line_error(lambda: tidy_runs(table, STUDY_RUNS), "no column 'gflops'")


def test_malformed_values(tmp_path):
    table = pd.DataFrame(
        {"namespace": ["clip"] * 3, "pretrain_dataset": ["d"] * 3, "lr_scheduler": ["cosine"] * 3}
        | {"model_simple": ["B"] * 3, "samples_seen": [1e6, 1e7, 1e8], "model_gflops": [1.0] * 3}
        | {"gflops": ["1e6", "oops", "1e8"], "acc1": [0.1, 0.2, 0.3]}
    )
    _one_line_error(lambda: tidy_runs(table, STUDY_RUNS), "'gflops' must be numeric")
    percent = table.assign(gflops=[1e6, 1e7, 1e8], acc1=[10.0, 20.0, 30.0])
    _one_line_error(lambda: tidy_runs(percent, STUDY_RUNS), r"fraction in \[0, 1\]")
    as_error = tidy_runs(percent, RunColumns(metric_is_error=True))
    assert list(as_error["error"]) == [10.0, 20.0, 30.0]
    path = tmp_path / "bad.csv"
    table.to_csv(path, index=False)
    _one_line_error(lambda: load_runs(path, STUDY_RUNS), "must be numeric")


def test_filters_that_match_nothing(scaling_data):
    table = read_table(scaling_data / "best_per_cell_imagenet1k.csv")
    columns = RunColumns(
        **{**BEST_PER_CELL.__dict__, "filters": (("downstream_dataset", "mscoco_captions"),)}
    )
    _one_line_error(lambda: tidy_runs(table, columns), "no runs match")
