"""The report's table work, one part at a time (engine-free: `curate.report.data` has an engine run these).

Each function reads one part, or one download shard's part of every table up to select (they share the
part's name), with only the columns it needs, and returns a small dict: counts per reason, language,
repetition or histogram bin; the [min, max] of each value column; the FIRST smallest uids of each kind
(with the part that holds the uid, so the page's examples are read from a few parts later). `combine`
merges two such dicts: counts add, ranges widen, uid lists keep their FIRST smallest. What a task returns,
and what the driver holds, is bounded by the number of reasons, languages, repetition values and bins,
never by rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.io import dataset

FIRST = 24  # uids kept per list: the page shows the first 24 kept samples and the first 8 per reason
SAMPLES_OK, SCORE_OK = "success", "ok"


@dataclass(frozen=True)
class Plan:
    """What every task measures, decided on the driver from the tables' schemas (first part's footer)."""

    score_columns: tuple[str, ...] = ()  # float columns of score/scores
    kept_from_select: tuple[str, ...] = ()  # score columns whose kept values come from select (no manifest column)
    languages: bool = False  # score/scores has a language column
    languages_from_select: bool = False  # the kept set's languages from select/decisions (no manifest language)
    weights: bool = False  # select/decisions has a weight column
    repetition: str | None = None  # the manifest's repetition column
    edges: dict[str, tuple[float, ...]] = field(default_factory=dict)  # bin edges per histogram (second pass)


def combine(a: dict, b: dict, in_range: bool = False) -> dict:
    """Two partial results as one: numbers add, dicts merge key by key, [lo, hi] under a "range" key
    widen, and lists of (uid, part) keep their FIRST smallest."""
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict):
            out[key] = combine(out[key], value, in_range or key == "range")
        elif in_range:
            out[key] = [min(out[key][0], value[0]), max(out[key][1], value[1])]
        elif isinstance(value, list):
            out[key] = sorted(out[key] + value)[:FIRST]
        else:
            out[key] = out[key] + value
    return out


def _read(path: str | None, columns: Sequence[str]) -> pa.Table | None:
    return None if path is None else dataset.read_part(path, list(columns), only_present=True)


def _counts(column: pa.ChunkedArray | pa.Array) -> dict:
    """Rows per value (None for null)."""
    return {r["values"]: r["counts"] for r in pc.value_counts(column).to_pylist()}


def _values(table: pa.Table, column: str) -> np.ndarray:
    """The column's numbers as float64, without nulls and NaN (what the histograms count)."""
    if column not in table.column_names:
        return np.empty(0)
    a = np.asarray(table.column(column).to_numpy(zero_copy_only=False), dtype=float)
    return a[~np.isnan(a)]


def _range(values: np.ndarray) -> list | None:
    return None if values.size == 0 else [float(values.min()), float(values.max())]


def _first(uids: pa.ChunkedArray | pa.Array, part: str | None) -> list:
    """The FIRST smallest uids, each with the download part that holds its sample row."""
    return [[u, part] for u in pc.take(uids, pc.sort_indices(uids)[:FIRST]).to_pylist()]


def _reasons(out: dict, table: pa.Table, reason: str, part: str) -> None:
    """Add `table`'s rejected rows to `out`: rows per reason (empty reasons are no rejection) and the first
    uids of each."""
    for r in pc.value_counts(table.column(reason)).to_pylist():
        if not r["values"]:
            continue
        out["rejected"][r["values"]] = out["rejected"].get(r["values"], 0) + r["counts"]
        rows = table.filter(pc.equal(table.column(reason), r["values"])).column("uid")
        out["first"]["rejected"][r["values"]] = sorted(out["first"]["rejected"].get(r["values"], [])
                                                       + _first(rows, part))[:FIRST]


def shard_summary(plan: Plan, item: dict) -> dict:
    """First pass over one download shard: rejections per reason (and the first uids of each), the selected
    rows (count and first uids), languages, and the range of every value a histogram shows."""
    part = item["name"]
    out: dict = {"rejected": {}, "first": {"rejected": {}}, "range": {}}
    samples = _read(item.get("samples"), ["uid", "status"])
    if samples is not None:
        _reasons(out, samples.filter(pc.not_equal(samples.column("status"), SAMPLES_OK)), "status", part)
    dedup = _read(item.get("dedup"), ["uid", "reason"])
    if dedup is not None and "reason" in dedup.column_names:
        _reasons(out, dedup, "reason", part)
    scores = _read(item.get("score"), ["uid", "status", "language", *plan.score_columns])
    if scores is not None and "status" in scores.column_names:
        _reasons(out, scores.filter(pc.not_equal(scores.column("status"), SCORE_OK)), "status", part)
    select = _read(item.get("select"), ["uid", "kept", "reason", "weight"])
    kept = None
    if select is not None:
        _reasons(out, select.filter(pc.invert(select.column("kept"))), "reason", part)
        kept = select.filter(select.column("kept"))
        out["selected"] = kept.num_rows
        out["first"]["selected"] = _first(kept.column("uid"), part)
        if plan.weights:
            out["range"]["weights"] = _range(_values(kept, "weight"))
    if scores is not None:
        out["scored"] = scores.num_rows
        for col in plan.score_columns:
            out["range"][f"score:{col}"] = _range(_values(scores, col))
        if plan.languages:
            ok = scores.filter(pc.equal(scores.column("status"), SCORE_OK)) if "status" in scores.column_names \
                else scores
            out["languages"] = {"before": _counts(ok.column("language"))}
            if plan.languages_from_select and kept is not None:
                out["languages"]["after"] = _counts(_kept_rows(ok, kept).column("language"))
    return _drop_empty(out)


