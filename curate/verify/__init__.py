"""`curate verify RUN`: every parquet part and tar of a run checked against its checksum sidecar.

One recursive listing per stage folder gives the files, their sizes and the sidecars (`_sums/<name>.json`,
curate.io.sums). A file whose listed size differs from its sidecar's is reported without reading it; the
others are read in a stream and hashed, in a thread pool (the work waits on storage). Every mismatch is
reported, one line each; files without a sidecar (written before sidecars existed, or by a run killed
between a part and its sidecar) are listed as unverified, and sidecars whose file is gone as orphans.
Exit status: 0 when every checked file matches, 1 on any mismatch.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from curate.errors import CurateError
from curate.io import fs, sums

log = logging.getLogger(__name__)

STAGES = ("extract", "download", "dedup", "score", "select", "shard", "export")
SUFFIXES = (".parquet", ".tar", ".npy")  # what a stage writes with a sidecar (select's uids.npy: .npy)
THREADS = 16


@dataclass
class Report:
    run: str
    checked: int = 0
    bytes: int = 0
    mismatches: list[dict] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    stages: dict[str, dict] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict:
        return {"run": self.run, "ok": self.ok, "checked": self.checked, "bytes": self.bytes,
                "mismatches": self.mismatches, "unverified": self.unverified, "orphans": self.orphans,
                "stages": self.stages}

    def lines(self) -> list[str]:
        out = [f"MISMATCH {m['path']}: {m['problem']}" for m in self.mismatches]
        out += [f"unverified (no sidecar): {p}" for p in self.unverified]
        out += [f"orphan sidecar (no file): {p}" for p in self.orphans]
        state = "ok" if self.ok else f"{len(self.mismatches)} mismatched"
        out.append(f"verify: {state}: {self.checked:,} files ({self.bytes:,} bytes) checked, "
                   f"{len(self.unverified):,} without a sidecar, {len(self.orphans):,} orphan sidecars")
        return out


def _listing(folder: str) -> tuple[dict[str, int], dict[str, str]]:
    """({file path relative to `folder`: size}, {target path relative to `folder`: sidecar path}) of
    the data files and sidecars under `folder`, from one recursive listing."""
    ffs, root = fs.url_to_fs(folder)
    try:
        found = ffs.find(root, detail=True)
    except FileNotFoundError:
        return {}, {}
    root = root.rstrip("/")
    files, sidecars = {}, {}
    for path, info in found.items():
        if info.get("type") == "directory":
            continue
        rel = path[len(root):].lstrip("/")
        parts = rel.split("/")
        base = parts[-1]
        if base.startswith((fs.TMP_PREFIX, ".")):
            continue
        if len(parts) >= 2 and parts[-2] == sums.SUMS_DIR:
            if base.endswith(sums.SUFFIX):
                sidecars[sums.target_path(rel)] = rel
        elif base.endswith(SUFFIXES) and sums.SUMS_DIR not in parts:
            files[rel] = int(info.get("size") or 0)
    return files, sidecars


def _check(path: str, sidecar: str, listed_size: int) -> dict | None:
    """A mismatch record for the file at `path`, or None when it matches its sidecar."""
    try:
        expected = sums.read_sidecar(path)
        if expected is None:  # removed since the listing
            raise CurateError(f"{sidecar} is gone")
        if listed_size != expected["size"]:  # cut short or grown: no need to read it
            return {"path": path, "problem": f"{listed_size} bytes, expected {expected['size']}",
                    "expected_size": expected["size"], "size": listed_size, "algorithm": expected["algorithm"],
                    "expected_digest": expected["digest"], "digest": None}
        size, digest = sums.file_digest(path, expected["algorithm"])
    except (CurateError, OSError, ValueError) as exc:
        return {"path": path, "problem": f"cannot check: {exc}", "expected_size": None, "size": None,
                "algorithm": None, "expected_digest": None, "digest": None}
    problem = sums.mismatch(path, expected, size, digest)
    if problem is None:
        return None
    return {"path": path, "problem": problem.partition(": ")[2], "expected_size": expected["size"], "size": size,
            "algorithm": expected["algorithm"], "expected_digest": expected["digest"], "digest": digest}


def verify_run(run: str, threads: int = THREADS, stages: tuple[str, ...] = STAGES) -> Report:
    """Check every file with a sidecar in the run's stage folders; see the module's docstring."""
    if not fs.exists(run):
        raise CurateError(f"verify: run directory not found: {run}")
    report = Report(run)
    jobs: list[tuple[str, str, str, int]] = []  # (stage, path, sidecar, listed size)
    for stage in stages:
        folder = fs.join(run, stage)
        files, sidecars = _listing(folder)
        if not files and not sidecars:
            continue
        counts = report.stages.setdefault(stage, {"checked": 0, "bytes": 0, "mismatches": 0, "unverified": 0,
                                                  "orphans": 0})
        for rel, size in sorted(files.items()):
            if rel in sidecars:
                jobs.append((stage, fs.join(folder, rel), fs.join(folder, sidecars[rel]), size))
            else:
                report.unverified.append(fs.join(folder, rel))
                counts["unverified"] += 1
        for rel in sorted(set(sidecars) - set(files)):
            report.orphans.append(fs.join(folder, sidecars[rel]))
            counts["orphans"] += 1
    log.info("verify: %d files with sidecars in %s", len(jobs), run)
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="curate-verify") as pool:
        results = list(pool.map(lambda j: _check(j[1], j[2], j[3]), jobs))
    for (stage, _, _, size), bad in zip(jobs, results, strict=True):
        counts = report.stages[stage]
        counts["checked"] += 1
        counts["bytes"] += size
        report.checked += 1
        report.bytes += size
        if bad is not None:
            report.mismatches.append(bad)
            counts["mismatches"] += 1
    return report
