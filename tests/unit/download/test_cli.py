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


def test_consent_safety_and_politeness_flags_reach_the_config():
    args = build_parser().parse_args([
        "download", "RUN", "--input", "in.parquet", "--denylist", "a.txt", "--denylist", "s3://b/deny.parquet",
        "--hash-list", "h.csv", "--hash-list", "h2.txt", "--hash-list-distance", "4", "--hash-list-pdq-distance",
        "20", "--no-robots", "--no-tdmrep", "--no-blur-faces", "--host-concurrency", "2", "--host-rate", "5",
        "--host-give-up", "3", "--retry-after-max", "30"])
    config = config_from_args(args)
    assert (config.denylists, config.hash_lists, config.hash_list_distance, config.hash_list_pdq_distance) == (
        ("a.txt", "s3://b/deny.parquet"), ("h.csv", "h2.txt"), 4, 20)
    assert (config.robots, config.tdmrep, config.blur_faces) == (False, False, False)
    assert (config.host_concurrency, config.host_rate, config.host_give_up, config.retry_after_max) == (2, 5.0, 3, 30)
    # robots.txt and TDMRep are on unless turned off; face blurring follows the preset unless a flag says
    d = config_from_args(build_parser().parse_args(["download", "RUN", "--input", "in.parquet"]))
    assert (d.robots, d.tdmrep, d.blur_faces, d.hash_list_pdq_distance) == (True, True, None, 31)


def test_help_names_every_consent_flag(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["download", "--help"])
    text = capsys.readouterr().out
    for flag in ("--denylist", "--hash-list", "--hash-list-pdq-distance", "--no-robots", "--no-tdmrep",
                 "--blur-faces", "--host-concurrency", "--host-rate", "--host-give-up", "--retry-after-max"):
        assert flag in text, flag
