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
