"""The CLI's promises: --help everywhere, one-line errors with a non-zero exit, no tracebacks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from curate.cli import build_parser, main

COMMANDS = ["download", "dedup", "score", "select", "shard", "audit", "demo", "compare"]


def test_help_lists_every_stage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for cmd in COMMANDS:
        assert cmd in out


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as info:
        main([cmd, "--help"])
    assert info.value.code == 0
    assert "usage: curate " + cmd in capsys.readouterr().out


@pytest.mark.parametrize("argv,needle", [
    (["select", "RUN", "--clip-fraction", "1.5"], "not in (0, 1]"),
    (["shard", "RUN", "--samples-per-shard", "-3"], "must be positive"),
    (["bogus"], "invalid choice"),
    (["dedup", "RUN", "--spark-conf", "driver.memory=4g"], "with a spark.* key"),
    (["shard", "RUN", "--spark-conf", "spark.driver.memory"], "is not KEY=VALUE"),
])
def test_bad_arguments_exit_2_with_a_message(argv, needle, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert needle in capsys.readouterr().err


@pytest.mark.parametrize("argv,needle", [
    (["audit", "/nonexistent/run"], "unfinished stages"),
    (["select", "/nonexistent/run"], "run `curate score` first"),
    (["shard", "/nonexistent/run"], "run `curate select` first"),
    (["download", "RUN", "--input", "/nonexistent/urls.parquet"], "no such file"),
    (["download", "RUN", "--input", "bad.parquet"], "cannot read parquet"),
])
def test_missing_inputs_are_one_line_errors(tmp_path, argv, needle):
    (tmp_path / "bad.parquet").write_bytes(b"this is not parquet")
    proc = subprocess.run([sys.executable, "-m", "curate.cli", *argv], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("curate: error:") and needle in err[0]


def test_parser_builds_without_side_effects():
    assert build_parser().prog == "curate"


@pytest.mark.parametrize("cmd", ["download", "dedup", "select", "shard"])
def test_spark_conf_reaches_the_session_we_create(cmd):
    from curate.cliutil import spark_engine

    extra = ["--input", "urls.parquet"] if cmd == "download" else []
    args = build_parser().parse_args([cmd, "RUN", *extra, "--master", "local[1]", "--spark-conf",
                                      "spark.driver.memory=3g", "--spark-conf", "spark.driver.maxResultSize=0"])
    engine = spark_engine(args)  # not entered: no JVM starts
    assert engine.master == "local[1]"
    assert engine.conf["spark.driver.memory"] == "3g" and engine.conf["spark.driver.maxResultSize"] == "0"
