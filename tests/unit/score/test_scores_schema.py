"""scores.v2: v1's fixed columns plus config-dependent float32 columns declared by pattern
(curate/schemas.py keeps and checks them; v1 readers are unaffected)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate import schemas
from curate.errors import SchemaError


def _row(**extra) -> pa.Table:
    base = {"uid": ["u"], "shard": ["00000.tar"], "key": ["k"], "status": ["ok"],
            "error": pa.array([None], pa.string()), "clip_similarity": [0.5], "language": ["en"],
            "language_score": [0.9]}
    return pa.table({**base, **extra})


def test_v2_keeps_declared_dynamic_columns_as_float32():
    t = _row(clip_vit_l_14=[0.25], is_red=pa.array([0.75], pa.float64()))
    out = schemas.conform(t, "scores", 2)
    assert out.schema.names == [*schemas.load("scores").names, "clip_vit_l_14", "is_red"]
    assert out.schema.field("is_red").type == pa.float32()
    assert out.schema.metadata[b"curate.schema"] == b"scores.v2"
    assert schemas.check(out, "scores", 2) is out


def test_v1_readers_see_their_columns_only():
    t = _row(clip_tiny=[0.25])
    assert schemas.conform(t, "scores").schema.names == schemas.load("scores").names
    assert schemas.check(schemas.conform(t, "scores", 2), "scores") is not None  # extra columns allowed


def test_dynamic_columns_are_type_checked():
    with pytest.raises(SchemaError, match="'clip_tiny' is string"):
        schemas.conform(_row(clip_tiny=["high"]), "scores", 2)
    with pytest.raises(SchemaError, match="'clip_tiny' is string"):
        schemas.check(schemas.conform(_row(), "scores", 2).append_column("clip_tiny", pa.array(["high"])), "scores", 2)
    assert [p.pattern for p, _ in schemas.dynamic("scores", 2)][0] == "^clip_[a-z0-9_]+$"
    assert schemas.dynamic("scores") == ()
