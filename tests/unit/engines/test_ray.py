"""RayEngine.map_stages on a real local Ray: stateless stages in tasks, model stages in actor pools."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curate.engines.base import StageSpec
from curate.engines.ray import RayEngine
from curate.errors import CurateError
from curate.stage import Stage

pytestmark = pytest.mark.ray


@dataclass(frozen=True)
class AddConfig:
    amount: int = 1
    fail_on: int = -1


class Double(Stage[AddConfig]):
    name = "double"
    stateless: ClassVar[bool] = True
    reads = ("x",)
    adds = ("y", "task_pid")

    def process_batch(self, table: pa.Table) -> pa.Table:
        return (table.append_column("y", pc.multiply(table.column("x"), 2))
                .append_column("task_pid", pa.array([os.getpid()] * table.num_rows)))


class AddOnce(Stage[AddConfig]):
    """Counts its set-ups: an actor must load once and serve every batch."""

    name = "add"
    reads = ("y",)
    adds = ("z", "setups", "actor_pid")

    def setup(self) -> None:
        self.setups = getattr(self, "setups", 0) + 1

    def process_batch(self, table: pa.Table) -> pa.Table:
        if self.config.fail_on in table.column("x").to_pylist():
            raise CurateError(f"add: refusing row {self.config.fail_on}\nsecond line")
        n = table.num_rows
        return (table.append_column("z", pc.add(table.column("y"), self.config.amount))
                .append_column("setups", pa.array([self.setups] * n))
                .append_column("actor_pid", pa.array([os.getpid()] * n)))


def _read(item: dict) -> pa.Table:
    return pa.table({"item": [item["i"]] * 5, "x": list(range(item["i"] * 5, item["i"] * 5 + 5))})


@pytest.fixture(scope="module")
def engine():
    with RayEngine(num_cpus=2) as e:
        yield e


def test_tasks_then_actor_pool_see_every_row_once(engine):
    specs = [StageSpec(Double, AddConfig(), batch_size=3), StageSpec(AddOnce, AddConfig(amount=10), batch_size=4)]
    out = pa.concat_tables(engine.map_stages([{"i": i} for i in range(6)], _read, specs)).sort_by("x")
    assert out.column("x").to_pylist() == list(range(30))
    assert out.column("z").to_pylist() == [2 * x + 10 for x in range(30)]
    assert set(out.column("setups").to_pylist()) == {1}
    assert len(set(out.column("actor_pid").to_pylist())) == 1  # one actor, loaded once


def test_a_stage_error_is_one_curate_error_line(engine):
    specs = [StageSpec(Double, AddConfig()), StageSpec(AddOnce, AddConfig(fail_on=7))]
    with pytest.raises(CurateError, match="^add: refusing row 7$"):
        list(engine.map_stages([{"i": i} for i in range(3)], _read, specs))


def test_no_items_no_work(engine):
    assert list(engine.map_stages([], _read, [StageSpec(Double, AddConfig())])) == []
