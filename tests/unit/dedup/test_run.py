"""The dedup stage on a hand-made download folder: hashes per shard, decisions, stats, resumability,
reference inputs (eval folder, hash lists) and one-line errors for bad ones."""

from __future__ import annotations

import hashlib
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import schemas
from curate.dedup.cli import add_parser
from curate.dedup.refs import load_hash_lists
from curate.dedup.run import DedupConfig, run_dedup
from curate.demo import content
from curate.demo.shapes import random_scene
from curate.errors import CurateError
from curate.io import fs
from curate.io.tario import DeterministicTarWriter


def _images(n: int) -> list[bytes]:
    rng = random.Random(5)
    return [content.jpeg(random_scene(rng), (240, 240), rng) for _ in range(n)]


@pytest.fixture()
def run_dir(tmp_path):
    """Two download shards: 8 distinct images, one exact copy, one near copy, one listed, one failure."""
    imgs = _images(8)
    near = content.variant(imgs[1], "reencode", random.Random(0))
    bodies = [*imgs, imgs[0], near]  # uid 8: exact copy of 0, uid 9: near copy of 1
    run = tmp_path / "run"
    rows = []
    for shard in range(2):
        with _open(run / "download" / "shards" / f"{shard:05d}.tar") as fh:
            tar = DeterministicTarWriter(fh)
            for i in range(shard * 5, shard * 5 + 5):
                key = f"{shard:05d}{i:04d}"
                tar.add(f"{key}.jpg", bodies[i])
                rows.append({"uid": f"{i:032x}", "url": f"http://h.org/{i}.jpg", "caption": f"caption {i}",
                             "status": "success", "sha256": hashlib.sha256(bodies[i]).hexdigest(),
                             "shard": f"{shard:05d}.tar", "key": key})
            tar.close()
    rows.append({"uid": "f" * 32, "url": "http://h.org/gone.jpg", "caption": "gone", "status": "http_error",
                 "sha256": None, "shard": "00001.tar", "key": "000019999"})
    samples = pa.Table.from_pylist(rows)
    for name in ("error", "width", "height", "original_width", "original_height"):
        typ = schemas.load("samples").field(name).type
        samples = samples.append_column(name, pa.nulls(samples.num_rows, typ))
    fs.write_table(samples.slice(0, 5), str(run / "download" / "samples" / "00000.parquet"), schema="samples")
    fs.write_table(samples.slice(5), str(run / "download" / "samples" / "00001.parquet"), schema="samples")
    fs.write_bytes(str(run / "download" / "_SUCCESS"), b"")
    return run, imgs


def _open(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "wb")


@pytest.mark.spark
def test_stage_outputs_stats_and_rerun(spark_engine, run_dir, tmp_path):
    run, imgs = run_dir
    listed = tmp_path / "list.txt"
    listed.write_text(f"# test list\n{hashlib.md5(imgs[3]).hexdigest()}\n")
    evals = tmp_path / "eval"
    evals.mkdir()
    (evals / "e.jpg").write_bytes(content.variant(imgs[5], "reencode", random.Random(1)))
    config = DedupConfig(hash_lists=(str(listed),), eval_images=str(evals))
    stats = run_dedup(spark_engine, str(run), config)
    hashes = pq.read_table(run / "dedup" / "hashes")
    assert sorted(p.name for p in (run / "dedup" / "hashes").iterdir() if p.is_file()) == [
        "00000.parquet", "00001.parquet"]
    assert sorted(p.name for p in (run / "dedup" / "hashes" / "_sums").iterdir()) == [
        "00000.parquet.json", "00001.parquet.json"]  # their checksum sidecars (curate.io.sums)
    assert hashes.num_rows == 10 and hashes.column("phash").null_count == 0
    assert sorted(p.name for p in (run / "dedup" / "decisions").iterdir() if p.is_file()) == [
        "00000.parquet", "00001.parquet"]  # one part per download shard, written by the executors
    dec = {int(r["uid"], 16): r["reason"] for r in pq.read_table(run / "dedup" / "decisions").to_pylist()
           if r["uid"] != "f" * 32}
    assert dec == {0: None, 1: None, 2: None, 3: "safety_hash_list", 4: None, 5: "eval_contamination", 6: None,
                   7: None, 8: "duplicate_image", 9: "near_duplicate"}
    assert stats["safety_hash_list_removed"] == 1 and stats["rows_in"] == 10
    assert stats["rejected"] == {"duplicate_image": 1, "eval_contamination": 1, "near_duplicate": 1,
                                 "safety_hash_list": 1}
    assert not (run / "dedup" / "_work").exists()  # the rules' checkpoints are gone once the stage is done
    files = sorted(p for p in (run / "dedup").rglob("*") if p.is_file())
    assert all(imgs[3] not in p.read_bytes() for p in files)  # the listed image is copied nowhere
    before = {p: p.read_bytes() for p in files}
    assert run_dedup(spark_engine, str(run), config) == stats  # finished: a no-op
    assert {p: p.read_bytes() for p in files} == before


