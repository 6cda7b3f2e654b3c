"""Checksum sidecars: written beside every part and tar, from the bytes as written; readers verify them."""

from __future__ import annotations

import hashlib
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.io import dataset, fs, sums
from curate.io.tario import write_tar_file


def _expected(path) -> dict:
    """What the sidecar must hold, computed here with other libraries: CRC32C for tars, sha256 else."""
    import google_crc32c

    data = path.read_bytes()
    if path.suffix == ".tar":
        return {"crc32c": f"{google_crc32c.value(data):08x}", "size": len(data)}
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _sidecar(path) -> dict:
    return json.loads((path.parent / "_sums" / f"{path.name}.json").read_text())


def test_a_written_part_gets_its_sidecar(tmp_path):
    part = tmp_path / "d" / "00003.parquet"
    size = dataset.write_part(pa.table({"uid": ["a", "b"], "v": [1, 2]}), str(part))
    assert _sidecar(part) == _expected(part) and size == part.stat().st_size
    first = (tmp_path / "d" / "_sums" / "00003.parquet.json").read_bytes()
    dataset.write_part(pa.table({"uid": ["a", "b"], "v": [1, 2]}), str(part))  # a rerun: the same bytes
    assert (tmp_path / "d" / "_sums" / "00003.parquet.json").read_bytes() == first
    assert dataset.list_parts(str(tmp_path / "d")) == {"00003.parquet": size}  # _sums is not a part
    fs.write_table(pa.table({"x": [1]}), str(tmp_path / "e" / "00000.parquet"))
    assert _sidecar(tmp_path / "e" / "00000.parquet") == _expected(tmp_path / "e" / "00000.parquet")


def test_a_flipped_byte_fails_the_read_naming_the_part(tmp_path):
    part = tmp_path / "d" / "00001.parquet"
    dataset.write_part(pa.table({"uid": [f"{i:032x}" for i in range(200)]}), str(part))
    data = bytearray(part.read_bytes())
    data[len(data) // 3] ^= 0x01
    part.write_bytes(bytes(data))
    with pytest.raises(CurateError, match=r"checksum mismatch in .*00001\.parquet: sha256 [0-9a-f]{12}, expected"):
        dataset.read_part(str(part), ["uid"])


def test_a_part_without_sidecar_reads_as_before(tmp_path):
    part = tmp_path / "old.parquet"
    pq.write_table(pa.table({"v": [1, 2, 3]}), part)
    assert dataset.read_part(str(part), ["v", "w"], only_present=True).column("v").to_pylist() == [1, 2, 3]


def test_a_rewrite_replaces_the_sidecar(tmp_path):
    part = tmp_path / "p.parquet"
    dataset.write_part(pa.table({"v": [1]}), str(part))
    dataset.write_part(pa.table({"v": [2, 3]}), str(part))
    assert _sidecar(part) == _expected(part)
    assert dataset.read_part(str(part)).column("v").to_pylist() == [2, 3]


def test_streamed_writers_hash_while_writing(tmp_path):
    tar = tmp_path / "shards" / "00000.tar"
    write_tar_file(str(tar), [("a.txt", b"hello"), ("b.txt", b"x" * 3000)])
    import google_crc32c

    # and each file's CRC32C by data offset: headers of 512 bytes, "hello" padded to 512
    members = [[512, google_crc32c.value(b"hello")], [1536, google_crc32c.value(b"x" * 3000)]]
    assert _sidecar(tar) == {**_expected(tar), "members": members}
    part = tmp_path / "s" / "part-00000.parquet"
    with sums.open_part(str(part)) as fh, pq.ParquetWriter(fh, pa.schema([("v", pa.int64())])) as w:
        for i in range(3):
            w.write_table(pa.table({"v": [i] * 100}))
    assert _sidecar(part) == _expected(part)
    with pytest.raises(RuntimeError), sums.open_part(str(tmp_path / "s" / "bad.parquet")) as fh:
        fh.write(b"half")
        raise RuntimeError("the task failed")
    assert not (tmp_path / "s" / "bad.parquet").exists()
    assert not (tmp_path / "s" / "_sums" / "bad.parquet.json").exists()


@pytest.mark.parametrize("parts", [1, 3])
def test_gather_hashes_the_archive_it_writes(tmp_path, monkeypatch, parts):
    """Each writer thread checksums its run as it writes; the runs' CRC32Cs combine into the archive's,
    checked here against google's CRC32C of the reference archive (another implementation)."""
    import google_crc32c

    from curate.shard import gather
    from curate.shard.reshard import ShardJob
    from curate.shard.tarfast import scan, write_tar

    monkeypatch.setattr(gather, "BUFFER", 4096)  # small: many flushes, and runs for 3 threads
    members = [(f"{i:04d}.jpg", bytes([i]) * (700 + 37 * i)) for i in range(40)]
    src = str(tmp_path / "src.tar")
    write_tar_file(src, members)
    listing = scan(src)
    entries = [(f"{i:011d}", src, tuple((e, *listing[k][e]) for e in sorted(listing[k])))
               for i, k in enumerate(sorted(listing))]
    job = ShardJob.of(str(tmp_path / "out.tar"), str(tmp_path / "out_stats.json"), "out.tar", entries)
    done = gather.copy_tar_local(job.tar, job, [src], parts=parts)
    if done is None:
        pytest.skip("no preadv/pwritev on this platform")
    size, crc = done
    want = io.BytesIO()
    write_tar(want, [(f"{i:011d}.jpg", data) for i, (_, data) in enumerate(members)])
    assert (tmp_path / "out.tar").read_bytes() == want.getvalue()
    assert crc == google_crc32c.value(want.getvalue()) and size == len(want.getvalue())


@pytest.mark.spark
def test_spark_written_parts_have_hashlib_sidecars(spark_engine, tmp_path):
    """Spark's streamed part writer (stated partitions; the `_part` writer goes through `write_part`)
    writes sidecars of the bytes on disk."""
    from pyspark.sql import functions as F

    frame = spark_engine.session.range(20, numPartitions=1).select(F.col("id"), (F.col("id") * 3).alias("v"))
    spark_engine.write_dataset(frame, str(tmp_path / "stated"), partitions=2, key="id", sort_by=["id"])
    for i in range(2):
        part = tmp_path / "stated" / dataset.part_name(i)
        assert _sidecar(part) == _expected(part), part
    assert sorted(dataset.read_table(str(tmp_path / "stated"), ["id"]).column("id").to_pylist()) == list(range(20))


def test_a_tar_read_through_is_checked_against_its_sidecar(tmp_path):
    """Score and dedup stream each download tar once: a flipped byte in an image fails the task, naming the
    tar, before it writes what it made of it."""
    from curate.score.shards import _tar_images

    tar = tmp_path / "shards" / "00000.tar"
    write_tar_file(str(tar), [("k0.jpg", b"\xff\xd8" + b"a" * 5000), ("k0.txt", b"caption")])
    assert _tar_images(str(tar), ["k0"]) == [b"\xff\xd8" + b"a" * 5000]
    data = bytearray(tar.read_bytes())
    data[512 + 100] ^= 0x01  # inside the image's bytes: tarfile reads it without complaint
    tar.write_bytes(bytes(data))
    with pytest.raises(CurateError, match=r"checksum mismatch in .*00000\.tar: crc32c"):
        _tar_images(str(tar), ["k0"])
