"""Policy steps, their registry, and policies (ordered steps plus a target size), loaded from YAML.

A step is a frozen dataclass whose fields are its thresholds. It may need pool-wide facts (a score
cut for a top fraction, per-entry counts for MetaCLIP, per-language counts for rebalancing): its
`resolve(pool)` asks them of a `PoolView` (the same questions on Spark and in-process) and returns a
copy with the resolved values filled in. After that, `evaluate(table)` is row-local: it returns, per
reason, the rows it rejects (and, for weighting steps, each row's repetition weight), so any batch of
the pool can be evaluated anywhere with the same result.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import pyarrow as pa

from curate.errors import CurateError
from curate.io.package import package_path

POLICY_DIR = package_path("select", "policies")


@dataclass(frozen=True)
class StepResult:
    rejects: list[tuple[str, np.ndarray]]  # (reason, boolean mask of rejected rows), in check order
    resolved: dict[str, Any]  # thresholds as applied (e.g. a top fraction turned into a score cut)
    weights: np.ndarray | None = None  # repetition weight per row (weighting steps only)


class PoolView(Protocol):
    """Pool-wide questions a step may ask while resolving; only rows still kept are counted."""

    def count(self) -> int: ...

    def kth(self, column: str, k: int) -> tuple[float, str]: ...

    def value_counts(self, column: str) -> dict[Any, int]: ...

    def smallest(self, key: str, n: int, columns: list[str]) -> pa.Table: ...


class Step(Protocol):
    name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]

    def evaluate(self, table: pa.Table) -> StepResult: ...


STEPS: dict[str, type] = {}


def register(cls: type) -> type:
    STEPS[cls.name] = cls
    return cls


def make_step(name: str, **params: Any) -> Step:
    if name not in STEPS:
        raise CurateError(f"unknown policy step {name!r} (known: {', '.join(sorted(STEPS))})")
    cls = STEPS[name]
    known = {f.name for f in fields(cls) if not f.name.startswith("_")}
    extra = set(params) - known
    if extra:
        raise CurateError(f"policy step {name!r} has no parameter(s) {sorted(extra)} (known: {sorted(known)})")
    try:
        return cls(**params)
    except TypeError as exc:
        raise CurateError(f"policy step {name!r}: {exc}") from exc


def needs_pool(step: Step) -> bool:
    """Whether the step must ask the pool something before it can evaluate rows."""
    return bool(getattr(step, "needs_pool", lambda: False)())


def resolve(step: Step, pool: PoolView) -> Step:
    fn = getattr(step, "resolve", None)
    return fn(pool) if fn is not None else step


def annotate(step: Step, table: pa.Table) -> pa.Table:
    """Row-local columns a step derives before it resolves (e.g. MetaCLIP's matched entries)."""
    fn = getattr(step, "annotate", None)
    return fn(table) if fn is not None else table


def annotates(step: Step) -> tuple[str, ...]:
    return tuple(getattr(step, "annotation_columns", ()))


def grouped(step: Step) -> bool:
    """Whether the resolved step decides rows per group of them (it has `group_key`, `annotate_group`)."""
    return bool(getattr(step, "grouped", lambda: False)())


def split_tables(resolved: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, pa.Table]]:
    """Resolved parameters without their tables (e.g. MetaCLIP's per-entry counts), and the tables by
    the file name that stands in their place (`<step>.<key>.parquet`), for select to write beside
    selection.json."""
    plain: dict[str, dict[str, Any]] = {}
    tables: dict[str, pa.Table] = {}
    for step, params in resolved.items():
        plain[step] = {}
        for key, value in params.items():
            if isinstance(value, pa.Table):
                tables[f"{step}.{key}.parquet"] = value
                value = f"{step}.{key}.parquet"
            plain[step][key] = value
    return plain, tables


def is_weighting(step: Step) -> bool:
    return bool(getattr(step, "weighting", False))


def can_target(step: Step) -> bool:
    """Whether the step ranks rows by a score, so a target size can choose its cut."""
    return hasattr(step, "with_target")


