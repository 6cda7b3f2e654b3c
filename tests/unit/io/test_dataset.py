"""Datasets of parquet parts: names, one-listing resume, deterministic bytes, stats merging."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate.io import dataset


def test_part_names():
    assert dataset.part_name(17) == "part-00017.parquet"
    assert dataset.shard_part_name(17) == dataset.shard_part_name("00017.tar") == "00017.parquet"


def test_list_parts_ignores_markers_stats_and_temporaries(tmp_path):
    assert dataset.list_parts(str(tmp_path / "none")) == {}
    t = pa.table({"x": [1, 2, 3]})
    size = dataset.write_part(t, str(tmp_path / "d" / "00001.parquet"))
    for name in ("_SUCCESS", "_stats.json", "_tmp.abc.00002.parquet", ".hidden.parquet", "notes.txt"):
        (tmp_path / "d" / name).write_bytes(b"x")
    (tmp_path / "d" / "sub.parquet").mkdir()
    assert dataset.list_parts(str(tmp_path / "d")) == {"00001.parquet": size}
    assert size == (tmp_path / "d" / "00001.parquet").stat().st_size


def test_same_table_same_bytes_whatever_its_chunks(tmp_path):
    t = pa.table({"uid": [f"{i:032x}" for i in range(1000)], "v": list(range(1000))})
    chunked = pa.concat_tables([t.slice(0, 10), t.slice(10, 500), t.slice(510)])
    dataset.write_part(t, str(tmp_path / "a.parquet"))
    dataset.write_part(chunked.combine_chunks(), str(tmp_path / "b.parquet"))
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert dataset.read_part(str(tmp_path / "a.parquet"), ["v"]).column("v").to_pylist() == list(range(1000))


def test_merge_stats_adds_numbers_and_nested_counts():
    got = dataset.merge_stats([{"rows": 3, "status": {"success": 2, "http_error": 1}},
                               {"rows": 4, "status": {"success": 4}}, {}])
    assert got == {"rows": 7, "status": {"success": 6, "http_error": 1}}
    with pytest.raises(TypeError):
        dataset.merge_stats([{"name": "x"}])


def test_a_resume_writes_again_a_part_that_lost_its_sidecar(tmp_path):
    """finished_parts: what a resume may skip. A part whose sidecar is missing (killed, or out of disk,
    between the part's commit and its sidecar's write) is not finished; a folder without any sidecar (an
    older curate's) keeps every part."""
    import pyarrow as pa

    from curate.io import dataset

    folder = tmp_path / "d"
    for i in range(3):
        dataset.write_part(pa.table({"uid": [str(i)]}), str(folder / dataset.part_name(i)))
    (folder / "_sums" / f"{dataset.part_name(1)}.json").unlink()
    assert list(dataset.finished_parts(str(folder))) == [dataset.part_name(0), dataset.part_name(2)]
    assert list(dataset.list_parts(str(folder))) == [dataset.part_name(i) for i in range(3)]
    for sidecar in (folder / "_sums").iterdir():
        sidecar.unlink()
    (folder / "_sums").rmdir()
    assert list(dataset.finished_parts(str(folder))) == [dataset.part_name(i) for i in range(3)]
    assert dataset.finished_parts(str(tmp_path / "none")) == {}
