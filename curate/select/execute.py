"""Run a policy over a pool frame on any engine: the same code in-process (LocalEngine) and on Spark.

The frame carries the decision state: `_reason`, `_step` (null while kept), `_order` (the index, in the
policy, of the step that decided) and `_weight`. Steps are applied in passes (one `map_batches` each);
a step that needs pool-wide facts first flushes the pending steps, then asks them through `EnginePool`.
Order: the rejection steps in policy order, except the target-size step, which goes after them (its cut
is chosen among the rows every other step kept), then the weighting steps. A row's reason is that of the
first step in *policy* order that rejects it, whatever order the steps ran in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from curate.engines.base import StageSpec
from curate.errors import CurateError
from curate.select import policy as P
from curate.stage import Stage

log = logging.getLogger(__name__)

STATE = (pa.field("_reason", pa.string()), pa.field("_step", pa.string()), pa.field("_order", pa.int32()),
         pa.field("_weight", pa.float64()))
BATCH = 65_536


class EnginePool:
    """PoolView over an engine frame: `kept_only` counts rows whose `_reason` is still null."""

    def __init__(self, engine: Any, frame: Any, state: bool = True) -> None:
        self.engine, self.frame, self.state = engine, frame, state  # no state columns: every row is kept

    def _where(self, kept_only: bool) -> str | None:
        return "_reason" if kept_only and self.state else None

    def count(self, kept_only: bool = True) -> int:
        return self.engine.count_where(self.frame, self._where(kept_only))

    def kth(self, column: str, k: int, kept_only: bool = True) -> tuple[float, str]:
        return self.engine.kth_largest(self.frame, column, k, self._where(kept_only))

    def value_counts(self, column: str, kept_only: bool = True) -> dict:
        return self.engine.value_counts(self.frame, column, self._where(kept_only))

    def smallest(self, key: str, n: int, columns: list[str], kept_only: bool = True) -> pa.Table:
        return self.engine.smallest_rows(self.frame, key, n, columns, self._where(kept_only))


def ArrowPool(table: pa.Table, kept: np.ndarray) -> EnginePool:  # noqa: N802  (a constructor)
    from curate.engines.local import LocalEngine

    reason = pa.array(np.where(kept, None, "x").tolist(), pa.string())
    return EnginePool(LocalEngine(), table.append_column("_reason", reason))


@dataclass(frozen=True)
class PassConfig:
    steps: tuple[tuple[int, Any], ...] = ()  # (policy index, resolved step) to evaluate, in this order
    annotate: Any = None  # a step whose annotation columns to add after evaluating
    init: bool = False  # add the state columns first


class PolicyPass(Stage[PassConfig]):
    name = "select_pass"

    def process_batch(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        if cfg.init:
            n = table.num_rows
            table = (table.append_column(STATE[0], pa.nulls(n, pa.string()))
                     .append_column(STATE[1], pa.nulls(n, pa.string()))
                     .append_column(STATE[2], pa.array(np.full(n, 2**31 - 1, dtype=np.int32)))
                     .append_column(STATE[3], pa.array(np.ones(n))))
        if cfg.steps:
            table = apply_steps(table, cfg.steps)
        if cfg.annotate is not None:
            table = P.annotate(cfg.annotate, table)
        return table

    def __call__(self, table: pa.Table) -> pa.Table:  # the state columns are not a stage `reason`
        return self.process_batch(table)


def apply_steps(table: pa.Table, steps: tuple[tuple[int, Any], ...]) -> pa.Table:
    reason = np.array(table.column("_reason").to_pylist(), dtype=object)
    step = np.array(table.column("_step").to_pylist(), dtype=object)
    order = np.asarray(table.column("_order").to_numpy(zero_copy_only=False), dtype=np.int32).copy()
    weight = np.asarray(table.column("_weight").to_numpy(zero_copy_only=False), dtype=np.float64).copy()
    for idx, s in steps:
        result = s.evaluate(table)
        if result.weights is not None:
            weight *= result.weights
        for why, mask in result.rejects:
            new = np.asarray(mask, dtype=bool) & (order > idx)
            reason[new], step[new], order[new] = why, s.name, idx
    names = ["_reason", "_step", "_order", "_weight"]
    arrays = [pa.array(reason.tolist(), pa.string()), pa.array(step.tolist(), pa.string()),
              pa.array(order, pa.int32()), pa.array(weight, pa.float64())]
    for name, arr in zip(names, arrays, strict=True):
        table = table.set_column(table.column_names.index(name), STATE[names.index(name)], arr)
    return table


def required_columns(step: Any) -> tuple[str, ...]:
    return tuple(getattr(step, "needed", step.columns))


def plan(policy: P.Policy) -> tuple[list[tuple[int, Any]], dict]:
    """(policy index, step) in the order they run, with the target-size step swapped in."""
    from curate.select.rebalance import TargetSample

    steps = list(policy.steps)
    reject = [i for i, s in enumerate(steps) if not P.is_weighting(s)]
    weighting = [i for i, s in enumerate(steps) if P.is_weighting(s)]
    info: dict = {}
    if policy.target_size is None:
        return [(i, steps[i]) for i in reject + weighting], info
    names = [s.name for s in steps]
    if policy.target_step is not None:
        target = names.index(policy.target_step)
    else:
        ranking = [i for i in reject if P.can_target(steps[i])]
        target = ranking[-1] if ranking else None
    if target is None:  # no ranking step: a seeded sample of the kept rows, decided after everything else
        sample = TargetSample(size=policy.target_size, seed=policy.seed)
        info["target_step"] = sample.name
        return [(i, steps[i]) for i in reject] + [(len(steps), sample)] + [(i, steps[i]) for i in weighting], info
    info["target_step"] = names[target]
    ordered = [(i, steps[i]) for i in reject if i != target]
    return ordered + [(target, steps[target].with_target(policy.target_size))] + \
        [(i, steps[i]) for i in weighting], info


def select_frame(engine: Any, frame: Any, policy: P.Policy,
                 keep_columns: tuple[str, ...] = ()) -> tuple[Any, dict[str, dict]]:
    """Decide every row of `frame`: the frame (uid, the columns the steps read, `keep_columns`, and the
    state columns) and each step's resolved parameters. Python passes are as few as the policy allows:
    one, plus one per step that must count the rows earlier steps kept (or adds annotation columns)."""
    schema = _schema(engine, frame)
    order, _ = plan(policy)
    needed = {"uid", *keep_columns}
    for _, s in order:
        missing = [c for c in required_columns(s) if c not in schema.names]
        if missing:
            raise CurateError(f"policy step {s.name!r} needs columns {missing}")
        needed.update(required_columns(s))
    schema = pa.schema([f for f in schema if f.name in needed])
    frame = raw = engine.select_columns(frame, schema.names)
    schema = _extend(schema, STATE)
    pending: list[tuple[int, Any]] = []
    resolved: dict[str, dict] = {}
    initialized = False
    for idx, s in order:
        annotated = P.annotates(s)
        if annotated or (P.needs_pool(s) and (pending or initialized)):
            if annotated:
                schema = _extend(schema, s.annotation_schema)
            config = PassConfig(tuple(pending), s if annotated else None, init=not initialized)
            frame = engine.materialize(_pass(engine, frame, config, schema))
            pending, initialized = [], True
        # nothing decided yet: pool-wide questions go to the input columns, without a Python pass
        s = P.resolve(s, EnginePool(engine, frame) if initialized else EnginePool(engine, raw, state=False))
        if P.grouped(s):  # decided within groups of rows (SemDeDup: per cluster): a pass, then a group-by
            frame, schema = _grouped(engine, frame, s, schema, PassConfig(tuple(pending), s, init=not initialized))
            pending, initialized = [], True
        pending.append((idx, s))
        resolved[s.name] = s.report() if hasattr(s, "report") else P.step_params(s)
    frame = _pass(engine, frame, PassConfig(tuple(pending), init=not initialized), schema)
    return frame, resolved


def widen_halves(table: pa.Table) -> pa.Table:
    """float16 lists (the score stage's embeddings) as float32: Spark has no half float; exact either way."""
    for i, f in enumerate(table.schema):
        if pa.types.is_list(f.type) and f.type.value_type == pa.float16():
            table = table.set_column(i, pa.field(f.name, pa.list_(pa.float32())),
                                     table.column(i).cast(pa.list_(pa.float32())))
    return table


def _schema(engine: Any, frame: Any) -> pa.Schema:
    if isinstance(frame, pa.Table):
        return frame.schema
    if hasattr(engine, "schema_of"):
        return engine.schema_of(frame)
    return engine.to_arrow(frame.limit(0)).schema


def _extend(schema: pa.Schema, extra: tuple[pa.Field, ...]) -> pa.Schema:
    for f in extra:
        if f.name not in schema.names:
            schema = schema.append(f)
    return schema


def _grouped(engine: Any, frame: Any, step: Any, schema: pa.Schema, config: PassConfig) -> tuple[Any, pa.Schema]:
    """The step's row-local annotation (e.g. the nearest centroid), then its per-group one (duplicates)."""
    from curate.select.groups import map_groups

    schema = _extend(schema, step.annotation_schema)
    frame = engine.materialize(_pass(engine, frame, config, schema))
    schema = _extend(schema, step.group_schema)
    return engine.materialize(map_groups(engine, frame, step.group_key, step.annotate_group, schema)), schema


def _pass(engine: Any, frame: Any, config: PassConfig, schema: pa.Schema) -> Any:
    return engine.map_batches(frame, StageSpec(PolicyPass, config, batch_size=BATCH), schema)
