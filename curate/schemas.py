"""Versioned Arrow schemas, kept as data in schemas/*.json and checked on every read and write."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

import pyarrow as pa

from curate.errors import SchemaError

# `curate/_schemas` links to the repository's top-level schemas/, so a wheel carries them too; read through
# importlib.resources, so they load from a wheel or zip on an executor's path (`--py-files`) as well.
SCHEMA_DIR = resources.files("curate") / "_schemas"

_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "bool": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "list<float16>": pa.list_(pa.float16()),
}


@cache
def spec(name: str, version: int = 1) -> dict:
    path = SCHEMA_DIR.joinpath(f"{name}.v{version}.json")
    if not path.is_file():
        raise SchemaError(f"no schema {name} v{version} (expected {path})")
    return json.loads(path.read_text())


@cache
def load(name: str, version: int = 1) -> pa.Schema:
    """The Arrow schema of table `name`, with its name and version in the schema metadata."""
    fields = [pa.field(f["name"], _TYPES[f["type"]], nullable=f["nullable"]) for f in spec(name, version)["fields"]]
    return pa.schema(fields, metadata={"curate.schema": f"{name}.v{version}"})


def version_of(schema: pa.Schema, name: str) -> int | None:
    """The version of table `name` that `schema` was written as (its metadata tag from `load`), or None."""
    tag = (schema.metadata or {}).get(b"curate.schema", b"").decode()
    found = re.fullmatch(rf"{re.escape(name)}\.v(\d+)", tag)
    return int(found.group(1)) if found else None


@cache
def dynamic(name: str, version: int = 1) -> tuple[tuple[re.Pattern, pa.DataType], ...]:
    """The patterns of a schema's config-dependent columns (a `dynamic` list in its JSON), with their types.

    A column not among the fixed fields whose name matches a pattern (the first that matches) is kept by
    `conform` and type-checked by `check`; schemas without `dynamic` (every v1) have none.
    """
    return tuple((re.compile(d["pattern"]), _TYPES[d["type"]]) for d in spec(name, version).get("dynamic", ()))


def _dynamic_type(name: str, version: int, column: str) -> pa.DataType | None:
    for pattern, typ in dynamic(name, version):
        if pattern.fullmatch(column):
            return typ
    return None


@cache
def reasons(stage: str) -> frozenset[str]:
    """The closed set of rejection reasons (or download statuses) a stage may write."""
    return frozenset(spec("reasons")["stages"][stage])


def conform(table: pa.Table, name: str, version: int = 1) -> pa.Table:
    """Select, order and cast `table`'s columns to schema `name`; raise SchemaError if it cannot."""
    schema = load(name, version)
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise SchemaError(f"table for schema {name}.v{version} lacks columns {missing}")
    cols = []
    for field in schema:
        col = table.column(field.name)
        if not field.nullable and col.null_count:
            raise SchemaError(f"{name}.v{version}: column {field.name!r} has {col.null_count} nulls")
        if col.type != field.type:
            try:
                col = col.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(f"{name}.v{version}: column {field.name!r} is {col.type}, "
                                  f"not {field.type}") from exc
        cols.append(col)
    fixed = set(schema.names)
    for column in table.column_names:  # config-dependent columns (e.g. scores.v2's clip_<alias>)
        typ = None if column in fixed else _dynamic_type(name, version, column)
        if typ is None:
            continue
        col = table.column(column)
        if col.type != typ:
            try:
                col = col.cast(typ)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(f"{name}.v{version}: column {column!r} is {col.type}, not {typ}") from exc
        schema = schema.append(pa.field(column, typ, nullable=True))
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)


def check(table: pa.Table, name: str, version: int = 1) -> pa.Table:
    """Validate a table read from disk against its schema (names and types must match exactly)."""
    schema = load(name, version)
    got = {f.name: f.type for f in table.schema}
    for field in schema:
        if field.name not in got:
            raise SchemaError(f"{name}.v{version}: column {field.name!r} missing")
        if got[field.name] != field.type:
            raise SchemaError(f"{name}.v{version}: column {field.name!r} is {got[field.name]}, "
                              f"expected {field.type}")
    for column, typ in got.items():
        want = None if column in schema.names else _dynamic_type(name, version, column)
        if want is not None and typ != want:
            raise SchemaError(f"{name}.v{version}: column {column!r} is {typ}, expected {want}")
    return table
