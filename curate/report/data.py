"""What the report shows, computed by an engine from whatever a run directory holds.

The driver lists each table's parts once, reads one footer per table for its columns, and has the engine
run `curate.report.parts` over the parts: a first pass (per download shard, and per manifest part) counts
rejections per reason, languages, repetitions and kept rows, and finds the range of every histogram's
values and the first uids of each kind; a second pass counts each histogram's values in bins whose edges
the first pass fixed. Duplicate groups cross shards, so they are a group-by on the engine. The driver holds
those counts (bounded by reasons, languages, repetition values, group sizes and bins), the lists of part
names, and a bounded set of example rows (`parts.FIRST` per kind), never one entry per row.

Each result is None when its inputs are missing (an unfinished stage, a column an older run does not
have): the page says so instead.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace

import pyarrow as pa

from curate.io import dataset, fs
from curate.io.stagedir import StageDir
from curate.report import parts
from curate.report.svg import edges as bin_edges

log = logging.getLogger(__name__)
STAGES = ("download", "dedup", "score", "select", "shard")
REPETITION_COLUMNS = ("repetition", "repetitions", "repeat", "repeats", "copies")
TABLES = {"samples": ("download", "samples"), "dedup": ("dedup", "decisions"), "score": ("score", "scores"),
          "select": ("select", "decisions")}
MAX_TASKS = 20_000  # parts are grouped so that a pass has at most about this many tasks


def _once(method: Callable) -> Callable:
    """Compute a result once per report (an exception too: every section that needs it says why)."""

    @functools.wraps(method)
    def wrapper(self):
        name = method.__name__
        if name not in self._memo:
            try:
                self._memo[name] = (True, method(self))
            except Exception as exc:
                self._memo[name] = (False, exc)
        ok, value = self._memo[name]
        if not ok:
            raise value
        return value

    return wrapper


def fold(engine, fn: Callable[[dict | str], dict], items: Sequence) -> dict:
    """`fn(item)` for every item on `engine`, the results merged by `parts.combine` (in the tasks, then
    pairwise on the executors: the driver receives one merged dict)."""
    if engine.name == "spark":
        from curate.engines.spark_report import fold_each

        return fold_each(engine, fn, items, parts.combine, _per_task(items))
    return functools.reduce(parts.combine, (fn(item) for item in items), {})


def _per_task(items: Sequence) -> int:
    return max(1, len(items) // MAX_TASKS + 1)


def funnel(run: str, engine=None) -> dict:
    """The audit when every stage finished (its numbers, exactly), else each finished stage's _stats.json."""
    if all(StageDir(run, s).done() for s in STAGES):
        from curate.audit import audit
        from curate.errors import CurateError

        try:
            result = audit(run, engine).to_dict()
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


