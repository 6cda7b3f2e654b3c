import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import schemas
from curate.download.config import DownloadConfig
from curate.download.inputs import URLS_SCHEMA, check_input, derive_uids, read_input
from curate.download.presets import CARRIED
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
    assert t.column_names[:3] == ["uid", "url", "caption"]
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


def test_csv_and_jsonl_read_like_parquet(tmp_path):
    rows = [{"url": "http://a/1", "caption": "one, with a comma", "uid": "a" * 32},
            {"url": "http://a/2", "caption": None, "uid": "b" * 32}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "in.csv").write_text('url,caption,uid\nhttp://a/1,"one, with a comma",' + "a" * 32
                                     + "\nhttp://a/2,," + "b" * 32 + "\n")
    want = read_input(DownloadConfig(input=str(tmp_path / "in.parquet")))
    for name in ("in.jsonl", "in.csv"):
        assert read_input(DownloadConfig(input=str(tmp_path / name))).equals(want), name
    odd = tmp_path / "list.txt"
    odd.write_text((tmp_path / "in.jsonl").read_text())
    assert read_input(DownloadConfig(input=str(odd), input_format="jsonl")).equals(want)


def test_datacomp_preset_keeps_uids_and_carries_metadata(tmp_path):
    path = _write(tmp_path, pa.table({"uid": ["c" * 32], "url": ["http://a/1"], "text": ["a dog"],
                                      "original_width": [640], "original_height": [480], "sha256": ["f" * 64]}))
    row = read_input(DownloadConfig(input=path, preset="datacomp")).to_pylist()[0]
    # urls.v3: no opt_out or face_bboxes column in the input gives nulls (fetched, nothing blurred)
    assert row == {"uid": "c" * 32, "url": "http://a/1", "caption": "a dog", "input_width": 640,
                   "input_height": 480, "input_sha256": "f" * 64, "similarity": None, "source": None,
                   "opt_out": None, "face_bboxes": None}


def test_datacomp_face_boxes_and_opt_out_are_carried_for_the_fetch(tmp_path):
    boxes = pa.array([[[0.1, 0.2, 0.3, 0.4]], None], pa.list_(pa.list_(pa.float64())))
    path = _write(tmp_path, pa.table({"uid": ["c" * 32, "d" * 32], "url": ["http://a/1", "http://a/2"],
                                      "text": ["x", "y"], "face_bboxes": boxes, "opt_out": [True, None]}))
    t = read_input(DownloadConfig(input=path, preset="datacomp"))
    assert t.column("face_bboxes").to_pylist() == ["[[0.1,0.2,0.3,0.4]]", None]
    assert t.column("opt_out").to_pylist() == [True, None]
    # the plain preset reads opt_out too, but no face boxes unless --blur-faces asks for them
    plain = read_input(DownloadConfig(input=path, uid_col="uid", caption_col="text"))
    assert plain.column("face_bboxes").to_pylist() == [None, None]
    blurred = read_input(DownloadConfig(input=path, uid_col="uid", caption_col="text", blur_faces=True))
    assert blurred.column("face_bboxes").to_pylist() == ["[[0.1,0.2,0.3,0.4]]", None]


def test_laion_preset_derives_uids(tmp_path):
    path = _write(tmp_path, pa.table({"URL": ["http://a/1"], "TEXT": ["a cat"], "WIDTH": [300.0],
                                      "HEIGHT": [200.0], "similarity": [0.31], "punsafe": [0.01]}))
    row = read_input(DownloadConfig(input=path, preset="laion")).to_pylist()[0]
    assert row["uid"] == derive_uids(["http://a/1"], ["a cat"])[0]
    assert (row["caption"], row["input_width"], row["input_height"]) == ("a cat", 300, 200)
    assert row["similarity"] == pytest.approx(0.31)
    with pytest.raises(CurateError, match="missing column 'URL'.*--preset"):
        check_input(DownloadConfig(input=_write(tmp_path, pa.table({"url": ["x"]})), preset="laion"))


@pytest.mark.parametrize("kw,message", [({"preset": "nope"}, "unknown preset"),
                                        ({"input_format": "xml"}, "unknown input format")])
def test_bad_preset_or_format(tmp_path, kw, message):
    with pytest.raises(CurateError, match=message):
        read_input(DownloadConfig(input=_write(tmp_path, pa.table({"url": ["x"]})), **kw))


def test_malformed_csv_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text('url,caption\nhttp://a,b,c,d\n')
    with pytest.raises(CurateError, match="cannot read csv") as info:
        read_input(DownloadConfig(input=str(bad)))
    assert "\n" not in str(info.value)


def test_urls_table_is_the_urls_v3_schema():
    assert URLS_SCHEMA == schemas.load("urls", 3)
    assert URLS_SCHEMA.names == ["uid", "url", "caption", *CARRIED, "opt_out", "face_bboxes"]
    assert "source" in CARRIED
    # v3 only adds nullable columns at the end: a reader of v2 reads v3 unchanged
    v2 = schemas.load("urls", 2)
    assert list(URLS_SCHEMA)[: len(v2)] == list(v2)
    assert all(f.nullable for f in list(URLS_SCHEMA)[len(v2):])


def test_source_column_is_carried_and_absent_is_null(tmp_path):
    rows = [{"url": "http://a/1", "caption": "x", "source": "dfn"}, {"url": "http://a/2", "caption": "y",
                                                                     "source": None}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name in ("in.parquet", "in.jsonl"):
        t = read_input(DownloadConfig(input=str(tmp_path / name)))
        assert t.column("source").to_pylist() == ["dfn", None], name
    plain = read_input(DownloadConfig(input=_write(tmp_path, pa.table({"url": ["http://a/1", "http://a/2"]}))))
    assert plain.column("source").to_pylist() == [None, None]
    assert plain.schema.field("source").type == pa.string()


def test_source_col_renames_the_source_for_any_preset(tmp_path):
    (tmp_path / "in.csv").write_text("URL,TEXT,dataset\nhttp://a/1,one,laion\nhttp://a/2,two,7\n")
    config = DownloadConfig(input=str(tmp_path / "in.csv"), preset="laion", source_col="dataset")
    assert read_input(config).column("source").to_pylist() == ["laion", "7"]  # any type is read as a string
    with pytest.raises(CurateError, match="missing column 'origin' named by --source-col") as info:
        read_input(DownloadConfig(input=str(tmp_path / "in.csv"), preset="laion", source_col="origin"))
    assert "\n" not in str(info.value)
