"""`curate compare` on the command line: JSON output, plots, errors, help text."""

from __future__ import annotations

import argparse
import json

import pytest

from curate.compare.cli import add_parser, build_config
from curate.compare.config import BEST_PER_CELL, FitConfig, FrontierConfig, RunFilter
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
    assert set(out) == {"settings", "curves", "crossovers", "skipped"}
    # the defaults are the study's settings (scripts/fig1.sh of LAION-AI/scaling-laws-for-comparison)
    settings = out["settings"]
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
    # Cherti et al.'s runs go beyond the study's filters (1.3e13 GFLOPs, 34B samples): switch them off
    argv = ["plot", table, "--out", str(out_dir), "--frontier", "pareto", "--pure-power-law", "--no-offset"]
    argv += ["--max-compute", "none", "--max-samples-seen", "none"]
    assert _run(parser, *argv, "--bootstrap", "20") == 0
    pngs = list(out_dir.glob("*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out_dir / "index.html").read_text()
    assert "data:image/png;base64," in page and "LAION-2B" in page
    assert "src='http" not in page and 'src="http' not in page
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
    args = parser.parse_args(["compare", "fit", "runs.csv"])
    default = build_config(args, BEST_PER_CELL)
    assert default.filters == RunFilter() and default.frontier == FrontierConfig() and default.fit == FitConfig()
    argv = ["--start-grid", "study", "--frontier-rows", "points", "--bins", "30", "--max-compute", "none"]
    argv += ["--min-compute", "1e7", "--no-divergence-filter"]
    config = build_config(parser.parse_args(["compare", "fit", "runs.csv", *argv]), BEST_PER_CELL)
    assert config.fit.start_grid == "study"
    assert config.frontier == FrontierConfig(method="pareto_bin", bins=30, rows="points")
    assert config.filters == RunFilter(max_compute=None, min_compute=1e7, divergence_compute=None)


def test_every_option_has_help(parser):
    compare = parser._subparsers._group_actions[0].choices["compare"]
    commands = compare._subparsers._group_actions[0].choices
    assert set(commands) == {"fit", "plot", "optimal"}
    for name, sub in commands.items():
        for action in sub._actions:
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
