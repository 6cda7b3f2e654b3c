"""The accounting identity over a run directory: every input row is in exactly one place — kept (in
the shard manifest) or rejected by exactly one stage with one reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from curate.download.status import SUCCESS
from curate.errors import CurateError
from curate.io import fs
from curate.io.stagedir import StageDir

STAGES = ("download", "dedup", "score", "select", "shard")


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


def _rejections(run: str) -> list[tuple[str, pa.Table]]:
    """(stage, table of uid and reason) for each stage's rejected rows."""
    samples = fs.read_table(fs.join(run, "download", "samples"), schema="samples")
    dl = samples.filter(pc.not_equal(samples.column("status"), SUCCESS))
    dedup = fs.read_table(fs.join(run, "dedup", "decisions"), schema="dedup")
    scores = fs.read_table(fs.join(run, "score", "scores"), schema="scores") \
        if fs.exists(fs.join(run, "score", "scores")) else None
    select = fs.read_table(fs.join(run, "select", "decisions.parquet"), schema="decisions")
    out = [("download", pa.table({"uid": dl.column("uid"), "reason": dl.column("status")})),
           ("dedup", dedup.filter(pc.is_valid(dedup.column("reason"))).select(["uid", "reason"]))]
    if scores is not None:
        bad = scores.filter(pc.not_equal(scores.column("status"), "ok"))
        out.append(("score", pa.table({"uid": bad.column("uid"), "reason": bad.column("status")})))
    out.append(("select", select.filter(pc.invert(select.column("kept"))).select(["uid", "reason"])))
    return out


def audit(run: str) -> Audit:
    missing = [s for s in STAGES if not StageDir(run, s).done()]
    if missing:
        raise CurateError(f"audit: {run} has unfinished stages: {', '.join(missing)}")
    result = Audit()
    inputs = fs.read_table(fs.join(run, "download", "urls"), schema="urls").column("uid").to_pylist()
    result.input_rows = len(inputs)
    place: Counter = Counter()
    remaining = len(inputs)
    for stage, rej in _rejections(run):
        reasons = Counter(rej.column("reason").to_pylist())
        result.stages[stage] = {"rows_in": remaining, "kept": remaining - rej.num_rows,
                                "rejected": dict(sorted(reasons.items()))}
        remaining -= rej.num_rows
        result.rejected.update(reasons)
        place.update(rej.column("uid").to_pylist())
    manifest = fs.read_table(fs.join(run, "shard", "manifest.parquet"), schema="manifest")
    # a materialised repetition plan writes a sample once per planned copy: it is kept once
    kept = sorted(set(manifest.column("uid").to_pylist()))
    dropped = _planned_out(run, set(kept))
    result.kept = len(kept)
    result.stages["shard"] = {"rows_in": remaining, "kept": len(kept),
                              "rejected": {"zero_repetitions": len(dropped)} if dropped else {}}
    result.rejected.update({"zero_repetitions": len(dropped)} if dropped else {})
    place.update(kept)
    place.update(dropped)
    _check(result, inputs, place)
    return result


def _planned_out(run: str, kept: set[str]) -> list[str]:
    """Selected samples that the repetition plan gave no copy (a samples-seen budget under the set's size).

    Only as many as shard says it planned out: any other selected sample missing from the manifest stays
    unaccounted for, and the identity check reports it.
    """
    select = fs.read_table(fs.join(run, "select", "decisions.parquet"), schema="decisions")
    chosen = select.filter(select.column("kept")).column("uid").to_pylist()
    missing = [u for u in chosen if u not in kept]
    planned_zero = fs.read_json(fs.join(run, "shard", "_stats.json")).get("planned_zero", 0)
    return missing if len(missing) == planned_zero else []


def _check(result: Audit, inputs: list[str], place: Counter) -> None:
    input_set = set(inputs)
    if len(input_set) != len(inputs):
        result.problems.append(f"{len(inputs) - len(input_set)} input uids repeat")
    twice = [u for u, n in place.items() if n > 1]
    if twice:
        result.problems.append(f"{len(twice)} uids are in more than one place (e.g. {twice[0]})")
    lost = input_set - set(place)
    if lost:
        result.problems.append(f"{len(lost)} input rows are neither kept nor rejected (e.g. {min(lost)})")
    extra = set(place) - input_set
    if extra:
        result.problems.append(f"{len(extra)} output uids are not in the input (e.g. {min(extra)})")
    total = result.kept + sum(result.rejected.values())
    if total != result.input_rows:
        result.problems.append(f"kept + rejected = {total}, but the input has {result.input_rows} rows")
