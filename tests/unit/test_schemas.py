import json

import pyarrow as pa
import pytest

from curate import schemas
from curate.errors import SchemaError


def test_every_schema_file_loads_with_its_version():
    for path in sorted(schemas.SCHEMA_DIR.glob("*.v1.json")):
        name = path.name.split(".")[0]
        if name == "reasons":
            continue
        schema = schemas.load(name)
        assert schema.metadata[b"curate.schema"] == f"{name}.v1".encode()
        assert [f.name for f in schema] == [f["name"] for f in json.loads(path.read_text())["fields"]]


def test_conform_orders_casts_and_rejects():
    t = pa.table({"caption": ["c"], "url": ["u"], "uid": ["0" * 32], "extra": [1]})
    out = schemas.conform(t, "urls")
    assert out.column_names == ["uid", "url", "caption"]
    with pytest.raises(SchemaError, match="lacks columns"):
        schemas.conform(pa.table({"uid": ["x"]}), "urls")
    with pytest.raises(SchemaError, match="nulls"):
        schemas.conform(pa.table({"uid": [None], "url": ["u"], "caption": ["c"]}, ), "urls")


def test_check_rejects_a_wrong_type():
    t = pa.table({"uid": [1], "url": ["u"], "caption": ["c"]})
    with pytest.raises(SchemaError, match="'uid' is int64"):
        schemas.check(t, "urls")


def test_reasons_are_a_closed_set_per_stage():
    assert "duplicate_url" in schemas.reasons("dedup")
    assert "blocked_address" in schemas.reasons("download")
    assert "low_clip_score" in schemas.reasons("select")


def test_later_versions_only_append_fields():
    """A vN+1 file holds vN's fields first, with the same types: readers of vN read it unchanged."""
    versions: dict[str, list[int]] = {}
    for path in schemas.SCHEMA_DIR.glob("*.v*.json"):
        name, version = path.name.split(".")[0], int(path.name.split(".")[1][1:])
        if name != "reasons":
            versions.setdefault(name, []).append(version)
    for name, found in versions.items():
        assert sorted(found) == list(range(1, max(found) + 1)), name
        for v in sorted(found)[1:]:
            old, new = schemas.load(name, v - 1), schemas.load(name, v)
            assert new.metadata[b"curate.schema"] == f"{name}.v{v}".encode()
            assert list(new)[: len(old)] == list(old), f"{name}.v{v}"
    assert schemas.load("samples", 3).names[-1] == "source" and schemas.load("urls", 2).names[-1] == "source"


def test_a_samples_v3_table_reads_as_v1_and_v2():
    row = {f.name: None for f in schemas.load("samples", 3)} | {"uid": "0" * 32, "url": "u", "status": "success",
                                                                "source": "dfn"}
    t = schemas.conform(pa.Table.from_pylist([row]), "samples", 3)
    for version in (1, 2, 3):
        assert schemas.check(t, "samples", version) is t
    assert "source" not in schemas.conform(t, "samples", 2).column_names


def test_version_of_reads_the_tag_load_writes():
    assert schemas.version_of(schemas.load("samples", 2), "samples") == 2
    assert schemas.version_of(schemas.load("samples", 3), "samples") == 3
    assert schemas.version_of(schemas.load("urls", 2), "samples") is None  # another table's tag
    assert schemas.version_of(pa.schema([("uid", pa.string())]), "samples") is None  # no tag at all
