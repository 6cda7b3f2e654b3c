"""Policy steps and their registry. A step looks at the whole pool table and returns, per reason, the
rows it rejects; a policy is an ordered list of steps, and a row's reason is the first that fails it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Protocol

import numpy as np
import pyarrow as pa

from curate.errors import CurateError


@dataclass(frozen=True)
class StepResult:
    rejects: list[tuple[str, np.ndarray]]  # (reason, boolean mask of rejected rows), in check order
    resolved: dict[str, Any]  # thresholds as applied (e.g. a top fraction turned into a score cut)


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
    known = {f.name for f in fields(cls)}
    extra = set(params) - known
    if extra:
        raise CurateError(f"policy step {name!r} has no parameter(s) {sorted(extra)} (known: {sorted(known)})")
    return cls(**params)


@dataclass(frozen=True)
class Decision:
    reason: np.ndarray  # object array: None where kept
    step: np.ndarray
    resolved: dict[str, dict[str, Any]]  # per step


def apply(steps: list[Step], table: pa.Table) -> Decision:
    n = table.num_rows
    reason = np.full(n, None, dtype=object)
    step = np.full(n, None, dtype=object)
    resolved = {}
    for s in steps:
        missing = [c for c in s.columns if c not in table.column_names]
        if missing:
            raise CurateError(f"policy step {s.name!r} needs columns {missing}")
        result = s.evaluate(table)
        resolved[s.name] = result.resolved
        for why, mask in result.rejects:
            new = mask & (reason == None)  # noqa: E711  (elementwise on an object array)
            reason[new] = why
            step[new] = s.name
    return Decision(reason, step, resolved)
