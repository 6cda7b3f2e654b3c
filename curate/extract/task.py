"""One input file, start to finish, on a worker: read its records, write its two parts, return its stats.

The rejects part is written first and the pairs part last, each atomically, so a pairs part on disk means
the file is done: resume lists the pairs and recomputes only files without one. The file's stats travel in
the pairs part's footer (key `curate.extract.stats`), so a resumed run merges them without recomputing.

A damaged file (a gzip error, a record cut short, bytes that are not WARC) keeps the rows read before the
damage and counts `files_damaged` (the damage is named in the footer, key `curate.extract.damage`); with
`strict` it is an error. Errors of the storage itself (a missing file, a refused read) raise a CurateError
naming the file, so the engine retries the task and then fails with that one line.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from fastwarc.warc import ArchiveIterator, WarcRecordType

from curate.errors import CurateError
from curate.extract import html, wat
from curate.extract.config import ExtractConfig
from curate.extract.inputs import InputFile
from curate.extract.page import Page
from curate.extract.rows import PAIRS, REJECTS, FileRows
from curate.io import dataset, fs

log = logging.getLogger(__name__)

STATS_KEY = b"curate.extract.stats"
DAMAGE_KEY = b"curate.extract.damage"
REJECTS_DIR = "rejects"
# what fastwarc's OSErrors say about the bytes themselves (not about the storage under them)
_DAMAGE = ("gzip", "zstd", "lz4", "brotli", "decompression", "invalid warc", "invalid http")


@dataclass(frozen=True)
class Item:
    file: InputFile
    done: bool  # its pairs part is already there (from the driver's one listing): only its stats are read


@dataclass(frozen=True)
class ExtractTask:
    """Picklable: the engine ships it to the workers and calls it once per Item."""

    config: ExtractConfig
    out: str  # RUN/extract

    def __call__(self, item: Item) -> dict:
        pairs_path = fs.join(self.out, dataset.part_name(item.file.index))
        if item.done:
            return read_stats(pairs_path)
        rows, damage = extract_file(self.config, item.file)
        stats = rows.stats()
        pairs, rejects = rows.tables()
        meta = {STATS_KEY: json.dumps(stats, sort_keys=True).encode()}
        if damage:
            meta[DAMAGE_KEY] = f"{item.file.path}: {damage}".encode()
        dataset.write_part(rejects, fs.join(self.out, REJECTS_DIR, dataset.part_name(item.file.index)), REJECTS)
        pairs = _conformed(pairs, meta)
        dataset.write_part(pairs, pairs_path)
        return stats


def _conformed(table: pa.Table, extra: dict[bytes, bytes]) -> pa.Table:
    from curate import schemas

    out = schemas.conform(table, PAIRS)
    return out.replace_schema_metadata({**(out.schema.metadata or {}), **extra})


def read_stats(path: str) -> dict:
    """The stats a finished pairs part carries in its footer."""
    ffs, p = fs.url_to_fs(path)
    with ffs.open(p, "rb") as fh:
        meta = pq.read_schema(fh).metadata or {}
    if STATS_KEY not in meta:
        raise CurateError(f"extract: {path} has no stats in its footer; remove it and rerun")
    return json.loads(meta[STATS_KEY])


def extract_file(config: ExtractConfig, file: InputFile) -> tuple[FileRows, str | None]:
    """(rows, damage): every page of the file added to a FileRows; damage is None or what went wrong."""
    rows = FileRows(config, file.key, file.crawl)
    ffs, p = fs.url_to_fs(file.path)
    damage = None
    try:
        with _no_gc():
            with ffs.open(p, "rb") as fh:
                for page in (_wat_pages if config.source_format == "wat" else _warc_pages)(fh, config, rows):
                    rows.add(page)
            rows.flush()
    except FileNotFoundError as exc:
        raise CurateError(f"extract: no such input file: {file.path}") from exc
    except _Damaged as exc:
        damage = str(exc)
    except OSError as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not any(word in text.lower() for word in _DAMAGE):  # the storage, not the bytes: the engine retries
            raise CurateError(f"extract: cannot read {file.path}: {text}") from exc
        damage = text
    if damage is not None:
        rows.counts["files_damaged"] += 1
        if config.strict:
            raise CurateError(f"extract: {file.path} is damaged after {rows.counts['records']} records: {damage}")
        log.warning("extract: %s is damaged after %d records (%s); keeping what precedes it", file.path,
                    rows.counts["records"], damage)
    return rows, damage


class _Damaged(Exception):
    pass


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: parsed JSON makes no cycles, and the rows held for a batch would
    otherwise be traversed again and again (10-20% of a file's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _payload(record, limit: int | None = None) -> tuple[bytes, bool]:
    """(payload, cut): at most `limit` bytes; raises _Damaged when the file ends inside the record."""
    data = record.reader.read() if limit is None else record.reader.read(limit + 1)
    if limit is not None and len(data) > limit:
        return data[:limit], True
    if limit is None and len(data) < record.content_length:
        raise _Damaged(f"the file ends inside a record ({len(data)} of {record.content_length} bytes)")
    return data, False


def _wat_pages(fh, config: ExtractConfig, rows: FileRows) -> Iterator[Page]:
    attrs, names = frozenset(config.url_attributes), frozenset(n.lower() for n in config.robots_names)
    counts = rows.counts
    for record in ArchiveIterator(fh, record_types=WarcRecordType.metadata, parse_http=False):
        counts["records"] += 1
        data, _ = _payload(record)
        try:
            page = wat.page(data, attrs, names)
        except wat.BadRecord:
            counts["records_bad"] += 1
            continue
        if page is not None:
            yield page


def _warc_pages(fh, config: ExtractConfig, rows: FileRows) -> Iterator[Page]:
    names = frozenset(n.lower() for n in config.robots_names)
    counts = rows.counts
    # bodies as stored: fastwarc's own decoding raises on one mislabelled record and would end the whole file
    for record in ArchiveIterator(fh, record_types=WarcRecordType.response, parse_http=True):
        counts["records"] += 1
        headers = record.http_headers
        if headers is None or "html" not in (record.http_content_type or "").lower():
            continue
        body, cut = _payload(record, config.max_html_bytes)
        body, cut_decoded = html.content_decoded(body, headers.get("Content-Encoding"), config.max_html_bytes)
        counts["pages_truncated"] += cut or cut_decoded
        text, fell_back = html.decode(body, record.http_charset)
        counts["pages_decoded_fallback"] += fell_back
        yield html.page(text, record.headers.get("WARC-Target-URI"), config.url_attributes, names,
                        tuple(headers.get_multiple("X-Robots-Tag")), record.record_id)
