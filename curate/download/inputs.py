"""Read the user's URL list (parquet, CSV or JSONL), validate it, and give every row a stable 128-bit uid."""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from curate import schemas
from curate.download.config import DownloadConfig
from curate.download.presets import CARRIED, resolve
from curate.errors import CurateError
from curate.io import fs

_UID = re.compile(r"^[0-9a-f]{32}$")
FORMATS = ("parquet", "csv", "jsonl")
_SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".json": "jsonl",
             ".ndjson": "jsonl"}
# the `urls` table the download works from (schemas/urls.v2.json): what img2dataset reads, then the carried
# input columns (CARRIED)
URLS_VERSION = 2
URLS_SCHEMA = schemas.load("urls", URLS_VERSION)


def derive_uids(urls: list[str | None], captions: list[str | None]) -> list[str]:
    """sha256 of url and caption, first 128 bits in hex; repeats of a pair get an occurrence suffix."""
    seen: dict[tuple, int] = {}
    out = []
    for url, cap in zip(urls, captions, strict=True):
        n = seen.get((url, cap), 0)
        seen[(url, cap)] = n + 1
        text = f"{url or ''}\x00{cap or ''}" + (f"\x00{n}" if n else "")
        out.append(hashlib.sha256(text.encode()).hexdigest()[:32])
    return out


def input_format(config: DownloadConfig) -> str:
    if config.input_format != "auto":
        if config.input_format not in FORMATS:
            raise CurateError(f"unknown input format {config.input_format!r}; choose auto, {', '.join(FORMATS)}")
        return config.input_format
    name = config.input.rstrip("/").lower()
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix) or name.endswith(suffix + ".gz"):
            return fmt
    return "parquet"  # a folder of parquet files, or a file without a telling suffix


def _read_text_table(path: str, fmt: str) -> pa.Table:
    """A CSV or JSONL file, or a folder of them, every column read as given (uids stay strings)."""
    ffs, p = fs.url_to_fs(path)
    if not ffs.exists(p):
        raise CurateError(f"no such file or folder: {path}")
    files = sorted(f for f in ffs.ls(p, detail=False) if not f.rsplit("/", 1)[-1].startswith(("_", "."))) \
        if ffs.isdir(p) else [p]
    tables = []
    for f in files:
        try:
            with ffs.open(f, "rb", compression="infer") as fh:
                if fmt == "csv":
                    delimiter = "\t" if ".tsv" in f else ","
                    table = pacsv.read_csv(fh, parse_options=pacsv.ParseOptions(delimiter=delimiter),
                                           convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
                else:
                    table = pajson.read_json(fh)
        except (pa.ArrowInvalid, OSError) as exc:
            raise CurateError(f"cannot read {fmt} {f}: {str(exc).splitlines()[0]}") from exc
        tables.append(table)
    if not tables:
        raise CurateError(f"no {fmt} files in {path}")
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowInvalid as exc:
        raise CurateError(f"{path}: files disagree on their columns: {str(exc).splitlines()[0]}") from exc


def _schema(config: DownloadConfig) -> pa.Schema | None:
    return fs.read_schema(config.input) if input_format(config) == "parquet" else None


def check_input(config: DownloadConfig, schema: pa.Schema | None = None) -> None:
    """Fail fast on an input that cannot be downloaded (before any engine starts); parquet from its footer."""
    cols = resolve(config)
    if schema is None:
        schema = _schema(config)
        if schema is None:  # CSV and JSONL have no footer: read them
            schema = _read_text_table(config.input, input_format(config)).schema
    if cols.url not in schema.names:
        raise CurateError(f"{config.input}: missing column {cols.url!r} (columns: {', '.join(schema.names)}); "
                          "choose it with --url-col or --preset")
    if config.source_col is not None and config.source_col not in schema.names:  # a typo is no silent null
        raise CurateError(f"{config.input}: missing column {config.source_col!r} named by --source-col "
                          f"(columns: {', '.join(schema.names)})")
    url_type = schema.field(cols.url).type
    if not pa.types.is_string(url_type) and not pa.types.is_large_string(url_type) and not pa.types.is_null(url_type):
        raise CurateError(f"{config.input}: column {cols.url!r} must be strings, not {url_type}")


def _column(table: pa.Table, name: str, type_: pa.DataType, where: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        return pa.chunked_array([pa.nulls(table.num_rows, type_)])
    try:
        return table.column(name).cast(type_)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise CurateError(f"{where}: column {name!r} cannot be read as {type_}") from exc


def read_input(config: DownloadConfig) -> pa.Table:
    """The input as a `urls` table (URLS_SCHEMA), or a one-line CurateError saying what is wrong."""
    fmt = input_format(config)
    table = fs.read_table(config.input) if fmt == "parquet" else _read_text_table(config.input, fmt)
    check_input(config, table.schema)
    cols = resolve(config)
    urls = pc.fill_null(_column(table, cols.url, pa.string(), config.input), "")
    captions = _column(table, cols.caption, pa.string(), config.input)
    if cols.uid in table.column_names:
        uids = table.column(cols.uid).cast(pa.string()).to_pylist()
        bad = next((u for u in uids if u is None or not _UID.match(u)), False)
        if bad is not False:
            raise CurateError(f"{config.input}: uid {bad!r} is not 32 lowercase hex characters")
    else:
        uids = derive_uids(urls.to_pylist(), captions.to_pylist())
    if len(set(uids)) != len(uids):
        raise CurateError(f"{config.input}: uids are not unique ({len(uids) - len(set(uids))} repeats)")
    carried = {dst: src for src, dst in cols.carry} | {"source": cols.source}
    columns = {"uid": pa.chunked_array([pa.array(uids, pa.string())]), "url": urls, "caption": captions}
    for name in CARRIED:
        columns[name] = _column(table, carried.get(name, "\x00absent"), URLS_SCHEMA.field(name).type, config.input)
    return pa.Table.from_arrays([columns[f.name].cast(f.type) for f in URLS_SCHEMA], schema=URLS_SCHEMA)
