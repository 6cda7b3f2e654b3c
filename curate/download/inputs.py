"""The user's URL list (parquet, CSV or JSONL: a file or a folder of them), read one file at a time.

The engines read the list in their workers, one task per input file (`file_rows`), and derive or check
uids there (`curate.download.plan`); the driver lists the files once and holds one descriptor per file.
Every row keeps its place in the input as (`_file`, `_row`): shards are consecutive runs of rows in that
order, and a repeated (url, caption) pair is numbered by it when uids are derived (`derive_uids`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from curate import schemas
from curate.download.config import DownloadConfig
from curate.download.presets import CARRIED, resolve
from curate.errors import CurateError
from curate.io import fs

UID_PATTERN = "^[0-9a-f]{32}$"
_UID = re.compile(UID_PATTERN)
FORMATS = ("parquet", "csv", "jsonl")
_SUFFIXES = {".parquet": "parquet", ".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".json": "jsonl",
             ".ndjson": "jsonl"}
# the `urls` table the download works from (schemas/urls.v3.json): what the downloader reads, the carried
# input columns (CARRIED), then the columns only the fetch tasks read (opt_out, face_bboxes)
URLS_VERSION = 3
OPT_OUT = "opt_out"  # `curate extract`'s column: the page said noai or noimageai
FACES = "face_bboxes"
URLS_SCHEMA = schemas.load("urls", URLS_VERSION)
FILE, ROW = "_file", "_row"  # a row's place in the input: file index, row index in the file
# what a read task gives: the urls columns (uid null where the input has none) and the row's place
ROWS_SCHEMA = pa.schema([pa.field(f.name, f.type) for f in URLS_SCHEMA]
                        + [pa.field(FILE, pa.int32()), pa.field(ROW, pa.int64())])


@dataclass(frozen=True)
class InputFile:
    index: int
    path: str
    size: int


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


def list_input_files(config: DownloadConfig) -> list[InputFile]:
    """The input's files in name order, from one listing (a file is its own list)."""
    ffs, p = fs.url_to_fs(config.input)
    try:
        info = ffs.info(p)
    except FileNotFoundError as exc:
        raise CurateError(f"no such file or folder: {config.input}") from exc
    if info.get("type") != "directory":
        return [InputFile(0, config.input, int(info.get("size") or 0))]
    entries = sorted((e for e in ffs.ls(p, detail=True) if e.get("type") == "file"
                      and not e["name"].rstrip("/").rsplit("/", 1)[-1].startswith(("_", "."))),
                     key=lambda e: e["name"])
    if not entries:
        raise CurateError(f"no {input_format(config)} files in {config.input}")
    proto = config.input.split("://", 1)[0] + "://" if "://" in config.input else ""
    return [InputFile(i, proto + e["name"] if proto and "://" not in e["name"] else e["name"], int(e.get("size") or 0))
            for i, e in enumerate(entries)]


