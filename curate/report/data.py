"""What the report shows, read from whatever a run directory holds. Each part is None when its inputs
are missing (an unfinished stage, a column an older run does not have): the page says so instead."""

from __future__ import annotations

import logging
import math
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from curate.io import fs
from curate.io.stagedir import StageDir

log = logging.getLogger(__name__)
STAGES = ("download", "dedup", "score", "select", "shard")
REPETITION_COLUMNS = ("repetition", "repetitions", "repeat", "repeats", "copies")


def _table(path: str) -> pa.Table | None:
    if path.endswith("manifest.parquet"):  # the manifest's parts (shard/manifest/), or an earlier single file
        from curate.audit import manifest_parts

        parts = manifest_parts(path.rsplit("/", 2)[0])
        return pa.concat_tables([fs.read_table(p) for p in parts]) if parts else None
    try:
        return fs.read_table(path) if fs.exists(path) else None
    except Exception as exc:  # a report never fails on one unreadable table
        log.warning("report: cannot read %s: %s", path, exc)
        return None


def _manifest(run: str) -> pa.Table | None:
    """The shard manifest with one row per kept sample: copy 0 of each (a materialised folder lists every
    copy; a streamed one lists each sample once, as copy 0)."""
    manifest = _table(fs.join(run, "shard", "manifest.parquet"))
    if manifest is not None and "copy" in manifest.column_names:
        manifest = manifest.filter(pc.equal(manifest.column("copy"), 0))
    return manifest


def funnel(run: str) -> dict:
    """The audit when every stage finished (its numbers, exactly), else each finished stage's _stats.json."""
    if all(StageDir(run, s).done() for s in STAGES):
        from curate.audit import audit
        from curate.errors import CurateError

        try:
            result = audit(run).to_dict()
            result["source"] = "audit"
            return result
        except CurateError as exc:  # an unreadable table: show what the stages recorded instead
            log.warning("report: audit failed (%s); the funnel comes from each stage's _stats.json", exc)
    stages = {}
    for s in STAGES:
        sd = StageDir(run, s)
        if sd.done():
            st = sd.stats()
            stages[s] = {"rows_in": st.get("rows_in", 0), "kept": st.get("kept", 0),
                         "rejected": dict(sorted((st.get("rejected") or {}).items()))}
    first = next(iter(stages.values()), {"rows_in": 0})
    rejected: Counter = Counter()
    for st in stages.values():
        rejected.update(st["rejected"])
    return {"source": "stage stats (the run is not finished)", "ok": None, "input_rows": first["rows_in"],
            "kept": stages.get("shard", {}).get("kept"), "rejected": dict(sorted(rejected.items())),
            "stages": stages, "problems": []}


def scores(run: str) -> pa.Table | None:
    return _table(fs.join(run, "score", "scores"))


def score_columns(table: pa.Table) -> list[str]:
    """Every floating-point score column (clip_similarity, language_score, and any a stage adds)."""
    return [f.name for f in table.schema if pa.types.is_floating(f.type)]


def thresholds(run: str) -> dict[str, list[tuple[str, float]]]:
    """Policy thresholds per score column, from select/selection.json: any step whose params name a
    `column` and a `threshold` (or min_/max_ values)."""
    path = fs.join(run, "select", "selection.json")
    if not fs.exists(path):
        return {}
    out: dict[str, list[tuple[str, float]]] = {}
    for step in fs.read_json(path).get("steps", []):
        params = step.get("resolved") or step.get("params") or {}  # selection.json v2 / v1
        column = params.get("column")
        if not column:
            continue
        for key in ("threshold", "min", "max", "min_value", "max_value"):
            value = params.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out.setdefault(column, []).append((f"{step.get('name', 'step')}", float(value)))
    return out


