"""What a stage was run with: `_fingerprint.json` in its folder, written before its work begins.

It holds the canonical form of the stage's configuration (its frozen config dataclass, sorted keys, without
the fields marked `field(metadata={"fingerprint": False})`: those that change how a stage runs, not what it
writes) and, for each earlier stage of the run, the sha256 of that stage's `_stats.json` and
`_fingerprint.json` (cheap: no data is read). Rerunning a finished stage with another configuration, or
after an earlier stage changed, is refused with the fields that differ; `--redo` removes the stage and
every later one so it runs again. No timestamps or paths of the run: a copied run keeps its fingerprints.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from pathlib import PurePath
from typing import Any

from curate.errors import CurateError
from curate.io import fs, lock

log = logging.getLogger(__name__)

FINGERPRINT = "_fingerprint.json"
STATS = "_stats.json"
STAGES = ("extract", "download", "dedup", "score", "select", "shard")  # the order a run goes through
OUTPUTS = ("audit", "report", "export")  # folders written from the finished stages, removed with any of them


def canonical(value: Any) -> Any:
    """A JSON-able form of a config: dataclasses as dicts of their fingerprinted fields, tuples as lists.
    Fields marked `metadata={"files": True}` (paths of inputs: a policy YAML, hash lists, eval images) also
    carry what is at the path (`content`), so an edited file reads as a changed configuration."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            if f.metadata.get("fingerprint", True):
                v = getattr(value, f.name)
                out[f.name] = _with_content(v) if f.metadata.get("files") else canonical(v)
        return out
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 5 and 5.0 (a flag parsed as float, a default written as int) give the same bytes
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, PurePath):
        return str(value)
    return repr(value)


CONTENT_BYTES = 64 << 20  # files hashed by content up to this many bytes in all; the rest by name and size


def _with_content(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [_with_content(v) for v in value]
    return {"path": str(value), "content": content(str(value))}


def content(path: str) -> str | None:
    """sha256 of what is at `path`: a file's bytes, or a folder's files (relative name, size, and the bytes of
    the first CONTENT_BYTES in name order); None where nothing is (a shipped policy's name, not a path)."""
    ffs, p = fs.url_to_fs(path)
    try:
        if not ffs.exists(p):
            return None
        found = ffs.find(p, detail=True) if ffs.isdir(p) else {p: ffs.info(p)}
    except (OSError, ValueError):
        return None
    h, budget = hashlib.sha256(), CONTENT_BYTES
    root = p.rstrip("/")
    for name in sorted(found):
        size = int(found[name].get("size") or 0)
        h.update(f"{name[len(root):].lstrip('/')}\0{size}\0".encode())
        if size <= budget:
            with ffs.open(name, "rb") as fh:
                h.update(fh.read())
            budget -= size
    return h.hexdigest()


def _sha256(path: str) -> str | None:
    ffs, p = fs.url_to_fs(path)
    try:
        with ffs.open(p, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except FileNotFoundError:
        return None


def upstream(name: str) -> tuple[str, ...]:
    """The stages `name` reads, directly or through the ones it reads: every earlier stage of the run."""
    return STAGES[:STAGES.index(name)] if name in STAGES else ()


def inputs(run: str, name: str) -> dict:
    """{stage: {"stats": sha256, "fingerprint": sha256 or None}} for each earlier stage present in `run`."""
    out = {}
    for stage in upstream(name):
        stats = _sha256(fs.join(run, stage, STATS))
        if stats is not None:
            out[stage] = {"stats": stats, "fingerprint": _sha256(fs.join(run, stage, FINGERPRINT))}
    return out


def record(run: str, name: str, config: Any) -> dict:
    return {"stage": name, "config": None if config is None else canonical(config), "inputs": inputs(run, name)}


def write(run: str, name: str, config: Any) -> None:
    fs.write_json(fs.join(run, name, FINGERPRINT), record(run, name, config))


def _flat(value: Any, prefix: str = "") -> dict:
    """{dotted key: leaf}; lists of dicts (several input files) by position: `hash_lists.1.content`."""
    items = value.items() if isinstance(value, dict) else None
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        items = enumerate(value)
    if items is None:
        return {prefix[:-1]: value}
    out = {}
    for k, v in items:
        out.update(_flat(v, f"{prefix}{k}."))
    return out


def differences(old: dict, new: dict) -> list[str]:
    """Human-readable differences of two records: `field: old -> new` and `inputs changed: stage`."""
    diffs = []
    if old.get("config") is not None and new.get("config") is not None:
        a, b = _flat(old["config"]), _flat(new["config"])
        missing = object()
        for key in sorted(set(a) | set(b)):
            va, vb = a.get(key, missing), b.get(key, missing)
            if va != vb:
                show = [("(absent)" if v is missing else json.dumps(v)) for v in (va, vb)]
                diffs.append(f"{key}: {show[0]} -> {show[1]}")
    a, b = old.get("inputs", {}), new.get("inputs", {})
    changed = [s for s in STAGES if a.get(s) != b.get(s)]
    if changed:
        diffs.append(f"inputs changed: {', '.join(changed)} (rerun or removed since)")
    return diffs


def check(run: str, name: str, config: Any) -> None:
    """Raise when finished stage `name` of `run` was run with another configuration or other inputs."""
    path = fs.join(run, name, FINGERPRINT)
    if not fs.exists(path):
        log.info("%s: finished before configurations were recorded; not checked", name)
        return
    diffs = differences(fs.read_json(path), record(run, name, config))
    if diffs:
        later = ", ".join(STAGES[STAGES.index(name) + 1:]) if name in STAGES else ""
        raise CurateError(f"{name}: {fs.join(run, name)} finished with another configuration: {'; '.join(diffs)}; "
                          f"rerun with --redo to remove it{' and the later stages (' + later + ')' if later else ''} "
                          "and run it again")


def redo(run: str, name: str, force: bool = False) -> list[str]:
    """Remove stage `name`'s folder, every later stage's and the audit/report outputs; the folders removed.
    A folder that another live run holds locked is refused, unless `force` (--force-unlock: that run is gone)."""
    names = [*STAGES[STAGES.index(name):], *OUTPUTS]
    present = [n for n in names if fs.exists(fs.join(run, n))]
    for n in [] if force else present:
        holder = lock.held_by_other(fs.join(run, n, lock.LOCK))
        if holder is not None:
            raise CurateError(f"{name}: --redo would remove {fs.join(run, n)}, which is locked by another run: "
                              f"{lock.describe(holder)}; if that run is gone, add --force-unlock")
    for n in present:
        fs.remove_tree(fs.join(run, n))
    if present:
        log.info("%s: --redo removed %s", name, ", ".join(fs.join(run, n) for n in present))
    else:
        log.info("%s: --redo: nothing to remove in %s", name, run)
    return present
