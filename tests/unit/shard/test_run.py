import hashlib
import json
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.io import fs
from curate.select.run import uids_to_u8u8
from curate.shard.run import ShardConfig, run_shard
from curate.shard.synthetic import SyntheticRun, make_run, write_selection


def _tar(path):
    with tarfile.open(path) as t:
        return [(m.name, t.extractfile(m).read()) for m in t]


def _manifest(run):
    """The whole manifest: its parts (one per block of the stream) read in order."""
    parts = sorted((Path(run) / "shard" / "manifest").glob("part-*.parquet"))
    assert parts, f"no manifest parts in {run}/shard/manifest"
    return pa.concat_tables([pq.read_table(p) for p in parts])


def _seen(run):
    """How many times the planned stream shows each uid: the replay list of a streamed folder (`stream/`),
    or the manifest of a materialised one (one row per written copy)."""
    out = Path(run) / "shard"
    parts = sorted((out / ("stream" if (out / "stream").exists() else "manifest")).glob("part-*.parquet"))
    return Counter(u for p in parts for u in pq.read_table(p, columns=["uid"]).column("uid").to_pylist())


def _files(folder):
    """Every file under `folder` by its relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_one_pass_keeps_the_seeded_order_keys_and_layout(run_dir):
    stats = run_shard(run_dir, ShardConfig(samples_per_shard=25, seed=4))
    out = Path(run_dir) / "shard"
    m = _manifest(run_dir)
    uids = sorted(m.column("uid").to_pylist())
    legacy = sorted(uids, key=lambda u: hashlib.sha256(f"4:{u}".encode()).digest())
    assert m.column("uid").to_pylist() == legacy
    assert m.column("key").to_pylist()[:2] == ["00000000000", "00000000001"]
    assert m.column("key").to_pylist()[25] == "00001000000"
    assert set(m.column("repetition").to_pylist()) == {1} and set(m.column("copy").to_pylist()) == {0}
    assert json.loads((out / "sizes.json").read_text()) == {"00000.tar": 25, "00001.tar": 25, "00002.tar": 10}
    # one manifest part per block of 25 stream positions, written beside that block's tar
    parts = sorted(p.name for p in (out / "manifest").iterdir() if p.is_file())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    # each part and tar with its checksum sidecar (curate.io.sums)
    assert sorted(p.name for p in (out / "manifest" / "_sums").iterdir()) == [f"{p}.json" for p in parts]
    assert sorted(p.name for p in (out / "_sums").iterdir()) == [f"{i:05d}.tar.json" for i in range(3)]
    assert [pq.read_metadata(out / "manifest" / p).num_rows for p in parts] == [25, 25, 10]
    assert not (out / "stream").exists() and not (out / "_work").exists()
    assert stats["kept"] == 60 and stats["samples_written"] == 60 and stats["histogram"] == {"1": 60}
    # one pass stores the same bytes either way; auto keeps the plain materialised layout
    plan = json.loads((out / "plan.json").read_text())
    tar_bytes = sum(json.loads((out / f"0000{i}_stats.json").read_text())["bytes"] for i in range(3))
    assert plan["repetition"] == stats["repetition"] == "materialised"
    assert plan["bytes_if_materialised"] == plan["bytes_if_streamed"] == tar_bytes == stats["bytes"]
    assert json.loads((out / "00002_stats.json").read_text())["samples"] == 10
    # the original files are carried over under the new key, and the json still names the uid
    first = _tar(out / "00000.tar")[:3]
    assert [n for n, _ in first] == ["00000000000.jpg", "00000000000.json", "00000000000.txt"]
    assert json.loads(first[1][1])["uid"] == legacy[0]
    assert m.schema.metadata[b"curate.schema"] == b"manifest.v2"
    assert m.column("clip_probe").type == pa.float32()  # dynamic score columns are carried


def test_same_seed_same_bytes_and_rerun_is_a_no_op(tmp_path):
    outs = []
    for name in ("a", "b"):
        make_run(str(tmp_path / name), SyntheticRun())
        run_shard(str(tmp_path / name), ShardConfig(samples_per_shard=25, seed=1, passes=2))
        outs.append({n: b for n, b in _files(tmp_path / name / "shard").items()
                     if n.endswith((".tar", ".parquet")) or n in ("sizes.json", "plan.json")})
    assert outs[0] == outs[1]
    before = (tmp_path / "a" / "shard" / "_stats.json").stat().st_mtime_ns
    run_shard(str(tmp_path / "a"), ShardConfig(samples_per_shard=25, seed=1, passes=2))
    assert (tmp_path / "a" / "shard" / "_stats.json").stat().st_mtime_ns == before


def test_an_interrupted_run_resumes_and_a_changed_config_starts_over(run_dir):
    cfg = ShardConfig(samples_per_shard=20, seed=2)
    run_shard(run_dir, cfg)
    out = Path(run_dir) / "shard"
    want = (out / "00001.tar").read_bytes()
    (out / "_SUCCESS").unlink()
    (out / "00001.tar").unlink()
    (out / "_tmp.deadbeef.00002.tar").write_bytes(b"half")
    run_shard(run_dir, cfg)
    assert (out / "00001.tar").read_bytes() == want and not list(out.glob("_tmp.*"))
    (out / "_SUCCESS").unlink()
    run_shard(run_dir, ShardConfig(samples_per_shard=30, seed=2))
    assert sorted(p.name for p in out.glob("*.tar")) == ["00000.tar", "00001.tar"]


def test_safety_listed_and_non_surviving_uids_are_never_written(tmp_path):
    run = str(tmp_path / "run")
    uids = make_run(run, SyntheticRun(safety_every=4))
    dec = pq.read_table(Path(run) / "dedup" / "decisions")
    reason = dec.column("reason").to_pylist()
    reason[1] = "duplicate_image"
    fs.write_table(dec.set_column(3, "reason", pa.array(reason, pa.string())),
                   fs.join(run, "dedup", "decisions", "00000.parquet"))
    write_selection(run, uids, None)  # the selection asks for everything
    stats = run_shard(run, ShardConfig(samples_per_shard=100, passes=3))
    written = set(_manifest(run).column("uid").to_pylist())
    assert not written & {u for i, u in enumerate(uids) if i % 4 == 0}
    assert uids[1] not in written and len(written) == 44
    assert stats["rejected"] == {"not_dedup_survivor": 1, "safety_hash_list": 15}
    # every sample repeats, so auto streams: each written once, the stream replays it 3 times
    assert stats["repetition"] == "streamed" and stats["samples_written"] == 44
    assert stats["rows_in"] == 60 and stats["samples_seen"] == 3 * 44 == sum(_seen(run).values())
    assert set(_seen(run)) == written
    plan = json.loads((Path(run) / "shard" / "plan.json").read_text())
    assert plan["bytes_if_streamed"] == stats["bytes"] and plan["bytes_if_materialised"] == 3 * stats["bytes"]
    names = {json.loads(b)["uid"] for n, b in _tar(Path(run) / "shard" / "00000.tar") if n.endswith(".json")}
    assert names == written


def test_weights_from_select_set_the_counts(tmp_path):
    run = str(tmp_path / "run")
    make_run(run, SyntheticRun(weights=True))
    stats = run_shard(run, ShardConfig(samples_per_shard=1000, samples_seen=240))
    m = _manifest(run)
    per_uid = _seen(run)
    weight = dict(zip(m.column("uid").to_pylist(), m.column("weight").to_pylist(), strict=True))
    planned = dict(zip(m.column("uid").to_pylist(), m.column("repetition").to_pylist(), strict=True))
    assert sum(per_uid.values()) == 240 == stats["samples_seen"] and planned == dict(per_uid)
    for u, n in per_uid.items():
        assert abs(n - 240 * weight[u] / 120) < 1  # weights 1,2,3 repeat: they sum to 120
    keys = m.column("key").to_pylist()
    assert len(set(keys)) == len(keys)


def test_the_byte_cap_closes_shards_early(run_dir):
    one = run_shard(run_dir, ShardConfig(samples_per_shard=1000, max_shard_bytes=4000))
    sizes = json.loads((Path(run_dir) / "shard" / "sizes.json").read_text())
    assert len(sizes) > 1 and sum(sizes.values()) == 60 and one["shards"] == len(sizes)
    for name in sizes:
        stats = json.loads((Path(run_dir) / "shard" / name.replace(".tar", "_stats.json")).read_text())
        assert stats["bytes"] <= 4000


def _img2dataset_shards(run, folder):
    """Our download shards rewritten as img2dataset writes them: tar + parquet (key, caption, status)."""
    folder.mkdir()
    samples = pq.read_table(Path(run) / "download" / "samples")
    for shard in sorted(set(samples.column("shard").to_pylist())):
        (folder / shard).write_bytes((Path(run) / "download" / "shards" / shard).read_bytes())
        rows = samples.filter(pa.compute.equal(samples.column("shard"), shard))
        t = pa.table({"key": rows.column("key"), "caption": rows.column("caption"), "uid": rows.column("uid"),
                      "status": ["success"] * rows.num_rows})
        pq.write_table(t, folder / shard.replace(".tar", ".parquet"))


def test_external_datacomp_selection_and_img2dataset_shards(tmp_path):
    src_run = str(tmp_path / "src")
    uids = make_run(src_run, SyntheticRun())
    _img2dataset_shards(src_run, tmp_path / "i2d")
    chosen = [uids[i] for i in (3, 5, 5, 8)] + ["f" * 32]  # uid 5 listed twice; one uid in no shard
    arr = uids_to_u8u8(chosen)
    np.save(tmp_path / "sel.npy", arr)
    out = str(tmp_path / "out")
    stats = run_shard(out, ShardConfig(uids=str(tmp_path / "sel.npy"), source_shards=str(tmp_path / "i2d"),
                                       samples_seen=8))
    counts = _seen(out)
    assert counts == {uids[3]: 2, uids[5]: 4, uids[8]: 2}  # DataComp: a uid listed twice weighs double
    assert stats["rejected"] == {"not_in_source_shards": 1}


def test_bad_inputs_are_one_line_errors(tmp_path, run_dir):
    np.save(tmp_path / "bad.npy", np.arange(3))
    with pytest.raises(CurateError, match="not DataComp's u8,u8"):
        run_shard(str(tmp_path / "x"), ShardConfig(uids=str(tmp_path / "bad.npy")))
    with pytest.raises(CurateError, match="repetition must be"):
        run_shard(run_dir, ShardConfig(repetition="sometimes"))
    with pytest.raises(CurateError, match="not complete"):
        run_shard(str(tmp_path / "empty"), ShardConfig())


def _parse(argv):
    import argparse

    from curate.shard.cli import add_parser

    parser = argparse.ArgumentParser(prog="curate")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_accepts_trainer_terms(run_dir, capsys):
    args = _parse(["shard", run_dir, "--samples-seen", "1.2e2", "--samples-per-shard", "50",
                   "--repetition", "streamed", "--engine", "local", "--threads", "3"])
    assert args.func(args) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["samples_seen"] == 120 and stats["samples_written"] == 60 and stats["shards"] == 2
    assert _parse(["shard", "r", "--samples-seen", "12.8e9"]).samples_seen == 12_800_000_000
    from curate.shard import cli, run

    assert _parse(["shard", "r"]).repetition == ShardConfig().repetition == "auto" and cli.MODES == run.MODES
    with pytest.raises(SystemExit):
        _parse(["shard", "r", "--samples-seen", "5", "--passes", "2"])
    assert "not allowed with" in capsys.readouterr().err
    args = _parse(["shard", "r", "--engine", "spark", "--threads", "2"])
    with pytest.raises(CurateError, match="--threads is for --engine local"):
        args.func(args)


def test_engine_auto_shards_a_small_local_selection_in_process(run_dir, monkeypatch, caplog):
    """--engine auto: in-process for a selection within AUTO_LOCAL_SAMPLES on local disk and a local master;
    Spark past that size, with a cluster master, or before the selection exists."""
    import logging

    from curate.shard import cli

    selected = int(np.load(Path(run_dir) / "select" / "uids.npy").shape[0])
    with caplog.at_level(logging.INFO, logger="curate.shard"):
        assert cli._auto_engine(_parse(["shard", run_dir]), ShardConfig()) == "local"
    assert f"{selected} selected samples" in caplog.text
    assert cli._auto_engine(_parse(["shard", run_dir, "--master", "spark://10.0.0.1:7077"]), ShardConfig()) == "spark"
    assert cli._auto_engine(_parse(["shard", run_dir + "-none"]), ShardConfig()) == "spark"
    monkeypatch.setattr(cli, "AUTO_LOCAL_SAMPLES", selected - 1)
    assert cli._auto_engine(_parse(["shard", run_dir]), ShardConfig()) == "spark"


def test_a_copied_run_reruns_to_the_same_bytes(tmp_path, run_dir):
    import shutil

    run_shard(run_dir, ShardConfig(samples_per_shard=25))
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    before = _files(copy / "shard")
    assert "manifest/part-00000.parquet" in before
    (copy / "shard" / "_SUCCESS").unlink()
    (copy / "shard" / "00000.tar").write_bytes(before["00000.tar"][:100])  # damaged, its stats still there
    run_shard(str(copy), ShardConfig(samples_per_shard=25))
    assert _files(copy / "shard") == before
