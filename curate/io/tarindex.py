"""Member indexes of webdataset tars in DALI's index format (`wds2idx`, version v1.2), written beside each
tar as `NNNNN.idx`, the layout NeMo Curator uses too. DALI's `fn.readers.webdataset(index_paths=...)`
reads them instead of walking the archive, and so does our shard stage.

The format: a first line `v1.2 <samples>`, then one line per sample (members sharing the name before the
first dot, adjacent in the archive): `<ext> <data offset> <size> <member name>` for each of its files,
separated by spaces. Names with whitespace cannot be written in it; such a tar gets no index.
"""

from __future__ import annotations

from collections.abc import Iterable

from curate.io import fs

VERSION = "v1.2"
SUFFIX = ".idx"


def index_path(tar: str) -> str:
    """`.../00012.tar` -> `.../00012.idx`."""
    return (tar[: -len(".tar")] if tar.endswith(".tar") else tar) + SUFFIX


def format_index(members: Iterable[tuple[str, int, int]]) -> bytes | None:
    """The index of an archive's file members, given in archive order as (name, data offset, size); None
    when a name cannot be written in the format (whitespace, or no extension)."""
    lines: list[str] = []
    group: list[str] = []
    last = None
    for name, offset, size in members:
        base, dot, ext = name.partition(".")
        if not dot or not base or any(c.isspace() for c in name):
            return None
        if base != last and group:
            lines.append(" ".join(group))
            group = []
        last = base
        group.append(f"{ext} {offset} {size} {name}")
    if group:
        lines.append(" ".join(group))
    return (f"{VERSION} {len(lines)}\n" + "".join(line + "\n" for line in lines)).encode()


def parse_index(data: bytes) -> dict[str, dict[str, tuple[int, int]]]:
    """key -> {extension: (data offset, size)}, as `tarfast.scan` gives it. ValueError when malformed."""
    lines = data.decode("utf-8").split("\n")
    head = lines[0].split()
    if len(head) != 2 or head[0] != VERSION:
        raise ValueError(f"not a {VERSION} webdataset index (first line {lines[0][:40]!r})")
    body = [line for line in lines[1:] if line]
    if len(body) != int(head[1]):
        raise ValueError(f"the index announces {head[1]} samples and lists {len(body)}")
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for line in body:
        tokens = line.split(" ")
        if len(tokens) % 4:
            raise ValueError(f"a sample line has {len(tokens)} fields, not a multiple of 4")
        for i in range(0, len(tokens), 4):
            key, _, ext = tokens[i + 3].partition(".")
            out.setdefault(key, {})[ext] = (int(tokens[i + 1]), int(tokens[i + 2]))
    return out


def write_index(tar: str, members: Iterable[tuple[str, int, int]]) -> bool:
    """Write the tar's index beside it (temporary name, then rename); False when it cannot be written."""
    data = format_index(members)
    if data is None:
        return False
    fs.write_bytes(index_path(tar), data)
    return True


def read_index_bytes(tar: str) -> bytes | None:
    """The raw index beside `tar` (for `parse_index`, or a column-wise reader), or None when there is none."""
    sfs, p = fs.url_to_fs(index_path(tar))
    try:
        with sfs.open(p, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
