"""Tables as datasets of parquet parts (../shared/DATAPLANE.md).

Every table a stage writes is a folder of parquet parts, each written by the task that computed it,
under a name that follows from its input: `00017.parquet` for the rows of download shard 17 (samples,
hashes, dedup decisions), `part-00017.parquet` for partition 17 of a stated partitioning. A part is
committed atomically (`fs.atomic_open`) with its checksum sidecar `_sums/<name>.json` (`curate.io.sums`);
a stage's `_stats.json` and `_SUCCESS` come after all parts.
Resume is one listing of the folder (`list_parts`), then only the missing parts are computed.

Nothing here reads a whole table into one process except `read_table`, which says so: it is for demo-size
tables and tests. Engines open datasets part by part in their workers (`read_part`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate import schemas
from curate.errors import CurateError
from curate.io import fs, sums

log = logging.getLogger(__name__)

SUFFIX = ".parquet"
DIGITS = 5
PART_COL = "_part"  # in a frame an engine writes: the name of the part each row goes to (without .parquet)


def part_name(index: int) -> str:
    """`part-00017.parquet`: partition `index` of a stated partitioning."""
    return f"part-{index:0{DIGITS}d}{SUFFIX}"


def shard_part_name(shard: int | str) -> str:
    """`00017.parquet`: the rows of input shard 17 (or of tar `00017.tar`)."""
    if isinstance(shard, str):
        return shard.removesuffix(".tar") + SUFFIX
    return f"{shard:0{DIGITS}d}{SUFFIX}"


def is_part(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(SUFFIX) and not base.startswith(("_", "."))


def list_parts(folder: str) -> dict[str, int]:
    """{part file name: size in bytes} of a dataset folder, from one listing; {} when there is no folder."""
    ffs, p = fs.url_to_fs(folder)
    try:
        entries = ffs.ls(p, detail=True)
    except FileNotFoundError:
        return {}
    out = {}
    for e in entries:
        name = e["name"].rstrip("/").rsplit("/", 1)[-1]
        if e.get("type") == "file" and is_part(name):
            out[name] = int(e.get("size") or 0)
    return dict(sorted(out.items()))


def finished_parts(folder: str) -> dict[str, int]:
    """`list_parts` for a resume: the parts that have their checksum sidecar. A task killed (or out of disk)
    between committing a part and writing its sidecar left a part that is written again, sidecar and all.
    A folder with no sidecars at all (written before curate wrote them) keeps every part."""
    parts = list_parts(folder)
    ffs, p = fs.url_to_fs(fs.join(folder, sums.SUMS_DIR))
    try:
        names = {e.rstrip("/").rsplit("/", 1)[-1] for e in ffs.ls(p, detail=False)}
    except FileNotFoundError:
        return parts
    return {name: size for name, size in parts.items() if name + sums.SUFFIX in names}


def part_paths(folder: str) -> list[str]:
    """The full paths of a dataset's parts, in name order (one listing)."""
    return [fs.join(folder, name) for name in list_parts(folder)]


def encode(table: pa.Table, schema: str | None = None, version: int = 1) -> bytes:
    """A part's bytes: the table conformed to `schema`, zstd, with page checksums. The same table gives the
    same bytes, so a part rewritten on resume is identical."""
    if schema is not None:
        table = schemas.conform(table, schema, version)
    return fs.encode_table(table)


def write_part(table: pa.Table, path: str, schema: str | None = None, version: int = 1) -> int:
    """Write one part atomically, then its checksum sidecar; returns its size in bytes."""
    data = encode(table, schema, version)
    sums.write_bytes(path, data)
    return len(data)


def read_part(path: str, columns: list[str] | None = None, only_present: bool = False) -> pa.Table:
    """One part, only `columns` (a missing one is an error naming the part, or with `only_present` left out:
    parts written by an older schema version lack newer columns). Its bytes are read once and checked
    against its checksum sidecar (when it has one) and the pages' own checksums before use."""
    try:
        data = pa.py_buffer(sums.read_verified(path))
        if only_present and columns is not None:
            have = set(pq.read_schema(pa.BufferReader(data)).names)
            columns = [c for c in columns if c in have]
        return pq.read_table(pa.BufferReader(data), columns=columns, page_checksum_verification=True)
    except FileNotFoundError as exc:
        raise CurateError(f"no such part: {path}") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise CurateError(f"cannot read parquet part {path}: {str(exc).splitlines()[0]}") from exc


def iter_part(path: str, columns: list[str], batch_size: int = 16_384) -> Iterator[pa.RecordBatch]:
    """One part's rows in batches of `batch_size`, checked as `read_part` checks them: memory is the part's
    bytes and one batch, whatever its row count (for streaming a part through this process)."""
    try:
        data = pa.py_buffer(sums.read_verified(path))
        yield from pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True).iter_batches(
            batch_size=batch_size, columns=columns)
    except FileNotFoundError as exc:
        raise CurateError(f"no such part: {path}") from exc
    except (pa.ArrowInvalid, OSError) as exc:
        raise CurateError(f"cannot read parquet part {path}: {str(exc).splitlines()[0]}") from exc


def read_schema(folder: str) -> pa.Schema | None:
    """The schema of a dataset, from its first part's footer; None when it has no parts."""
    paths = part_paths(folder)
    return fs.read_schema(paths[0]) if paths else None


def read_table(folder: str, columns: list[str] | None = None, schema: str | None = None) -> pa.Table:
    """A whole dataset in this process. For demo-size tables and tests only; stages read through engines."""
    return fs.read_table(folder, schema=schema, columns=columns)


def merge_stats(stats: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-task stats summed key by key (numbers add, nested dicts merge the same way)."""
    out: dict[str, Any] = {}
    for item in stats:
        _merge_into(out, item)
    return out


def _merge_into(out: dict[str, Any], item: Mapping[str, Any]) -> None:
    for key, value in item.items():
        if isinstance(value, Mapping):
            _merge_into(out.setdefault(key, {}), value)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"merge_stats: {key!r} is {type(value).__name__}, not a number or a dict")
        else:
            out[key] = out.get(key, 0) + value