def _kept_rows(scores: pa.Table, kept: pa.Table | None) -> pa.Table:
    """The rows of `scores` whose uid select kept (none without a select part)."""
    if kept is None:
        return scores.slice(0, 0)
    return scores.filter(pc.is_in(scores.column("uid"), value_set=kept.column("uid").combine_chunks()))


def manifest_summary(plan: Plan, path: str) -> dict:
    """First pass over one manifest part, one row per kept sample (copy 0): the kept count and first uids
    (with the download part of each), languages, repetition values, and the range of each kept value."""
    columns = ["uid", "copy", "source_shard", "language", *([plan.repetition] if plan.repetition else []),
               *plan.score_columns]
    table = _copy0(dataset.read_part(path, columns, only_present=True))
    out: dict = {"kept": table.num_rows, "range": {}}
    source = table.column("source_shard").to_pylist() if "source_shard" in table.column_names else None
    order = pc.sort_indices(table.column("uid"))[:FIRST].to_pylist()
    out["first"] = {"kept": [[table.column("uid")[i].as_py(), _source_part(source[i]) if source else None]
                             for i in order]}
    if "language" in table.column_names:
        out["languages"] = {"after": _counts(table.column("language"))}
    if plan.repetition and plan.repetition in table.column_names:
        reps = table.column(plan.repetition).drop_null()
        out["repetition"] = {int(k): n for k, n in _counts(reps).items()}
    for col in plan.score_columns:
        if col not in plan.kept_from_select:
            out["range"][f"kept:{col}"] = _range(_values(table, col))
    return _drop_empty(out)


def _copy0(table: pa.Table) -> pa.Table:
    """One row per kept sample: copy 0 (a materialised manifest lists every copy, a streamed one copy 0)."""
    return table.filter(pc.equal(table.column("copy"), 0)) if "copy" in table.column_names else table


def _source_part(shard: str | None) -> str | None:
    """The download part named after the tar a sample's bytes came from ("00003.tar" → "00003.parquet")."""
    return None if not shard else dataset.shard_part_name(shard.rsplit("/", 1)[-1])


def _drop_empty(out: dict) -> dict:
    """Without empty dicts and missing ranges (nothing to merge)."""
    cleaned = {k: (_drop_empty(v) if isinstance(v, dict) else v) for k, v in out.items()}
    return {k: v for k, v in cleaned.items() if v is not None and v != {}}


def _bins(values: np.ndarray, edges: tuple[float, ...]) -> dict:
    """Counts per bin (bin index → rows), only the bins that have rows."""
    counts = np.histogram(values, bins=np.asarray(edges, dtype=float))[0]
    return {int(i): int(counts[i]) for i in np.flatnonzero(counts)}


def shard_histograms(plan: Plan, item: dict) -> dict:
    """Second pass over one download shard: counts per bin of each score column (all scored rows, and the
    kept ones where select decides them) and of the kept rows' weights, with the edges the first pass fixed."""
    out: dict = {}
    scores = _read(item.get("score"), ["uid", *plan.score_columns]) if plan.score_columns else None
    select = _read(item.get("select"), ["uid", "kept", "weight"]) if (plan.weights or plan.kept_from_select) \
        else None
    kept = select.filter(select.column("kept")) if select is not None and "kept" in select.column_names else select
    if scores is not None:
        kept_scores = _kept_rows(scores, kept) if plan.kept_from_select else None
        for col in plan.score_columns:
            if f"score:{col}" not in plan.edges:
                continue
            hist = {"all scored": _bins(_values(scores, col), plan.edges[f"score:{col}"])}
            if kept_scores is not None and col in plan.kept_from_select:
                hist["kept"] = _bins(_values(kept_scores, col), plan.edges[f"score:{col}"])
            out[f"score:{col}"] = hist
    if plan.weights and kept is not None and "weights" in plan.edges:
        out["weights"] = {"weight": _bins(_values(kept, "weight"), plan.edges["weights"])}
    return _drop_empty(out)


def manifest_histograms(plan: Plan, path: str) -> dict:
    """Second pass over one manifest part: counts per bin of the kept samples' score columns."""
    columns = [c for c in plan.score_columns if c not in plan.kept_from_select and f"score:{c}" in plan.edges]
    if not columns:
        return {}
    table = _copy0(dataset.read_part(path, ["uid", "copy", *columns], only_present=True))
    return _drop_empty({f"score:{c}": {"kept": _bins(_values(table, c), plan.edges[f"score:{c}"])}
                        for c in columns})
