"""`curate verify RUN`: every part and tar of a run against its checksum sidecar, every mismatch reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curate.cli import main
from curate.shard.run import ShardConfig, run_shard
from curate.shard.synthetic import SyntheticRun, make_run
from curate.verify import verify_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished synthetic run with its shard stage: parts and tars of every stage have sidecars."""
    run = tmp_path_factory.mktemp("verify") / "run"
    make_run(str(run), SyntheticRun(n=40, per_shard=20))
    run_shard(str(run), ShardConfig(samples_per_shard=15, seed=1), threads=1)
    return run


def test_an_intact_run_verifies(run, capsys):
    assert main(["verify", str(run)]) == 0
    out = capsys.readouterr().out
    assert "MISMATCH" not in out and "verify: ok:" in out
    report = verify_run(str(run))
    assert report.ok and not report.unverified and not report.orphans
    assert set(report.stages) == {"download", "dedup", "score", "select", "shard"}
    assert report.stages["shard"]["checked"] >= 3 + 3  # 3 tars of 15, 15, 10 samples and the manifest parts


def test_every_corrupted_file_is_reported(run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    part = copy / "select" / "decisions" / "00001.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x10
    part.write_bytes(bytes(data))
    tar = copy / "shard" / "00001.tar"
    tar.write_bytes(tar.read_bytes()[:-1024])
    (copy / "score" / "scores" / "_sums" / "00000.parquet.json").unlink()  # a part written before sidecars

    assert main(["verify", str(copy)]) == 1
    lines = capsys.readouterr().out.splitlines()
    bad = sorted(line.split()[1].rstrip(":") for line in lines if line.startswith("MISMATCH"))
    assert bad == sorted([str(part), str(tar)])
    assert f"unverified (no sidecar): {copy}/score/scores/00000.parquet" in lines

    assert main(["verify", "--json", str(copy)]) == 1
    got = json.loads(capsys.readouterr().out)
    assert not got["ok"] and got["unverified"] == [f"{copy}/score/scores/00000.parquet"]
    by_path = {m["path"]: m for m in got["mismatches"]}
    assert set(by_path) == {str(part), str(tar)}
    assert by_path[str(tar)]["size"] == by_path[str(tar)]["expected_size"] - 1024
    assert by_path[str(part)]["size"] == by_path[str(part)]["expected_size"]
    assert by_path[str(part)]["algorithm"] == "sha256" and by_path[str(tar)]["algorithm"] == "crc32c"
    assert by_path[str(part)]["digest"] != by_path[str(part)]["expected_digest"]
    assert got["stages"]["select"]["mismatches"] == 1 and got["stages"]["shard"]["mismatches"] == 1


def test_a_missing_run_is_an_error(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nothing")]) == 2
    assert "run directory not found" in capsys.readouterr().err