def languages(run: str, score_table: pa.Table | None) -> dict | None:
    """Language shares of the scored pool and of the kept set (after any rebalancing)."""
    if score_table is None or "language" not in score_table.column_names:
        return None
    ok = score_table.filter(pc.equal(score_table.column("status"), "ok")) \
        if "status" in score_table.column_names else score_table
    before = Counter(ok.column("language").to_pylist())
    manifest = _manifest(run)
    after: Counter | None = None
    if manifest is not None and "language" in manifest.column_names:
        after = Counter(manifest.column("language").to_pylist())
    else:
        decisions = _table(fs.join(run, "select", "decisions"))
        if decisions is not None:
            kept = set(decisions.filter(decisions.column("kept")).column("uid").to_pylist())
            after = Counter(lang for uid, lang in zip(ok.column("uid").to_pylist(),
                                                      ok.column("language").to_pylist(), strict=True) if uid in kept)
    return {"before": dict(before), "after": dict(after) if after is not None else None}


def duplicate_groups(run: str) -> dict[int, int] | None:
    """Group size → number of groups, for groups of two or more (survivor plus its duplicates)."""
    decisions = _table(fs.join(run, "dedup", "decisions"))
    if decisions is None or "duplicate_of" not in decisions.column_names:
        return None
    dups = decisions.filter(pc.is_valid(decisions.column("duplicate_of")))
    sizes = Counter(dups.column("duplicate_of").to_pylist())
    return dict(sorted(Counter(n + 1 for n in sizes.values()).items()))


def weights(run: str) -> list[float] | None:
    decisions = _table(fs.join(run, "select", "decisions"))
    if decisions is None or "weight" not in decisions.column_names:
        return None
    kept = decisions.filter(decisions.column("kept")) if "kept" in decisions.column_names else decisions
    return [float(w) for w in kept.column("weight").to_pylist() if w is not None]


def repetition(run: str) -> tuple[str, list[int]] | None:
    manifest = _manifest(run)
    if manifest is None:
        return None
    for name in REPETITION_COLUMNS:
        if name in manifest.column_names:
            return name, [int(v) for v in manifest.column(name).to_pylist() if v is not None]
    return None


def rejected_uids(run: str) -> dict[str, list[str]]:
    """Reason → uids rejected for it (sorted), over every finished stage."""
    out: dict[str, list[str]] = {}

    def add(uids: list, reasons: list) -> None:
        for uid, reason in zip(uids, reasons, strict=True):
            if reason:
                out.setdefault(reason, []).append(uid)

    samples = _table(fs.join(run, "download", "samples"))
    if samples is not None:
        bad = samples.filter(pc.not_equal(samples.column("status"), "success"))
        add(bad.column("uid").to_pylist(), bad.column("status").to_pylist())
    dedup = _table(fs.join(run, "dedup", "decisions"))
    if dedup is not None:
        add(dedup.column("uid").to_pylist(), dedup.column("reason").to_pylist())
    sc = scores(run)
    if sc is not None and "status" in sc.column_names:
        bad = sc.filter(pc.not_equal(sc.column("status"), "ok"))
        add(bad.column("uid").to_pylist(), bad.column("status").to_pylist())
    sel = _table(fs.join(run, "select", "decisions"))
    if sel is not None:
        bad = sel.filter(pc.invert(sel.column("kept")))
        add(bad.column("uid").to_pylist(), bad.column("reason").to_pylist())
    return {k: sorted(v) for k, v in sorted(out.items())}


def kept_uids(run: str) -> list[str] | None:
    manifest = _table(fs.join(run, "shard", "manifest.parquet"))
    if manifest is not None:
        return sorted(set(manifest.column("uid").to_pylist()))
    sel = _table(fs.join(run, "select", "decisions"))
    if sel is not None:
        return sorted(sel.filter(sel.column("kept")).column("uid").to_pylist())
    return None


def samples_index(run: str) -> dict[str, dict]:
    """uid → url, caption, status, shard, key (from download/samples) for the image grids."""
    samples = _table(fs.join(run, "download", "samples"))
    if samples is None:
        return {}
    cols = [c for c in ("uid", "url", "caption", "status", "error", "shard", "key") if c in samples.column_names]
    return {row["uid"]: row for row in samples.select(cols).to_pylist()}
