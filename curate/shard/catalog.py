"""What the shard stage knows of each sample in a source tar, as an Arrow table (`SCHEMA`): its files in
output order (sorted by extension) with their data offsets and sizes, the byte range holding all of them
(read at once; tar members of one key are adjacent, with only headers and padding between them), and
their total size.

It comes from the tar's `.idx` (DALI's format, which the download writes), parsed column-wise by
pyarrow, or from the tar's headers when there is no index or the index does not agree with the tar.
"""

from __future__ import annotations

import io
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from curate.io import fs, sums, tarindex
from curate.shard.tarfast import BLOCK, scan

log = logging.getLogger(__name__)

Members = tuple[tuple[str, int, int], ...]  # (extension, data offset, size) per file of a sample
SCHEMA = pa.schema([
    ("key", pa.string()),
    ("exts", pa.list_(pa.string())),
    ("offsets", pa.list_(pa.int64())),
    ("sizes", pa.list_(pa.int64())),
    ("lo", pa.int64()),  # the range [lo, hi) holds all the sample's files; lo = -1 when they lie apart
    ("hi", pa.int64()),
    ("nbytes", pa.int64()),  # bytes of the files
    ("crcs", pa.list_(pa.int64())),  # per file: the CRC32C of its data from the tar's sidecar, -1 when unknown
])
_PLACES = pa.schema(list(SCHEMA)[:-1])  # what the tar's index or headers give


def catalog(path: str) -> pa.Table:
    """One row per sample of the tar at `path`, with its files' checksums from the tar's sidecar."""
    try:
        found = _from_index(path)
    except (ValueError, UnicodeDecodeError, pa.ArrowInvalid) as exc:
        log.warning("%s: unusable index (%s); reading the tar's headers instead", tarindex.index_path(path), exc)
        found = None
    if found is None:
        found = from_listing(scan(path))
    return with_crcs(found, sums.read_sidecar(path))


def with_crcs(places: pa.Table, sidecar: dict | None) -> pa.Table:
    """`places` (the index's columns) with `crcs`: each file's CRC32C as the tar's sidecar lists it by data
    offset (written by curate's tar writers), -1 for a file it does not list or a tar without one."""
    offsets = places.column("offsets").combine_chunks()
    flat = offsets.flatten().to_numpy(zero_copy_only=False)
    values = np.full(len(flat), -1, np.int64)
    listed = (sidecar or {}).get("members")
    if listed:
        at, crcs = np.array(listed, np.int64).reshape(-1, 2).T
        order = np.argsort(at, kind="stable")
        at, crcs = at[order], crcs[order]
        i = np.minimum(np.searchsorted(at, flat), len(at) - 1)
        values = np.where(at[i] == flat, crcs[i], -1)
    column = pa.ListArray.from_arrays(offsets.offsets, pa.array(values, pa.int64()))
    return pa.table([*places.select(_PLACES.names).columns, column], schema=SCHEMA)


def byte_range(members: Members) -> tuple[int, int]:
    """[lo, hi) holding all of a sample's files; lo = -1 when more than headers and padding lie between
    them (then they are read one by one). `_from_columns` applies the same rule column-wise."""
    total = sum(m[2] for m in members)
    lo = min(m[1] for m in members)
    hi = max(m[1] + m[2] for m in members)
    return (lo if hi - lo <= total + 2 * BLOCK * len(members) else -1), hi


def from_listing(listing: dict[str, dict[str, tuple[int, int]]]) -> pa.Table:
    """The catalog of key -> {extension: (data offset, size)}, as `tarfast.scan` lists a tar."""
    keys, exts, offs, sizes, lo, hi, nbytes = [], [], [], [], [], [], []
    for key, files in listing.items():
        members = tuple(sorted((ext, off, size) for ext, (off, size) in files.items()))
        a, b = byte_range(members)
        keys.append(key)
        exts.append([m[0] for m in members])
        offs.append([m[1] for m in members])
        sizes.append([m[2] for m in members])
        lo.append(a)
        hi.append(b)
        nbytes.append(sum(sizes[-1]))
    return pa.table([keys, exts, offs, sizes, lo, hi, nbytes], schema=_PLACES)