@pytest.mark.spark
def test_interrupted_hashing_resumes(spark_engine, run_dir):
    run, _ = run_dir
    run_dedup(spark_engine, str(run))
    first = (run / "dedup" / "hashes" / "00000.parquet").read_bytes()
    (run / "dedup" / "_SUCCESS").unlink()
    (run / "dedup" / "hashes" / "00001.parquet").unlink()
    run_dedup(spark_engine, str(run))
    assert (run / "dedup" / "hashes" / "00000.parquet").read_bytes() == first
    assert (run / "dedup" / "hashes" / "00001.parquet").exists()


def test_hash_list_formats(tmp_path):
    md5, sha1, sha256, ph = "a" * 32, "b" * 40, "c" * 64, "0123456789abcdef"
    (tmp_path / "l.csv").write_text(f"name,sha1\nx,{sha1}\ny,{sha1.upper()}\n")
    pq.write_table(pa.table({"hash": [md5, ph]}), tmp_path / "l.parquet")
    (tmp_path / "l.txt").write_text(f"{sha256}  # comment\n\n")
    refs = load_hash_lists([str(tmp_path / n) for n in ("l.csv", "l.parquet", "l.txt")])
    assert (refs.md5, refs.sha1, refs.sha256, refs.phash) == ({md5}, {sha1}, {sha256}, {ph})


@pytest.mark.parametrize("text", ["nothex" * 6, "abc"])
def test_bad_hash_list_is_a_one_line_error(tmp_path, text):
    (tmp_path / "bad.txt").write_text(text + "\n")
    with pytest.raises(CurateError, match="entry 1") as exc:
        load_hash_lists([str(tmp_path / "bad.txt")])
    assert "\n" not in str(exc.value)
    with pytest.raises(CurateError, match="no such file"):
        load_hash_lists([str(tmp_path / "missing.txt")])


@pytest.mark.spark
def test_missing_eval_folder_fails_before_any_work(spark_engine, run_dir, tmp_path):
    run, _ = run_dir
    with pytest.raises(CurateError, match="not a folder"):
        run_dedup(spark_engine, str(run), DedupConfig(eval_images=str(tmp_path / "none")))
    assert not (run / "dedup").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(CurateError, match="no decodable"):
        run_dedup(spark_engine, str(run), DedupConfig(eval_images=str(empty)))


def test_cli_flags_build_the_config():
    import argparse

    from curate.dedup.cli import config_from_args

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["dedup", "RUN", "--near-distance", "5", "--hash-list", "a.txt",
                              "--hash-list", "b.csv", "--placeholder-min-urls", "0", "--no-pairs"])
    config = config_from_args(args)
    assert (config.near_distance, config.hash_lists) == (5, ("a.txt", "b.csv"))
    assert config.placeholder_min_urls == 0 and not config.by_pair and config.by_url
    with pytest.raises(CurateError):
        config_from_args(parser.parse_args(["dedup", "RUN", "--near-distance", "-1"]))
