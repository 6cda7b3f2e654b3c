"""`curate compare` on the command line: JSON output, plots, run filter sets, errors, help text."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from curate.compare.cli import add_parser, build_config
from curate.compare.config import GENERIC, PRESETS, STUDY_FILTER, FitConfig, FrontierConfig, RunFilter
from curate.compare.errors import CompareError


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curate")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def _run(parser, *argv: str) -> int:
    args = parser.parse_args(["compare", *argv])
    return args.func(args)


def test_fit_json_has_params_intervals_crossovers_and_holdout(parser, scaling_data, capsys):
    table = str(scaling_data / "best_per_cell_imagenet1k.csv")
    argv = ["fit", table, "--only", "clip/", "--only", "cosine", "--bootstrap", "30", "--json"]
    assert _run(parser, *argv, "--predict", "2.14e12", "--budget", "2.14e12") == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"settings", "dropped", "curves", "crossovers", "skipped"}
    # the study's table: its preset's filters are the study's (scripts/fig1.sh of
    # LAION-AI/scaling-laws-for-comparison); the frontier and fit defaults are the study's too
    settings = out["settings"]
    assert settings["preset"] == "best-per-cell" and settings["filters"]["set"] == "study"
    assert settings["frontier"] == {"method": "pareto_bin", "bins": None, "bin_unit": 1500.0, "rows": "study"}
    assert settings["filters"]["max_compute"] == 1e12 and settings["filters"]["min_compute"] == 1e6
    assert settings["filters"]["max_samples_seen"] == 1e10 and settings["filters"]["divergence_compute"] == 1e11
    assert settings["fit"]["start_grid"] == "fast"
    ids = {c["id"] for c in out["curves"]}
    assert ids == {"clip/datacomp_1b/cosine/imagenet1k/acc1", "clip/relaion2b-en/cosine/imagenet1k/acc1"}
    by_id = {c["id"]: c for c in out["curves"]}
    # best_per_cell.csv: openCLIP ViT-H-14 at 3B samples (1.14e12 GFLOPs) is above max_x
    assert by_id["clip/datacomp_1b/cosine/imagenet1k/acc1"]["dropped"] == {"above_max_compute": 1}
    assert by_id["clip/relaion2b-en/cosine/imagenet1k/acc1"]["dropped"] == {}
    assert out["dropped"] == {"above_max_compute": 1}
    for curve in out["curves"]:
        for name in ("A", "lnB", "B", "alpha", "E"):
            assert set(curve["params"][name]) == {"value", "low", "high"}
        assert curve["holdout"]["n_heldout"] >= 1 and curve["holdout"]["mae"] > 0
        assert curve["predictions"][0]["metric"]["value"] > 0.5
        assert curve["optimal"][0]["samples_seen"]["value"] > 1e9
    (cross,) = out["crossovers"]
    assert cross["leader_above"] == "clip/datacomp_1b/cosine/imagenet1k/acc1"


def test_fit_text_output(parser, scaling_data, capsys):
    table = str(scaling_data / "openclip_openmammut_datacomp_runs.parquet")
    assert _run(parser, "fit", table, "--bootstrap", "0") == 0
    out = capsys.readouterr().out
    assert "clip/datacomp_1b/cosine/acc1" in out and "leads above: mammut/datacomp_1b/cosine/acc1" in out


def test_optimal_json(parser, scaling_data, capsys):
    table = str(scaling_data / "openclip_openmammut_datacomp_runs.parquet")
    assert _run(parser, "optimal", table, "--budget", "1e12", "--bootstrap", "20", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == ["clip/datacomp_1b/cosine/acc1", "mammut/datacomp_1b/cosine/acc1"]
    assert all(r["optimal"][0]["compute"] == 1e12 for r in rows)


def test_plot_writes_png_and_self_contained_html(parser, scaling_data, tmp_path, capsys):
    table = str(scaling_data / "cherti2023_imagenet1k.csv")
    out_dir = tmp_path / "plots"
    # Cherti et al.'s runs go beyond the study's filters (1.3e13 GFLOPs, 34B samples); their preset has none
    argv = ["plot", table, "--out", str(out_dir), "--frontier", "pareto", "--pure-power-law", "--no-offset"]
    assert _run(parser, *argv, "--bootstrap", "20") == 0
    pngs = list(out_dir.glob("*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out_dir / "index.html").read_text()
    assert "data:image/png;base64," in page and "LAION-2B" in page
    assert "src='http" not in page and 'src="http' not in page
    assert "preset cherti2023; filters none: every run kept; dropped: nothing" in page
    assert str(out_dir / "index.html") in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["fit", "{data}/missing.parquet"], "does not exist"),
        (["fit", "{data}/best_per_cell_imagenet1k.csv", "--metric", "nope"], "no column 'nope'"),
        (["fit", "{data}/best_per_cell_imagenet1k.csv", "--where", "metric"], "COL=VALUE"),
        (["fit", "{data}/best_per_cell_imagenet1k.csv", "--only", "siglip/relaion"], "no curve id"),
        (["optimal", "{data}/best_per_cell_imagenet1k.csv"], "--budget"),
        (["fit", "{data}/best_per_cell_imagenet1k.csv", "--bins", "-1"], "--bins"),
        (["fit", "{data}/best_per_cell_imagenet1k.csv", "--bins", "many"], "--bins"),
        (
            [
                "fit",
                "{data}/best_per_cell_imagenet1k.csv",
                "--compute-col",
                "none",
                "--gflops-per-sample-col",
                "none",
            ],
            "GFLOPs-per-sample",
        ),
    ],
)
def test_bad_input_raises_compare_error(parser, scaling_data, argv, match):
    argv = [a.format(data=scaling_data) for a in argv]
    with pytest.raises(CompareError, match=match):
        _run(parser, *argv)


def test_options_map_to_the_config(parser):
    def config(*argv: str, preset=PRESETS["best-per-cell"]):
        return build_config(parser.parse_args(["compare", "fit", "runs.csv", *argv]), preset)

    default = config()
    assert default.filters == STUDY_FILTER and default.preset == "best-per-cell"
    assert default.frontier == FrontierConfig() and default.fit == FitConfig()
    assert config(preset=PRESETS["cherti2023"]).filters == RunFilter()
    assert config(preset=GENERIC).filters == RunFilter()
    assert config("--filters", "study", preset=GENERIC).filters == STUDY_FILTER
    assert config("--filters", "none").filters == RunFilter()
    argv = ["--start-grid", "study", "--frontier-rows", "points", "--bins", "30", "--max-compute", "none"]
    argv += ["--min-compute", "1e7", "--no-divergence-filter"]
    changed = config(*argv)
    assert changed.fit.start_grid == "study"
    assert changed.frontier == FrontierConfig(method="pareto_bin", bins=30, rows="points")
    assert changed.filters == RunFilter(min_compute=1e7, max_samples_seen=1e10)
    assert config("--filters", "none", "--divergence-compute", "1e11").filters == RunFilter(divergence_compute=1e11)
    with pytest.raises(CompareError, match="contradict"):
        config("--divergence-compute", "1e11", "--no-divergence-filter")


# A table of one's own runs, in no preset's column names: one law, 1e8 to 1e14 GFLOPs at 100 GFLOPs per
# sample (the 4 runs above 1e12 GFLOPs also saw more than 1e10 samples), and 2 runs of a small model that
# saw 2e10 and 4e10 samples with at most 4e9 GFLOPs.
GENERIC_ARGS = ["--family-col", "recipe", "--dataset-col", "data", "--schedule-col", "none"]
GENERIC_ARGS += ["--arch-col", "model", "--samples-seen-col", "n_samples", "--compute-col", "total_gflops"]
GENERIC_ARGS += ["--metric", "top1", "--bootstrap", "0"]


@pytest.fixture(scope="module")
def generic_csv(tmp_path_factory) -> str:
    compute = np.concatenate([1e8 * 10 ** (np.arange(13) / 2), [2e9, 4e9]])
    samples = np.concatenate([compute[:13] / 100, [2e10, 4e10]])
    error = 30 * (compute + 1e9) ** -0.2 + 0.15 + np.r_[np.zeros(13), 0.2, 0.2]
    table = pd.DataFrame(
        {"recipe": "mine", "data": "web", "model": ["big"] * 13 + ["tiny"] * 2}
        | {"n_samples": samples, "total_gflops": compute, "top1": 1 - error}
    )
    assert (compute > 1e12).sum() == 4 and ((samples > 1e10) & (compute <= 1e12)).sum() == 2
    path = tmp_path_factory.mktemp("generic") / "my_runs.csv"
    table.to_csv(path, index=False)
    return str(path)


def _fit_json(parser, capsys, *argv: str) -> dict:
    assert _run(parser, "fit", *argv, "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_a_generic_table_keeps_every_run_by_default(parser, generic_csv, capsys):
    out = _fit_json(parser, capsys, generic_csv, *GENERIC_ARGS)
    assert out["settings"]["preset"] == "generic" and out["settings"]["filters"]["set"] == "none"
    assert out["settings"]["filters"]["max_compute"] is None and out["dropped"] == {}
    (curve,) = out["curves"]
    assert curve["n_runs"] == 15 and curve["dropped"] == {}
    assert curve["compute_range"][1] == pytest.approx(1e14)


def test_study_filters_on_a_generic_table_drop_and_count(parser, generic_csv, capsys):
    out = _fit_json(parser, capsys, generic_csv, *GENERIC_ARGS, "--filters", "study")
    assert out["settings"]["filters"]["set"] == "study" and out["settings"]["filters"]["max_compute"] == 1e12
    expected = {"above_max_compute": 4, "above_max_samples_seen": 2}
    (curve,) = out["curves"]
    assert curve["n_runs"] == 9 and curve["dropped"] == expected and out["dropped"] == expected
    # a single flag overrides one field of the chosen set
    out = _fit_json(parser, capsys, generic_csv, *GENERIC_ARGS, "--filters", "study", "--max-compute", "none")
    assert out["settings"]["filters"]["set"] == "custom" and out["dropped"] == {"above_max_samples_seen": 6}
    assert _run(parser, "fit", generic_csv, *GENERIC_ARGS, "--filters", "none", "--max-compute", "1e12") == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "preset generic; filters custom: compute <= 1e+12 GFLOPs; dropped: 4 above_max_compute"


@pytest.mark.parametrize(
    ("name", "only", "preset", "filters"),
    [
        ("openclip_openmammut_datacomp_runs.parquet", "clip/", "runs", STUDY_FILTER),
        ("best_per_cell_imagenet1k.csv", "clip/datacomp_1b/cosine", "best-per-cell", STUDY_FILTER),
        ("cherti2023_imagenet1k.csv", "LAION-2B", "cherti2023", RunFilter()),
    ],
)
def test_study_presets_apply_the_study_filter_by_default(parser, scaling_data, capsys, name, only, preset, filters):
    # auto detection picks each table's preset, and with it the filters its numbers are meant with
    out = _fit_json(parser, capsys, str(scaling_data / name), "--only", only, "--bootstrap", "0")
    settings = out["settings"]
    assert settings["preset"] == preset
    assert settings["filters"] == {"set": "study" if filters == STUDY_FILTER else "none"} | {
        k: list(v) if isinstance(v, tuple) else v for k, v in filters.__dict__.items()
    }
    # the study's per-run parquet holds no run beyond the study's filters (it lacks the ViT-H runs);
    # best-per-cell's openCLIP ViT-H-14 at 3B samples is above 1e12 GFLOPs; Cherti et al.'s largest
    # LAION-2B runs (above 1e12 GFLOPs and 1e10 samples seen) are kept
    dropped = {"best-per-cell": {"above_max_compute": 1}}.get(preset, {})
    assert out["dropped"] == dropped and out["curves"][0]["dropped"] == dropped
    if preset == "cherti2023":
        assert out["curves"][0]["compute_range"][1] > 1e13


def test_every_option_has_help(parser):
    compare = parser._subparsers._group_actions[0].choices["compare"]
    commands = compare._subparsers._group_actions[0].choices
    assert set(commands) == {"fit", "plot", "optimal"}
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