def _read_file(path: str, fmt: str, columns: list[str] | None = None) -> pa.Table:
    """One input file, every column as given (uids stay strings); `columns` only for parquet."""
    ffs, p = fs.url_to_fs(path)
    try:
        with ffs.open(p, "rb", compression="infer" if fmt != "parquet" else None) as fh:
            if fmt == "parquet":
                return pq.read_table(fh, columns=columns)
            if fmt == "csv":
                delimiter = "\t" if ".tsv" in p else ","
                return pacsv.read_csv(fh, parse_options=pacsv.ParseOptions(delimiter=delimiter),
                                      convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
            return pajson.read_json(fh)
    except FileNotFoundError as exc:
        raise CurateError(f"no such file or folder: {path}") from exc
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise CurateError(f"cannot read {fmt} {path}: {str(exc).splitlines()[0]}") from exc


def _first_schema(config: DownloadConfig, first: InputFile) -> pa.Schema:
    fmt = input_format(config)
    if fmt == "parquet":
        return fs.read_schema(first.path)
    return _read_file(first.path, fmt).schema  # CSV and JSONL have no footer: read the first file


def check_input(config: DownloadConfig, files: list[InputFile] | None = None) -> bool:
    """Fail fast on an input that cannot be downloaded (before any engine starts), from the first file's
    columns (a parquet footer); returns whether the input brings its own uids."""
    cols = resolve(config)
    files = files if files is not None else list_input_files(config)
    schema = _first_schema(config, files[0])
    _check_columns(schema, config, files[0].path)
    return cols.uid in schema.names


def _check_columns(schema: pa.Schema, config: DownloadConfig, where: str) -> None:
    cols = resolve(config)
    if cols.url not in schema.names:
        raise CurateError(f"{where}: missing column {cols.url!r} (columns: {', '.join(schema.names)}); "
                          "choose it with --url-col or --preset")
    if config.source_col is not None and config.source_col not in schema.names:  # a typo is no silent null
        raise CurateError(f"{where}: missing column {config.source_col!r} named by --source-col "
                          f"(columns: {', '.join(schema.names)})")
    url_type = schema.field(cols.url).type
    if not pa.types.is_string(url_type) and not pa.types.is_large_string(url_type) and not pa.types.is_null(url_type):
        raise CurateError(f"{where}: column {cols.url!r} must be strings, not {url_type}")


def _column(table: pa.Table, name: str, type_: pa.DataType, where: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        return pa.chunked_array([pa.nulls(table.num_rows, type_)])
    try:
        return table.column(name).cast(type_)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise CurateError(f"{where}: column {name!r} cannot be read as {type_}") from exc


def _boxes(table: pa.Table, name: str | None, where: str) -> pa.ChunkedArray:
    """The face boxes column as JSON text (DataComp stores a list of [x0, y0, x1, y1] per row)."""
    if name is None or name not in table.column_names:
        return pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
    col = table.column(name)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col.cast(pa.string())
    try:
        text = [None if v is None else json.dumps(v, separators=(",", ":")) for v in col.to_pylist()]
    except (TypeError, ValueError) as exc:
        raise CurateError(f"{where}: column {name!r} is not a list of boxes") from exc
    return pa.chunked_array([pa.array(text, pa.string())])


def file_rows(config: DownloadConfig, file: InputFile) -> pa.Table:
    """One input file as ROWS_SCHEMA: url ('' where missing), caption, uid as given (null without a uid
    column), the carried columns, and each row's place (`_file`, `_row`)."""
    fmt = input_format(config)
    cols = resolve(config)
    carried = {dst: src for src, dst in cols.carry} | {"source": cols.source}
    table = _read_file(file.path, fmt)
    _check_columns(table.schema, config, file.path)
    n = table.num_rows
    columns = {"uid": _column(table, cols.uid, pa.string(), file.path),
               "url": pc.fill_null(_column(table, cols.url, pa.string(), file.path), ""),
               "caption": _column(table, cols.caption, pa.string(), file.path)}
    for name in CARRIED:
        columns[name] = _column(table, carried.get(name, "\x00absent"), URLS_SCHEMA.field(name).type, file.path)
    columns[OPT_OUT] = _column(table, OPT_OUT, pa.bool_(), file.path)
    columns[FACES] = _boxes(table, cols.faces, file.path)
    columns[FILE] = pa.chunked_array([pa.array([file.index] * n, pa.int32())])
    columns[ROW] = pa.chunked_array([pa.array(range(n), pa.int64())])
    return pa.Table.from_arrays([columns[f.name].cast(f.type) for f in ROWS_SCHEMA], schema=ROWS_SCHEMA)


def read_input(config: DownloadConfig) -> pa.Table:
    """The whole input as a `urls` table (URLS_SCHEMA), in this process: the local engine's plan, for tests and
    demo-size lists (tests/unit/download/test_plan.py proves it gives the engines' bytes)."""
    files = list_input_files(config)
    given = check_input(config, files)
    table = pa.concat_tables([file_rows(config, f) for f in files])
    if given:
        uids = table.column("uid").to_pylist()
        bad = next((u for u in uids if u is None or not _UID.match(u)), False)
        if bad is not False:
            raise CurateError(f"{config.input}: uid {bad!r} is not 32 lowercase hex characters")
    else:
        uids = derive_uids(table.column("url").to_pylist(), table.column("caption").to_pylist())
    if len(set(uids)) != len(uids):
        raise CurateError(f"{config.input}: uids are not unique ({len(uids) - len(set(uids))} repeats)")
    table = table.set_column(0, "uid", pa.array(uids, pa.string()))
    return table.select(URLS_SCHEMA.names).cast(URLS_SCHEMA)
