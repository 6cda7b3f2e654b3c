"""Read the user's URL list, validate it, and give every row a stable 128-bit uid."""

from __future__ import annotations

import hashlib
import re

import pyarrow as pa
import pyarrow.compute as pc

from curate import schemas
from curate.download.config import DownloadConfig
from curate.errors import CurateError
from curate.io import fs

_UID = re.compile(r"^[0-9a-f]{32}$")


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


def check_input(config: DownloadConfig, schema: pa.Schema | None = None) -> None:
    """Fail fast, from the schema alone, on an input that cannot be downloaded (before any engine starts)."""
    if schema is None:
        schema = fs.read_schema(config.input)
    if config.url_col not in schema.names:
        raise CurateError(f"{config.input}: missing column {config.url_col!r} (columns: {', '.join(schema.names)})")
    url_type = schema.field(config.url_col).type
    if not pa.types.is_string(url_type) and not pa.types.is_large_string(url_type):
        raise CurateError(f"{config.input}: column {config.url_col!r} must be strings, not {url_type}")


def read_input(config: DownloadConfig) -> pa.Table:
    """The input as a `urls` table (uid, url, caption), or a one-line CurateError saying what is wrong."""
    table = fs.read_table(config.input)
    check_input(config, table.schema)
    urls = table.column(config.url_col)
    urls = pc.fill_null(urls.cast(pa.string()), "")
    if config.caption_col in table.column_names:
        captions = table.column(config.caption_col).cast(pa.string())
    else:
        captions = pa.nulls(table.num_rows, pa.string())
    if config.uid_col in table.column_names:
        uids = table.column(config.uid_col).cast(pa.string()).to_pylist()
        bad = next((u for u in uids if u is None or not _UID.match(u)), False)
        if bad is not False:
            raise CurateError(f"{config.input}: uid {bad!r} is not 32 lowercase hex characters")
    else:
        uids = derive_uids(urls.to_pylist(), captions.to_pylist())
    if len(set(uids)) != len(uids):
        raise CurateError(f"{config.input}: uids are not unique ({len(uids) - len(set(uids))} repeats)")
    out = pa.table({"uid": uids, "url": urls, "caption": captions})
    return schemas.conform(out, "urls")