@dataclass(frozen=True)
class Policy:
    """A named, ordered list of steps; with a target size, the cut of `target_step` (by default the last
    ranking step) is chosen so exactly that many samples are kept."""

    name: str
    steps: tuple[Step, ...]
    target_size: int | None = None
    target_step: str | None = None
    seed: int = 0  # for hash-based choices (MetaCLIP sampling, target size without a ranking step)
    source: str = ""  # the file it came from

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "target_size": self.target_size,
                "target_step": self.target_step, "seed": self.seed,
                "steps": [{"name": s.name, "params": step_params(s)} for s in self.steps]}


def step_params(step: Step) -> dict[str, Any]:
    return {f.name: getattr(step, f.name) for f in fields(step) if not f.name.startswith("_")}


def policy_names() -> list[str]:
    return sorted(p.stem for p in POLICY_DIR.glob("*.yaml"))


def load_policy(name_or_path: str, target_size: int | None = None) -> Policy:
    """A shipped policy by name (e.g. `datacomp-1b`) or a YAML file; `target_size` overrides the file's."""
    import yaml

    from curate.select import steps  # noqa: F401  (registers every step)

    path = Path(name_or_path)
    if not path.is_file() and "/" not in name_or_path and (POLICY_DIR / f"{name_or_path}.yaml").is_file():
        path = POLICY_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise CurateError(f"no policy {name_or_path!r}: not a file, and not one of {', '.join(policy_names())}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CurateError(f"policy {path}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    return policy_from_dict(data, source=str(path), target_size=target_size)


def policy_from_dict(data: Any, source: str = "", target_size: int | None = None) -> Policy:
    from curate.select import steps  # noqa: F401  (registers every step)

    where = source or "policy"
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list) or not data["steps"]:
        raise CurateError(f"{where}: a policy is a mapping with a non-empty `steps` list")
    unknown = set(data) - {"name", "description", "steps", "target_size", "target_step", "seed"}
    if unknown:
        raise CurateError(f"{where}: unknown policy key(s) {sorted(unknown)}")
    built = []
    for i, item in enumerate(data["steps"]):
        if isinstance(item, str):
            item = {"step": item}
        if not isinstance(item, dict) or "step" not in item:
            raise CurateError(f"{where}: step {i + 1} needs a `step:` name")
        params = {k: v for k, v in item.items() if k != "step"}
        built.append(make_step(item["step"], **params))
    names = [s.name for s in built]
    if len(set(names)) != len(names):
        raise CurateError(f"{where}: a step appears twice ({names})")
    size = target_size if target_size is not None else data.get("target_size")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise CurateError(f"{where}: target_size must be a non-negative integer, got {size!r}")
    target_step = data.get("target_step")
    if target_step is not None and target_step not in names:
        raise CurateError(f"{where}: target_step {target_step!r} is not one of the steps {names}")
    if target_step is not None and not can_target(built[names.index(target_step)]):
        raise CurateError(f"{where}: step {target_step!r} does not rank samples, so it cannot meet a target size")
    return Policy(name=str(data.get("name", Path(source).stem if source else "policy")), steps=tuple(built),
                  target_size=size, target_step=target_step, seed=int(data.get("seed", 0)), source=source)


@dataclass(frozen=True)
class Decision:
    reason: np.ndarray  # object array: None where kept
    step: np.ndarray
    resolved: dict[str, dict[str, Any]]  # per step
    weight: np.ndarray | None = None


def apply(steps: list[Step], table: pa.Table) -> Decision:
    """Every step over an in-memory pool (the whole pool is the table): resolve, then evaluate, in order."""
    from curate.select.execute import ArrowPool

    n = table.num_rows
    reason = np.full(n, None, dtype=object)
    step = np.full(n, None, dtype=object)
    weight = np.ones(n)
    resolved = {}
    for s in steps:
        missing = [c for c in s.columns if c not in table.column_names]
        if missing:
            raise CurateError(f"policy step {s.name!r} needs columns {missing}")
        table = annotate(s, table)
        s = resolve(s, ArrowPool(table, reason == None))  # noqa: E711
        result = s.evaluate(table)
        resolved[s.name] = result.resolved
        if result.weights is not None:
            weight = weight * result.weights
        for why, mask in result.rejects:
            new = mask & (reason == None)  # noqa: E711  (elementwise on an object array)
            reason[new] = why
            step[new] = s.name
    return Decision(reason, step, resolved, np.where(reason == None, weight, 0.0))  # noqa: E711
