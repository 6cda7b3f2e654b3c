import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.download.config import DownloadConfig
from curate.download.inputs import derive_uids, read_input
from curate.errors import CurateError


def _write(tmp_path, table):
    path = tmp_path / "in.parquet"
    pq.write_table(table, path)
    return str(path)


def test_derived_uids_are_stable_and_unique_for_repeated_pairs():
    a = derive_uids(["http://a/1", "http://a/1", "http://b"], ["x", "x", None])
    assert a == derive_uids(["http://a/1", "http://a/1", "http://b"], ["x", "x", None])
    assert len(set(a)) == 3 and all(len(u) == 32 for u in a)


def test_input_without_uid_gets_derived_ones(tmp_path):
    path = _write(tmp_path, pa.table({"URL": ["http://a/1", None], "TEXT": ["cap", "c2"]}))
    t = read_input(DownloadConfig(input=path, url_col="URL", caption_col="TEXT"))
    assert t.column_names == ["uid", "url", "caption"]
    assert t.column("url").to_pylist() == ["http://a/1", ""]  # a missing URL becomes an invalid_url row


@pytest.mark.parametrize("table,message", [
    (pa.table({"link": ["x"]}), "missing column 'url'"),
    (pa.table({"url": [1, 2]}), "must be strings"),
    (pa.table({"url": ["a", "b"], "uid": ["0" * 32, "0" * 32]}), "not unique"),
    (pa.table({"url": ["a"], "uid": ["XYZ"]}), "32 lowercase hex"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, table, message):
    with pytest.raises(CurateError, match=message) as info:
        read_input(DownloadConfig(input=_write(tmp_path, table)))
    assert "\n" not in str(info.value)


def test_malformed_parquet_and_missing_file(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(CurateError, match="cannot read parquet"):
        read_input(DownloadConfig(input=str(bad)))
    with pytest.raises(CurateError, match="no such file"):
        read_input(DownloadConfig(input=str(tmp_path / "nope.parquet")))
