import pyarrow as pa
import pytest

from curate.io import fs
from curate.io.stagedir import StageDir


def test_atomic_open_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with fs.atomic_open(str(target)) as fh:
            fh.write(b"partial")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_write_table_is_byte_deterministic(tmp_path):
    t = pa.table({"uid": ["0" * 32], "url": ["u"], "caption": [None]})
    fs.write_table(t, str(tmp_path / "a.parquet"), schema="urls")
    fs.write_table(t, str(tmp_path / "b.parquet"), schema="urls")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert fs.read_table(str(tmp_path / "a.parquet"), schema="urls").equals(
        fs.read_table(str(tmp_path / "a.parquet")))


def test_stagedir_marker_written_last_and_tmp_cleaned(tmp_path):
    sd = StageDir(str(tmp_path), "dedup")
    sd.begin()
    (tmp_path / "dedup" / "_tmp.1234.decisions.parquet").write_bytes(b"x")
    assert not sd.done()
    sd.begin()
    assert not (tmp_path / "dedup" / "_tmp.1234.decisions.parquet").exists()
    sd.finish({"kept": 1})
    assert sd.done() and sd.stats() == {"kept": 1}