def _from_index(path: str) -> pa.Table | None:
    """The samples listed by the tar's index; None without one, or when it does not match the tar."""
    data = tarindex.read_index_bytes(path)
    if data is None:
        return None
    head, _, body = data.partition(b"\n")
    version, _, count = head.decode("utf-8").partition(" ")
    if version != tarindex.VERSION or not count.strip().isdigit():
        raise ValueError(f"not a {tarindex.VERSION} webdataset index")
    if int(count) == 0 or not body.strip():
        raise ValueError("the index lists no samples")
    ncols = body.split(b"\n", 1)[0].count(b" ") + 1
    if ncols % 4:
        raise ValueError(f"a sample line has {ncols} fields, not a multiple of 4")
    try:
        columns = _read_columns(body, ncols)
    except pa.ArrowInvalid:  # samples with different numbers of files
        columns = None
    if columns is not None and columns.num_rows != int(count):
        raise ValueError(f"the index announces {count} samples and lists {columns.num_rows}")
    table = _from_columns(columns, ncols // 4) if columns is not None else None
    if table is None:  # the line-by-line parser, for what the column-wise one does not take
        table = from_listing(tarindex.parse_index(data))
    return table if _agrees(path, table) else None


def _read_columns(body: bytes, ncols: int) -> pa.Table:
    names = [f"c{i}" for i in range(ncols)]
    return pacsv.read_csv(
        io.BytesIO(body),
        read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
        parse_options=pacsv.ParseOptions(delimiter=" ", quote_char=False, double_quote=False, escape_char=False),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.int64() if i % 4 in (1, 2) else pa.string() for i, n in enumerate(names)}))


def _from_columns(columns: pa.Table, files: int) -> pa.Table | None:
    """The catalog from the index's columns (ext, offset, size, name per file), without a loop per sample;
    None when a line lists its files out of extension order (left to the line-by-line parser)."""
    n = columns.num_rows
    keys = _key(columns.column("c3"))
    for j in range(1, files):
        if not pc.all(pc.equal(_key(columns.column(f"c{4 * j + 3}")), keys)).as_py():
            raise ValueError("a sample line lists files of different keys")
        if pc.any(pc.greater_equal(columns.column(f"c{4 * j - 4}"), columns.column(f"c{4 * j}"))).as_py():
            return None
    if pc.count_distinct(keys).as_py() != n:
        raise ValueError("a key is listed on two lines")
    offs = np.stack([columns.column(f"c{4 * j + 1}").to_numpy() for j in range(files)], axis=1)
    sizes = np.stack([columns.column(f"c{4 * j + 2}").to_numpy() for j in range(files)], axis=1)
    nbytes = sizes.sum(axis=1)
    lo, hi = offs.min(axis=1), (offs + sizes).max(axis=1)
    lo = np.where(hi - lo <= nbytes + 2 * BLOCK * files, lo, -1)
    # row-major interleave: sample i's files are values [i * files, (i + 1) * files)
    per_file = (np.arange(files)[None, :] * n + np.arange(n)[:, None]).ravel()
    exts = pa.concat_arrays([columns.column(f"c{4 * j}").combine_chunks() for j in range(files)]).take(per_file)
    bounds = pa.array(np.arange(0, n * files + 1, files, dtype=np.int32))
    return pa.table([keys.combine_chunks(), pa.ListArray.from_arrays(bounds, exts),
                     pa.ListArray.from_arrays(bounds, pa.array(offs.ravel())),
                     pa.ListArray.from_arrays(bounds, pa.array(sizes.ravel())), lo, hi, nbytes], schema=_PLACES)


def _key(names: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.list_element(pc.split_pattern(names, ".", max_splits=1), 0)


def _agrees(path: str, table: pa.Table) -> bool:
    """The files listed end inside the tar, and the headers of the first file of the first, a middle and
    the last sample carry the listed name and size."""
    if table.num_rows == 0:
        return False
    offsets = table.column("offsets").combine_chunks()
    sizes = table.column("sizes").combine_chunks()
    end = int(pc.max(pc.add(offsets.flatten(), sizes.flatten())).as_py())
    tfs, p = fs.url_to_fs(path)
    if end > tfs.size(p):
        log.warning("%s lists files past the end of %s; reading the tar's headers instead",
                    tarindex.index_path(path), path)
        return False
    keys, exts = table.column("key"), table.column("exts")
    with tfs.open(p, "rb") as fh:
        for i in sorted({0, table.num_rows // 2, table.num_rows - 1}):
            off, size = offsets[i].values[0].as_py(), sizes[i].values[0].as_py()
            name = f"{keys[i].as_py()}.{exts[i].values[0].as_py()}".encode()
            fh.seek(max(0, off - BLOCK))
            h = fh.read(BLOCK) if off >= BLOCK else b""
            if not (len(h) == BLOCK and h[156:157] in (b"0", b"\0") and not h[124] & 0x80
                    and (len(name) > 100 or h[:100].rstrip(b"\0") == name)
                    and int(h[124:136].split(b"\0", 1)[0] or b"0", 8) == size):
                log.warning("%s does not match %s; reading the tar's headers instead", tarindex.index_path(path), path)
                return False
    return True
