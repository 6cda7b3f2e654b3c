"""A rerun of a finished stage starts no engine: the CLI prints the stage's stats, or the `--redo` error when
the configuration differs, before a Spark JVM or a Ray cluster would start (curate.cliutil.reported_finished)."""

from __future__ import annotations

import json

import pytest

from curate.cli import build_parser, main
from curate.io.stagedir import StageDir


def _config(argv: list[str]):
    args = build_parser().parse_args(argv)
    if args.command == "dedup":
        from curate.dedup.cli import config_from_args
        return config_from_args(args)
    if args.command == "score":
        from curate.score.cli import config_from_args
        return config_from_args(args)
    if args.command == "select":
        from curate.select.cli import config_from_args
        return config_from_args(args)
    from curate.shard.run import ShardConfig
    return ShardConfig(samples_per_shard=args.samples_per_shard)


def _finished(run, argv: list[str]) -> dict:
    """Stage argv[0] of `run` marked finished with the configuration `argv` gives (no work done)."""
    stats = {"stage": argv[0], "kept": 7, "note": "written by the test"}
    sd = StageDir.open(str(run), argv[0], _config(argv))
    sd.finish(stats)
    return stats


def _no_engine(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("an engine was started for a finished stage")

    import curate.dedup.cli
    import curate.select.cli
    import curate.shard.cli

    for cli in (curate.dedup.cli, curate.select.cli, curate.shard.cli):
        monkeypatch.setattr(cli, "spark_engine", refuse)
    ray = pytest.importorskip("curate.engines.ray")
    monkeypatch.setattr(ray, "RayEngine", refuse)


CASES = {
    "dedup": (["--near-distance", "3"], ["--near-distance", "5"]),
    "score": (["--decoder", "exact"], ["--decoder", "pil-draft"]),  # draft decoding changes the scores
    "select-spark": (["--engine", "spark", "--clip-threshold", "0.7"],
                     ["--engine", "spark", "--clip-threshold", "0.8"]),
    **{f"shard-{engine}": (["--engine", engine, "--samples-per-shard", "4"],
                           ["--engine", engine, "--samples-per-shard", "5"]) for engine in ("spark", "ray")},
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_finished_stage_reruns_without_an_engine(case, tmp_path, monkeypatch, capsys):
    stage = case.split("-")[0]
    same, other = CASES[case]
    run = tmp_path / "run"
    stats = _finished(run, [stage, str(run), *same])
    _no_engine(monkeypatch)
    assert main(["-q", stage, str(run), *same]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == stats
    assert main(["-q", stage, str(run), *other]) == 2  # another configuration: the --redo error, still no engine
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("curate: error:") and "--redo" in err[-1], err
