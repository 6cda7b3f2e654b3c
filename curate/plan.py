"""`curate plan`: capacity planning. Wall time and node-hours per stage for a stated cluster shape,
from per-unit rates in a data file (`curate/assets/plan_rates.json`, each rate citing its benchmark or
stating its assumption). Every number that is not measured is printed under "assumptions"."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from curate.errors import CurateError

# through importlib.resources, so the rates load from a wheel or zip on sys.path (`--py-files`) as well
RATES = resources.files("curate") / "assets" / "plan_rates.json"
STAGES = ("download", "dedup", "score", "select", "shard")


@dataclass(frozen=True)
class ClusterShape:
    nodes: int = 16
    cores_per_node: int = 64
    gpus_per_node: int = 8
    gpu_kind: str = "a100"


@dataclass(frozen=True)
class PlanInput:
    pool_size: float = 12.8e9  # DataComp's CommonPool xlarge
    target_size: float = 1.4e9  # DataComp-1B's size
    download_success: float = 0.9  # assumption: share of URLs still alive and decodable
    dedup_keep: float = 0.95  # assumption: share surviving URL + image dedup
    efficiency: float = 0.7  # assumption: share of ideal parallel throughput reached (stragglers, I/O)
    shape: ClusterShape = field(default_factory=ClusterShape)


@dataclass(frozen=True)
class StagePlan:
    stage: str
    rows: float
    unit: str
    units: int
    rate_per_unit: float
    rate_kind: str
    wall_hours: float
    node_hours: float


def load_rates(path: str | Path | None = None, overrides: dict[str, float] | None = None) -> dict:
    source: Path | Traversable = Path(path) if path else RATES
    try:
        rates = json.loads(source.read_text())
    except FileNotFoundError as exc:
        raise CurateError(f"plan: rates file not found: {source}") from exc
    except json.JSONDecodeError as exc:
        raise CurateError(f"plan: {source} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    for key, value in (overrides or {}).items():
        if key not in rates or key.startswith("_") or key == "gpu_speedup":
            valid = ", ".join(k for k in rates if not k.startswith("_") and k != "gpu_speedup")
            raise CurateError(f"plan: --rate {key}: unknown stage; valid: {valid}")
        rates[key] = {k: v for k, v in rates[key].items() if k != "parts"}
        rates[key].update({"rows_per_s": value, "kind": "given", "source": "--rate on the command line"})
    for key in list(rates):
        if isinstance(rates[key], dict) and "parts" in rates[key]:
            rates[key] = _combined(rates, key, source)
    for key in ("download", "dedup", "score_cpu", "score_gpu", "select", "shard"):
        if not isinstance(rates.get(key), dict) or not rates[key].get("rows_per_s", 0) > 0:
            raise CurateError(f"plan: {source} has no positive rows_per_s for {key!r}")
    return rates


def _combined(rates: dict, key: str, source) -> dict:
    """A stage made of steps that each pass over its rows (`parts`): per unit, the rows go through them one
    after the other, so the stage's rate is 1 / sum(1 / rate of each step)."""
    entry = rates[key]
    parts = [rates.get(p) for p in entry["parts"]]
    if any(not isinstance(p, dict) or not p.get("rows_per_s", 0) > 0 for p in parts):
        raise CurateError(f"plan: {source}: {key!r} is made of {entry['parts']}, which need positive rows_per_s")
    kinds = {p.get("kind", "?") for p in parts}
    return {**entry, "rows_per_s": 1 / sum(1 / float(p["rows_per_s"]) for p in parts),
            "kind": kinds.pop() if len(kinds) == 1 else "partly " + "/".join(sorted(kinds)),
            "source": "; ".join(f"{name} {float(p['rows_per_s']):,.1f}/s ({p.get('source', 'no source')})"
                                for name, p in zip(entry["parts"], parts, strict=True))}


def plan(inp: PlanInput, rates: dict) -> list[StagePlan]:
    shape = inp.shape
    if min(inp.pool_size, inp.target_size) <= 0 or not 0 < inp.efficiency <= 1:
        raise CurateError("plan: sizes must be positive and efficiency in (0, 1]")
    if shape.nodes < 1 or shape.cores_per_node < 1 or shape.gpus_per_node < 0:
        raise CurateError("plan: nodes and cores per node must be at least 1, GPUs per node at least 0")
    downloaded = inp.pool_size * inp.download_success
    unique = downloaded * inp.dedup_keep
    rows = {"download": inp.pool_size, "dedup": downloaded, "score": unique, "select": unique,
            "shard": min(inp.target_size, unique)}
    out = []
    for stage in STAGES:
        key = stage
        if stage == "score":
            key = "score_gpu" if shape.gpus_per_node > 0 else "score_cpu"
        r = rates[key]
        rate = float(r["rows_per_s"])
        if key == "score_gpu":
            speedups = rates.get("gpu_speedup", {})
            if shape.gpu_kind not in speedups:
                kinds = ", ".join(k for k in speedups if not k.startswith("_"))
                raise CurateError(f"plan: unknown --gpu-kind {shape.gpu_kind!r}; known: {kinds}")
            rate *= float(speedups[shape.gpu_kind])
        unit = r["unit"]
        units = {"core": shape.nodes * shape.cores_per_node, "gpu": shape.nodes * shape.gpus_per_node,
                 "process": 1}[unit]
        nodes_busy = 1 if unit == "process" else shape.nodes
        wall = rows[stage] / (rate * units * inp.efficiency) / 3600
        out.append(StagePlan(stage, rows[stage], unit, units, rate, r.get("kind", "?"), wall, wall * nodes_busy))
    return out


