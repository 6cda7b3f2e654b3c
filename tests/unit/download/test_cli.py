"""`curate download` flags become the DownloadConfig the library runs with; bad values are one-line errors."""

from __future__ import annotations

import pytest

from curate.cli import build_parser, main
from curate.download.cli import config_from_args
from curate.download.config import DownloadConfig


def test_defaults_are_the_library_defaults():
    args = build_parser().parse_args(["download", "RUN", "--input", "in.parquet"])
    assert config_from_args(args) == DownloadConfig(input="in.parquet")
    assert args.engine == "spark"


def test_flags_reach_the_config():
    args = build_parser().parse_args([
        "download", "RUN", "--input", "in.csv", "--input-format", "csv", "--preset", "laion", "--url-col", "link",
        "--source-col", "dataset",
        "--deadline", "7.5", "--max-body-bytes", "1000", "--max-pixels", "2000", "--retries", "3",
        "--retry-failed", "--user-agent", "bot/1", "--allow-address", "127.0.0.1:80", "--allow-address",
        "10.0.0.0/8", "--engine", "ray"])
    config = config_from_args(args)
    assert (config.input_format, config.preset, config.url_col, config.deadline, config.max_body_bytes,
            config.max_pixels, config.retries, config.retry_failed, config.user_agent, config.allow_addresses) == (
        "csv", "laion", "link", 7.5, 1000, 2000, 3, True, "bot/1", ("127.0.0.1:80", "10.0.0.0/8"))
    assert args.engine == "ray" and config.source_col == "dataset"


@pytest.mark.parametrize("argv", [["--deadline", "0"], ["--retries", "-1"], ["--preset", "nope"],
                                  ["--engine", "dask"], ["--max-body-bytes", "x"]])
def test_bad_flags_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["download", "RUN", "--input", "in.parquet", *argv])
    assert info.value.code == 2


def test_bad_input_is_one_line_before_any_engine(tmp_path, capsys):
    bad = tmp_path / "in.jsonl"
    bad.write_text('{"link": "http://a"}\n')
    assert main(["download", str(tmp_path / "run"), "--input", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("curate: error:") and "missing column 'url'" in err and "\n" not in err