class ReportData:
    """The report's numbers for `run`, computed on `engine` (default: this process, one part at a time)."""

    def __init__(self, run: str, engine=None) -> None:
        if engine is None:
            from curate.engines.local import LocalEngine

            engine = LocalEngine()
        self.run, self.engine = run, engine
        self._memo: dict[str, tuple[bool, object]] = {}

    # what the run holds: one listing per table, one footer per table
    @_once
    def listing(self) -> dict[str, dict[str, str]]:
        """Part name → path, per table up to select (a table without parts is absent)."""
        out = {}
        for table, (stage, folder) in TABLES.items():
            path = fs.join(self.run, stage, folder)
            names = dataset.list_parts(path)
            if names:
                out[table] = {name: fs.join(path, name) for name in names}
        return out

    @_once
    def manifest(self) -> list[str]:
        from curate.audit import manifest_parts

        return manifest_parts(self.run)

    @_once
    def schemas(self) -> dict[str, pa.Schema]:
        """Each present table's schema (its first part's footer), the manifest's as "manifest"."""
        first = {t: next(iter(p.values())) for t, p in self.listing().items()}
        if self.manifest():
            first["manifest"] = self.manifest()[0]
        return {t: fs.read_schema(path) for t, path in first.items()}

    def _columns(self, table: str) -> list[str]:
        schema = self.schemas().get(table)
        return [] if schema is None else schema.names

    def items(self) -> list[dict]:
        """One descriptor per download shard: the path of its part of each table (None where it has none)."""
        listing = self.listing()
        names = sorted({n for p in listing.values() for n in p})
        return [{"name": n, **{t: listing.get(t, {}).get(n) for t in TABLES}} for n in names]

    @_once
    def plan(self) -> parts.Plan:
        schemas, manifest = self.schemas(), self._columns("manifest")
        score = schemas.get("score")
        score_columns = tuple(f.name for f in score if pa.types.is_floating(f.type)) if score is not None else ()
        has_select = "select" in schemas
        if self.manifest():
            from_select = tuple(c for c in score_columns if c not in manifest) if has_select else ()
        else:
            from_select = score_columns if has_select else ()
        languages = "language" in self._columns("score")
        return parts.Plan(
            score_columns=score_columns, kept_from_select=from_select, languages=languages,
            languages_from_select=languages and has_select and not (self.manifest() and "language" in manifest),
            weights="weight" in self._columns("select"),
            repetition=next((c for c in REPETITION_COLUMNS if c in manifest), None))

    # the two passes
    @_once
    def summary(self) -> dict:
        """The first pass: per download shard, then per manifest part (under "manifest")."""
        plan = self.plan()
        out = fold(self.engine, functools.partial(parts.shard_summary, plan), self.items())
        if self.manifest():
            out["manifest"] = fold(self.engine, functools.partial(parts.manifest_summary, plan), self.manifest())
        return out

    def _range(self, key: str) -> list[float] | None:
        summary = self.summary()
        found = [r for r in (summary.get("range", {}).get(key),
                             summary.get("manifest", {}).get("range", {}).get(key.replace("score:", "kept:")))
                 if r is not None]
        return [min(r[0] for r in found), max(r[1] for r in found)] if found else None

    @_once
    def edges(self) -> dict[str, tuple[float, ...]]:
        """Bin edges per histogram, from the values' range and the policy's thresholds."""
        plan, thr = self.plan(), thresholds(self.run)
        out = {}
        for col in plan.score_columns:
            r = self._range(f"score:{col}")
            if r is not None:
                out[f"score:{col}"] = tuple(bin_edges(r[0], r[1], thr.get(col, [])).tolist())
        r = self._range("weights") if plan.weights else None
        if r is not None:
            out["weights"] = tuple(bin_edges(r[0], r[1]).tolist())
        return out

    @_once
    def histograms(self) -> dict:
        """The second pass: histogram key → series → bin → rows (engine.for_each: counts add)."""
        plan = replace(self.plan(), edges=self.edges())
        if not plan.edges:
            return {}
        per_task = _per_task(self.items())
        out = self.engine.for_each(functools.partial(parts.shard_histograms, plan), self.items(), per_task)
        if self.manifest():
            kept = self.engine.for_each(functools.partial(parts.manifest_histograms, plan), self.manifest(),
                                        _per_task(self.manifest()))
            out = parts.combine(out, kept)
        return out

    # what the sections show
    def kept_count(self) -> int | None:
        """Kept samples: the manifest's (one per sample), else the rows select kept; None before either."""
        if self.manifest():
            return self.summary().get("manifest", {}).get("kept", 0)
        return self.summary().get("selected", 0) if "select" in self.listing() else None

    def scores(self) -> list[tuple[str, dict[str, list[int]], tuple[float, ...]]] | None:
        """(column, series → counts per bin, edges) per score column; None without score output."""
        if "score" not in self.listing():
            return None
        hist, edges, kept = self.histograms(), self.edges(), bool(self.kept_count())
        out = []
        for col in self.plan().score_columns:
            key = f"score:{col}"
            e = edges.get(key, (0.0, 1.0))
            series = {name: _dense(hist.get(key, {}).get(name, {}), len(e) - 1)
                      for name in ("all scored", "kept") if name == "all scored" or kept}
            out.append((col, series, e))
        return out

    def languages(self) -> dict | None:
        """Language shares of the scored pool (status ok) and of the kept set (after any rebalancing)."""
        plan = self.plan()
        if not plan.languages:
            return None
        summary = self.summary()
        before = summary.get("languages", {}).get("before", {})
        if self.manifest() and "language" in self._columns("manifest"):
            after = summary.get("manifest", {}).get("languages", {}).get("after", {})
        elif plan.languages_from_select:
            after = summary.get("languages", {}).get("after", {})
        else:
            after = None
        return {"before": before, "after": after}

    def weights(self) -> tuple[dict[str, list[int]], tuple[float, ...]] | None:
        if not self.plan().weights:
            return None
        e = self.edges().get("weights", (0.0, 1.0))
        return {"weight": _dense(self.histograms().get("weights", {}).get("weight", {}), len(e) - 1)}, e

    @_once
    def duplicate_groups(self) -> dict[int, int] | None:
        """Group size → number of groups, for groups of two or more (survivor plus its duplicates)."""
        if "duplicate_of" not in self._columns("dedup"):
            return None
        paths = list(self.listing()["dedup"].values())
        if self.engine.name == "spark":
            from curate.engines.spark_report import group_sizes
        else:
            group_sizes = _local_group_sizes
        return dict(sorted(group_sizes(self.engine, paths, "duplicate_of").items()))

    def repetition(self) -> tuple[str, dict[int, int]] | None:
        name = self.plan().repetition
        if not self.manifest() or name is None:
            return None
        return name, self.summary().get("manifest", {}).get("repetition", {})

    def kept(self) -> tuple[int, list[list]] | None:
        """(kept samples, the first `parts.FIRST` by uid with their download part); None before selection."""
        n = self.kept_count()
        if n is None:
            return None
        first = self.summary().get("manifest", {}) if self.manifest() else self.summary()
        return n, first.get("first", {}).get("kept" if self.manifest() else "selected", [])

    def rejected(self) -> dict[str, tuple[int, list[list]]]:
        """Reason → (rows rejected for it over every stage, the first uids by uid with their part)."""
        summary = self.summary()
        firsts = summary.get("first", {}).get("rejected", {})
        return {r: (n, firsts.get(r, [])) for r, n in sorted(summary.get("rejected", {}).items())}

    def examples(self, wanted: Sequence[list]) -> tuple[dict[str, dict], dict[str, str]]:
        """The download rows and thumbnails of a bounded list of (uid, part), read by one task."""
        from curate.report.images import load_examples

        by_part: dict[str, list[str]] = {}
        samples = self.listing().get("samples", {})
        for uid, part in wanted:
            if part in samples:
                by_part.setdefault(samples[part], []).append(uid)
        if not by_part:
            return {}, {}
        got = self.engine.run_tasks(load_examples, [{"run": self.run, "parts": by_part}])[0]
        return got["rows"], got["thumbs"]


def _dense(bins: dict[int, int], n: int) -> list[int]:
    out = [0] * n
    for i, c in bins.items():
        out[int(i)] += c
    return out


def _local_group_sizes(engine, paths: list[str], column: str) -> dict[int, int]:
    """`group_sizes` in this process: rows per non-null value of `column`, then groups per size (+1, the
    survivor). The local engine is for small runs; Spark's version is two group-bys on the executors."""
    counts: Counter = Counter()
    for path in paths:
        col = dataset.read_part(path, [column]).column(column).drop_null()
        counts.update(engine.value_counts(pa.table({column: col}), column))
    return dict(Counter(n + 1 for n in counts.values()))