def assumptions(inp: PlanInput, rates: dict, stages: list[StagePlan]) -> list[str]:
    s = inp.shape
    lines = [f"cluster: {s.nodes} nodes × {s.cores_per_node} cores"
             + (f" × {s.gpus_per_node} {s.gpu_kind.upper()} GPUs" if s.gpus_per_node else " (no GPUs)"),
             f"pool {inp.pool_size:,.0f} rows; download success {inp.download_success:.0%} (assumption); "
             f"dedup keeps {inp.dedup_keep:.0%} (assumption); target {inp.target_size:,.0f} rows",
             f"parallel efficiency {inp.efficiency:.0%} (assumption: stragglers, retries, storage)"]
    for p in stages:
        key = p.stage if p.stage != "score" else ("score_gpu" if p.unit == "gpu" else "score_cpu")
        r = rates[key]
        lines.append(f"{p.stage}: {r['rows_per_s']:,.1f} rows/s per {r['unit']} ({r.get('kind', '?')}; "
                     f"{r.get('source', 'no source')})" + (f"; {r['note']}" if r.get("note") else ""))
        if key == "score_gpu":
            lines.append(f"score: ×{rates['gpu_speedup'][s.gpu_kind]} for {s.gpu_kind} relative to A100 "
                         "(assumption)")
    return lines


def format_plan(stages: list[StagePlan], notes: list[str]) -> str:
    lines = ["| stage | rows | runs on | rows/s per unit | wall time | node-hours |", "|---|---:|---|---:|---:|---:|"]
    for p in stages:
        lines.append(f"| {p.stage} | {p.rows:,.0f} | {p.units:,} {p.unit}{'s' if p.units != 1 else ''} | "
                     f"{p.rate_per_unit:,.1f} ({p.rate_kind}) | {_hours(p.wall_hours)} | {p.node_hours:,.1f} |")
    total_wall = sum(p.wall_hours for p in stages)
    total_nh = sum(p.node_hours for p in stages)
    lines.append(f"| **total** | | | | **{_hours(total_wall)}** | **{total_nh:,.1f}** |")
    lines += ["", "Assumptions:"] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def _hours(h: float) -> str:
    if h < 1 / 60:
        return f"{h * 3600:.0f} s"
    if h < 1:
        return f"{h * 60:.0f} min"
    if h < 48:
        return f"{h:.1f} h"
    return f"{h / 24:.1f} days"


def _rate(text: str) -> tuple[str, float]:
    stage, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not sep or number <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not STAGE=ROWS_PER_SECOND with a positive number")
    return stage, number


def add_arguments(p: argparse.ArgumentParser) -> None:
    d, s = PlanInput(), ClusterShape()
    p.add_argument("--pool-size", type=float, default=d.pool_size, help="input rows (default 12.8e9)")
    p.add_argument("--target-size", type=float, default=d.target_size, help="rows to keep (default 1.4e9)")
    p.add_argument("--nodes", type=int, default=s.nodes, help=f"nodes (default {s.nodes})")
    p.add_argument("--cores-per-node", type=int, default=s.cores_per_node, help="CPU cores per node")
    p.add_argument("--gpus-per-node", type=int, default=s.gpus_per_node, help="GPUs per node (0: score on CPU)")
    p.add_argument("--gpu-kind", default=s.gpu_kind, help="a100, h100, h200, l4, a10g, v100")
    p.add_argument("--download-success", type=float, default=d.download_success, help="share of URLs that download")
    p.add_argument("--dedup-keep", type=float, default=d.dedup_keep, help="share of rows dedup keeps")
    p.add_argument("--efficiency", type=float, default=d.efficiency, help="share of ideal parallel throughput")
    p.add_argument("--rates", default=None, help="rates JSON (default: curate/assets/plan_rates.json)")
    p.add_argument("--rate", type=_rate, action="append", default=[], metavar="STAGE=ROWS_PER_S",
                   help="override one rate, e.g. score_gpu=3500 (repeatable)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def plan_text(args: argparse.Namespace) -> str:
    """The output of `curate plan` for parsed arguments: a markdown table and assumptions, or JSON."""
    shape = ClusterShape(args.nodes, args.cores_per_node, args.gpus_per_node, args.gpu_kind.lower())
    inp = PlanInput(args.pool_size, args.target_size, args.download_success, args.dedup_keep, args.efficiency, shape)
    rates = load_rates(args.rates, dict(args.rate))
    stages = plan(inp, rates)
    notes = assumptions(inp, rates, stages)
    if args.json:
        return json.dumps({"input": asdict(inp), "stages": [asdict(p) for p in stages],
                           "total_wall_hours": sum(p.wall_hours for p in stages),
                           "total_node_hours": sum(p.node_hours for p in stages), "assumptions": notes},
                          indent=2, sort_keys=True)
    return format_plan(stages, notes)
