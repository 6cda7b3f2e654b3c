"""The accounting identity over a run directory: every input row is in exactly one place — kept (in
the shard manifest) or rejected by exactly one stage with one reason.

The check runs on an engine, from storage. Every table up to select is one part per download shard, and an
input row's places before the shard stage all lie in its own shard's parts, so one task per download shard
checks them (`shard_places`) and returns counts; two engine joins cover what crosses shards: input uids
repeated in different shards, and the selected uids against the manifest's (anti-joins both ways).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from curate.download.status import SUCCESS
from curate.errors import CurateError
from curate.io import dataset, fs
from curate.io.stagedir import StageDir

STAGES = ("download", "dedup", "score", "select", "shard")
BEFORE_SHARD = STAGES[:-1]


@dataclass
class Audit:
    input_rows: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    stages: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {"ok": self.ok, "input_rows": self.input_rows, "kept": self.kept,
                "rejected": dict(sorted(self.rejected.items())), "stages": self.stages,
                "problems": self.problems}


def manifest_parts(run: str) -> list[str]:
    """The manifest's parts: `shard/manifest/` (one part per output shard or task), or the single file an
    earlier curate wrote."""
    parts = dataset.part_paths(fs.join(run, "shard", "manifest"))
    single = fs.join(run, "shard", "manifest.parquet")
    return parts or ([single] if fs.exists(single) else [])


def items(run: str) -> list[dict]:
    """One descriptor per download shard: its part of every table up to select (one listing of urls/)."""
    out = []
    for name in dataset.list_parts(fs.join(run, "download", "urls")):
        out.append({"urls": fs.join(run, "download", "urls", name),
                    "samples": fs.join(run, "download", "samples", name),
                    "dedup": fs.join(run, "dedup", "decisions", name),
                    "score": fs.join(run, "score", "scores", name),
                    "select": fs.join(run, "select", "decisions", name)})
    return out


def _read(path: str, columns: list[str]) -> pa.Table | None:
    return dataset.read_part(path, columns) if fs.exists(path) else None


def shard_places(item: dict) -> dict:
    """Counts for one download shard: its inputs, rejections per stage and reason, selected rows, and rows
    placed twice, not placed, or placed without being an input (with one example uid of each)."""
    inputs = dataset.read_part(item["urls"], ["uid"]).column("uid")
    places: list[tuple[str, pa.Table]] = []
    samples = _read(item["samples"], ["uid", "status"])
    if samples is not None:
        bad = samples.filter(pc.not_equal(samples.column("status"), SUCCESS))
        places.append(("download", pa.table({"uid": bad.column("uid"), "reason": bad.column("status")})))
    dedup = _read(item["dedup"], ["uid", "reason"])
    if dedup is not None:
        places.append(("dedup", dedup.filter(pc.is_valid(dedup.column("reason")))))
    scores = _read(item["score"], ["uid", "status"])
    if scores is not None:
        bad = scores.filter(pc.not_equal(scores.column("status"), "ok"))
        places.append(("score", pa.table({"uid": bad.column("uid"), "reason": bad.column("status")})))
    select = _read(item["select"], ["uid", "kept", "reason"])
    selected = pa.array([], pa.string())
    if select is not None:
        places.append(("select", select.filter(pc.invert(select.column("kept"))).select(["uid", "reason"])))
        selected = select.filter(select.column("kept")).column("uid").combine_chunks()
    out: dict = {"inputs": len(inputs), "selected": len(selected), "rejected": {}}
    for stage, table in places:
        out["rejected"][stage] = {r["values"]: r["counts"] for r in pc.value_counts(table.column("reason")).to_pylist()}
    placed = pa.concat_arrays([t.column("uid").combine_chunks() for _, t in places] + [selected])
    counts = pc.value_counts(placed)
    uids, n = counts.field("values"), counts.field("counts")
    twice = uids.filter(pc.greater(n, 1))
    lost = pc.filter(inputs, pc.invert(pc.is_in(inputs, value_set=uids)))
    extra = pc.filter(uids, pc.invert(pc.is_in(uids, value_set=inputs.combine_chunks())))
    for name, found in (("twice", twice), ("lost", lost), ("extra", extra)):
        if len(found):
            out[name] = len(found)
            out[f"{name}_example"] = {pc.min(found).as_py(): 1}
    return out


def check_finished(run: str) -> None:
    """One line naming the stages of `run` that have not finished, if any."""
    missing = [s for s in STAGES if not StageDir(run, s).done()]
    if missing:
        raise CurateError(f"audit: {run} has unfinished stages: {', '.join(missing)}")


def audit(run: str, engine=None) -> Audit:
    """The audit of a finished run on `engine` (default: this process, which reads one shard at a time)."""
    check_finished(run)
    if engine is None:
        from curate.engines.local import LocalEngine

        engine = LocalEngine()
    shards = items(run)
    got = engine.for_each(shard_places, shards, max(1, len(shards) // 20_000 + 1))
    cross = _cross(engine, run)
    result = Audit(input_rows=got.get("inputs", 0))
    remaining = result.input_rows
    for stage in BEFORE_SHARD:
        reasons = dict(sorted(got.get("rejected", {}).get(stage, {}).items()))
        n = sum(reasons.values())
        result.stages[stage] = {"rows_in": remaining, "kept": remaining - n, "rejected": reasons}
        remaining -= n
        result.rejected.update(reasons)
    planned_zero = fs.read_json(fs.join(run, "shard", "_stats.json")).get("planned_zero", 0)
    # selected samples the repetition plan gave no copy are rejected with a reason, but only as many as the
    # shard stage says it planned out: any other selected sample missing from the manifest stays unplaced
    dropped = cross["selected_not_kept"] if cross["selected_not_kept"] == planned_zero else 0
    result.kept = cross["kept"]
    result.stages["shard"] = {"rows_in": remaining, "kept": result.kept,
                              "rejected": {"zero_repetitions": dropped} if dropped else {}}
    result.rejected.update({"zero_repetitions": dropped} if dropped else {})
    _problems(result, got, cross, dropped)
    return result


def _cross(engine, run: str) -> dict:
    """What crosses shards: kept (distinct manifest uids), selected uids not kept, manifest uids not
    selected, and input uids repeated in other shards, with an example of each."""
    if engine.name == "spark":
        from curate.engines.spark_audit import cross_checks

        return cross_checks(engine, run, manifest_parts(run))
    urls = fs.read_table(fs.join(run, "download", "urls"), columns=["uid"]).column("uid")
    select = fs.read_table(fs.join(run, "select", "decisions"), columns=["uid", "kept"])
    selected = select.filter(select.column("kept")).column("uid")
    parts = manifest_parts(run)
    kept = pc.unique(pa.concat_arrays([dataset.read_part(p, ["uid"]).column("uid").combine_chunks() for p in parts])
                     if parts else pa.array([], pa.string()))
    not_kept = pc.filter(selected, pc.invert(pc.is_in(selected, value_set=kept)))
    not_selected = pc.filter(kept, pc.invert(pc.is_in(kept, value_set=selected.combine_chunks())))
    counts = pc.value_counts(urls)
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    return {"kept": len(kept), "selected_not_kept": len(not_kept), "not_selected": len(not_selected),
            "not_selected_example": pc.min(not_selected).as_py() if len(not_selected) else None,
            "not_kept_example": pc.min(not_kept).as_py() if len(not_kept) else None,
            "input_repeats": int(pc.sum(pc.subtract(counts.field("counts"), 1)).as_py() or 0),
            "repeat_example": pc.min(repeated).as_py() if len(repeated) else None}


def _problems(result: Audit, got: dict, cross: dict, dropped: int) -> None:
    def example(name: str) -> str:
        found = sorted(got.get(f"{name}_example", {}))
        return found[0] if found else "?"

    repeats = cross["input_repeats"]
    if repeats:
        result.problems.append(f"{repeats} input uids repeat (e.g. {cross['repeat_example']})")
    if got.get("twice"):
        result.problems.append(f"{got['twice']} uids are in more than one place (e.g. {example('twice')})")
    lost = got.get("lost", 0) + (cross["selected_not_kept"] - dropped)
    if lost:
        eg = example("lost") if got.get("lost") else cross["not_kept_example"]
        result.problems.append(f"{lost} input rows are neither kept nor rejected (e.g. {eg})")
    extra = got.get("extra", 0) + cross["not_selected"]
    if extra:
        eg = example("extra") if got.get("extra") else cross["not_selected_example"]
        result.problems.append(f"{extra} output uids are not in the input (e.g. {eg})")
    total = result.kept + sum(result.rejected.values())
    if total != result.input_rows:
        result.problems.append(f"kept + rejected = {total}, but the input has {result.input_rows} rows")
