"""Export runs: resumable one tar at a time, on any fsspec filesystem, from the CLI."""

import json
import os
import shutil

import fsspec
import pytest

from curate.cli import main
from curate.errors import CurateError
from curate.export.run import ExportConfig, export_dir, run_export
from curate.io import fs


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt, lost", [("hf-parquet", "00001.parquet"), ("mds", "00001")])
def test_an_export_killed_halfway_rewrites_only_the_missing_tar(tmp_path, make_shard_run, fmt, lost):
    run = make_shard_run(tmp_path)
    run_export(str(run), ExportConfig(fmt))
    out = run / "export" / fmt
    before = _files(out)
    kept = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != lost}
    # killed halfway: one output missing, a half-written temporary one left, no stats or marker yet
    shutil.rmtree(out / lost) if (out / lost).is_dir() else (out / lost).unlink()
    for name in ("_SUCCESS", "_stats.json", "index.json"):
        if (out / name).exists():
            (out / name).unlink()
    (out / f"{fs.TMP_PREFIX}dead.{lost}").write_bytes(b"half")
    stats = run_export(str(run), ExportConfig(fmt))
    assert stats["tars_written"] == 1 and stats["tars_skipped"] == 2 and stats["samples"] == 60
    assert _files(out).keys() == before.keys()
    assert {k: v for k, v in _files(out).items() if not k.startswith("_")} == \
        {k: v for k, v in before.items() if not k.startswith("_")}
    assert all(out.joinpath(n).stat().st_mtime_ns == t for n, t in kept.items() if n[:5].isdigit())  # not rewritten
    assert run_export(str(run), ExportConfig(fmt)) == stats  # finished: a no-op


def test_exports_on_an_object_store_are_the_same_bytes(tmp_path, make_shard_run, shard_run):
    mem = fsspec.filesystem("memory")
    remote = "memory://export-test/run"
    for stage in sorted(p.name for p in shard_run.iterdir() if p.name != "export"):  # the run, as the stages left it
        mem.put(str(shard_run / stage), f"/export-test/run/{stage}", recursive=True)
    for fmt in ("hf-parquet", "mds"):
        run_export(remote, ExportConfig(fmt))
        local = shard_run / "export" / fmt
        if not local.exists():
            run_export(str(shard_run), ExportConfig(fmt))
        want = {k: v for k, v in _files(local).items() if k != "_stats.json"}
        root = f"/export-test/run/export/{fmt}"
        got = {f[len(root) + 1:]: mem.cat_file(f) for f in mem.find(root) if not f.endswith("_stats.json")}
        assert got == want, fmt
    mem.rm("/export-test", recursive=True)


def test_cli_exports_and_reports_one_stats_line(shard_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(shard_run / "shard", run / "shard")
    assert main(["export", str(run), "--format", "hf-parquet", "--engine", "local"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["format"] == "hf-parquet" and stats["samples_written"] == 60
    assert sorted(os.listdir(export_dir(str(run), "hf-parquet")))[:3] == ["00000.parquet", "00001.parquet",
                                                                       "00002.parquet"]


def test_an_unfinished_shard_stage_is_a_one_line_error(tmp_path, capsys):
    assert main(["export", str(tmp_path / "nowhere"), "--format", "mds", "--engine", "local"]) == 2
    assert "run `curate shard` first" in capsys.readouterr().err
    with pytest.raises(CurateError, match="format must be one of"):
        run_export(str(tmp_path), ExportConfig("tfrecord"))


def test_hf_parquet_parts_carry_sidecars_that_curate_verify_checks(tmp_path, make_shard_run):
    import hashlib

    from curate.verify import verify_run

    run = make_shard_run(tmp_path)
    run_export(str(run), ExportConfig("hf-parquet"))
    out = run / "export" / "hf-parquet"
    parts = sorted(out.glob("*.parquet"))
    for part in parts:
        side = json.loads((out / "_sums" / f"{part.name}.json").read_text())
        assert side == {"sha256": hashlib.sha256(part.read_bytes()).hexdigest(), "size": part.stat().st_size}
    assert verify_run(str(run)).stages["export"]["checked"] == len(parts) > 0
    data = bytearray(parts[1].read_bytes())
    data[len(data) // 2] ^= 0xFF
    parts[1].write_bytes(bytes(data))
    report = verify_run(str(run))
    assert [m["path"].rsplit("/", 1)[-1] for m in report.mismatches] == [parts[1].name]
