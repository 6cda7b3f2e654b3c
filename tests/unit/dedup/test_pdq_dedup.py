"""PDQ in dedup (issue 17): near duplicates and eval contamination by PDQ with `near_hash="pdq"`, PDQ pairs
on Spark with exact recall, and a hash list that arrives after the download taking the listed samples' bytes
off the disk (tars rewritten, samples rows marked)."""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import tarfile

import numpy as np
import pdqhash
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from curate import schemas
from curate.dedup.cli import add_parser, config_from_args
from curate.dedup.config import DedupConfig
from curate.dedup.mih import Layout, choose_parts
from curate.dedup.phash import hamming, phash_bytes
from curate.errors import CurateError
from curate.io import dataset, fs, tarindex
from curate.io.tario import write_tar_file


def _photo(seed: int) -> Image.Image:
    """A textured random picture: PDQ quality 100, unrelated seeds about 128 PDQ bits apart."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((256, 256), Image.BICUBIC)


def _marked(img: Image.Image) -> Image.Image:
    """The same picture with a white box stamped in a corner: a near copy for PDQ, not for a 3-bit pHash."""
    out = img.copy()
    ImageDraw.Draw(out).rectangle((170, 170, 230, 230), fill=(255, 255, 255))
    return out


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _pdq(data: bytes) -> str:
    """PDQ straight from the pdqhash binding (not through curate): 256 bits packed big-endian as hex."""
    bits, quality = pdqhash.compute(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
    assert quality >= 50
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def _bits(a: str, b: str) -> int:
    return sum(bin(x ^ y).count("1") for x, y in zip(bytes.fromhex(a), bytes.fromhex(b), strict=True))


def test_config_and_flags_for_pdq():
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    config = config_from_args(parser.parse_args(["dedup", "RUN"]))
    assert (config.near_hash, config.pdq_distance, config.hash_list_pdq_distance) == ("phash", 31, 31)
    config = config_from_args(parser.parse_args(["dedup", "RUN", "--near-hash", "pdq", "--pdq-distance", "20",
                                                 "--eval-distance", "40", "--hash-list-pdq-distance", "10"]))
    assert (config.near_hash, config.near_bits, config.eval_bits, config.hash_list_pdq_distance) == (
        "pdq", 20, 40, 10)
    with pytest.raises(CurateError):
        config_from_args(parser.parse_args(["dedup", "RUN", "--eval-distance", "64"]))  # pHash bits by default
    with pytest.raises(CurateError):
        config_from_args(parser.parse_args(["dedup", "RUN", "--pdq-distance", "256"]))
    with pytest.raises(ValueError, match="near_hash"):
        DedupConfig(near_hash="md5")


@pytest.mark.spark
def test_pdq_pairs_have_exact_recall_over_ids(spark_engine):
    """256-bit hashes planted in pairs around the threshold: the Spark search finds exactly the pairs a
    brute-force comparison finds, each once, as ids of the hashes."""
    from curate.engines.sparkgraph import near_pairs

    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (30, 32), dtype=np.uint8)
    hashes = [bytes(b).hex() for b in base]
    for i, flips in enumerate((0, 1, 15, 30, 31, 32, 33, 45)):  # near copies on both sides of 31
        copy = np.unpackbits(base[i])
        copy[rng.choice(256, flips, replace=False)] ^= 1
        hashes.append(np.packbits(copy).tobytes().hex())
    hashes = sorted(set(hashes))
    rows = [(i * 7 - 50, h) for i, h in enumerate(hashes)]  # ids: distinct, some negative
    frame = spark_engine.session.createDataFrame(rows, "h long, pdq string")
    want = sorted((a, b, _bits(x, y)) for a, x in rows for b, y in rows if a < b and _bits(x, y) <= 31)
    assert len(want) >= 4
    for layout in (choose_parts(31, len(rows), 256), Layout(31, 16, 256), Layout(31, 8, 256)):  # r = 0, 1, 3
        assert sorted(tuple(r) for r in near_pairs(frame, layout, len(rows)).collect()) == want, layout


@pytest.mark.spark
def test_pdq_near_copy_is_caught_within_its_distance_only(decide_rows):
    original, copy = _jpeg(_photo(1)), _jpeg(_marked(_photo(1)))
    d = _bits(_pdq(original), _pdq(copy))
    assert 0 < d <= 31 and hamming(phash_bytes(original), phash_bytes(copy)) > 3  # pHash alone would keep it
    rows = [{"uid": f"{i:032x}", "url": f"http://h.org/{i}.jpg", "caption": f"c{i}",
             "sha256": hashlib.sha256(body).hexdigest(), "phash": phash_bytes(body), "pdq": _pdq(body)}
            for i, body in enumerate((original, copy, _jpeg(_photo(2))))]
    uid = [r["uid"] for r in rows]
    got = decide_rows(rows, DedupConfig(near_hash="pdq", pdq_distance=d))
    assert got == {uid[0]: (None, None), uid[1]: ("near_duplicate", uid[0]), uid[2]: (None, None)}
    got = decide_rows(rows, DedupConfig(near_hash="pdq", pdq_distance=d - 1))
    assert all(v == (None, None) for v in got.values())


@pytest.mark.spark
def test_later_hash_list_removes_the_bytes_from_the_download(spark_engine, tmp_path):
    """A run downloaded without lists; dedup gets a list (by sha256, PDQ and pHash) and an eval folder, with
    PDQ near search: the listed images' bytes are nowhere under the run afterwards, the rest are intact."""
    from curate.dedup.run import run_dedup

    photos = [_photo(s) for s in range(10, 17)]
    bodies = [_jpeg(p) for p in photos]
    bodies.insert(1, _jpeg(_marked(photos[0])))  # uid 1: a PDQ near copy of uid 0
    # uid 2 listed by sha256, 3 by the PDQ of a marked copy, 4 by the pHash of a re-encode, 5 in the eval set
    png = io.BytesIO()
    photos[3].save(png, "PNG")
    listed = [hashlib.sha256(bodies[2]).hexdigest(), "pdq:" + _pdq(_jpeg(_marked(photos[2]))),
              phash_bytes(png.getvalue())]
    assert hamming(phash_bytes(bodies[4]), listed[2]) <= 3 and _bits(_pdq(bodies[3]), listed[1][4:]) <= 31
    (tmp_path / "list.txt").write_text("\n".join(listed) + "\n")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "e.jpg").write_bytes(_jpeg(_marked(photos[4])))
    assert hamming(phash_bytes(bodies[5]), phash_bytes(_jpeg(_marked(photos[4])))) > 3  # only PDQ matches it

    run = tmp_path / "run"
    rows = []
    for shard in range(2):
        members = []
        for i in range(shard * 4, shard * 4 + 4):
            key = f"{shard:05d}{i:04d}"
            members += [(f"{key}.jpg", bodies[i]), (f"{key}.txt", f"caption {i}".encode())]
            rows.append({"uid": f"{i:032x}", "url": f"http://h.org/{i}.jpg", "caption": f"caption {i}",
                         "status": "success", "sha256": hashlib.sha256(bodies[i]).hexdigest(),
                         "shard": f"{shard:05d}.tar", "key": key})
        tar = str(run / "download" / "shards" / f"{shard:05d}.tar")
        tarindex.write_index(tar, write_tar_file(tar, members))
    samples = pa.Table.from_pylist(rows)
    for f in schemas.load("samples", 3):
        if f.name not in samples.column_names:
            samples = samples.append_column(f.name, pa.nulls(samples.num_rows, f.type))
    for shard in range(2):
        part = samples.filter(pc.equal(samples.column("shard"), f"{shard:05d}.tar"))
        dataset.write_part(part, str(run / "download" / "samples" / f"{shard:05d}.parquet"), "samples", 3)
    fs.write_bytes(str(run / "download" / "_SUCCESS"), b"")

    config = DedupConfig(near_hash="pdq", hash_lists=(str(tmp_path / "list.txt"),),
                         eval_images=str(tmp_path / "eval"))
    stats = run_dedup(spark_engine, str(run), config)
    dec = {int(r["uid"], 16): (r["reason"], r["duplicate_of"] and int(r["duplicate_of"], 16))
           for r in pq.read_table(run / "dedup" / "decisions").to_pylist()}
    assert dec == {0: (None, None), 1: ("near_duplicate", 0), 2: ("safety_hash_list", None),
                   3: ("safety_hash_list", None), 4: ("safety_hash_list", None), 5: ("eval_contamination", None),
                   6: (None, None), 7: (None, None)}
    assert (stats["safety_files_removed"], stats["safety_shards_rewritten"]) == (6, 2)
    assert pq.read_table(run / "dedup" / "hashes").column("pdq").null_count == 0

    everything = b"".join(p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file())
    assert [bodies[i] in everything for i in range(8)] == [True, True, False, False, False, True, True, True]
    for shard in range(2):  # the rewritten tars read back whole, and their member index agrees
        tar = str(run / "download" / "shards" / f"{shard:05d}.tar")
        with tarfile.open(tar) as t:
            names = [m.name for m in t]
            assert all(t.extractfile(n).read() in (*bodies, *(f"caption {i}".encode() for i in range(8)))
                       for n in names)
        assert sorted(tarindex.parse_index(tarindex.read_index_bytes(tar))) == sorted({n.split(".")[0]
                                                                                       for n in names})
    statuses = pq.read_table(run / "download" / "samples").column("status").to_pylist()
    assert statuses == ["success"] * 8  # the samples table keeps the download's rows as it wrote them
    purged = pq.read_table(run / "download" / "purged").to_pylist()  # the removed samples' hashes, not bytes
    assert {int(r["uid"], 16): r["sha256"] for r in purged} == {
        i: hashlib.sha256(bodies[i]).hexdigest() for i in (2, 3, 4)}
    assert not list(run.rglob(f"{fs.TMP_PREFIX}*")) and not (run / "dedup" / "_work").exists()

    shutil.rmtree(run / "dedup")  # dedup redone from scratch over the rewritten tars decides the same
    again = run_dedup(spark_engine, str(run), config)
    assert {int(r["uid"], 16): (r["reason"], r["duplicate_of"] and int(r["duplicate_of"], 16))
            for r in pq.read_table(run / "dedup" / "decisions").to_pylist()} == dec
    assert again["safety_files_removed"] == 0 and again["safety_hash_list_removed"] == 3
