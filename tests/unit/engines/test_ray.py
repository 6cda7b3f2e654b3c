"""RayEngine.map_stages and map_shards on a real local Ray: stateless stages in tasks, model stages in actor
pools; map_shards from storage to storage, with the driver seeing counts only."""

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


def _read_shard(item: dict) -> pa.Table:
    """Shard i holds i rows (shard 0 none), x = 10 i + j."""
    n = item["i"]
    return pa.table({"shard": [f"s{item['i']}"] * n, "x": [10 * item["i"] + j for j in range(n)],
                     "expected": [n] * n})


class _Pieces:
    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __call__(self, batch: pa.Table) -> pa.Table:
        from curate.io import dataset, fs

        out = []
        for shard in pc.unique(batch.column("shard")).to_pylist():
            rows = batch.filter(pc.equal(batch.column("shard"), shard))
            first = min(rows.column("x").to_pylist())
            dataset.write_part(rows.select(["x", "z"]), fs.join(self.folder, shard, f"{first:05d}.parquet"))
            out.append({"shard": shard, "rows": rows.num_rows, "expected": rows.column("expected")[0].as_py()})
        return pa.Table.from_pylist(out)


class _Commit:
    def __init__(self, folder: str, fail: str | None = None) -> None:
        self.folder, self.fail = folder, fail

    def __call__(self, item: dict) -> dict:
        from curate.io import dataset, fs

        if item["shard"] == self.fail:
            raise CurateError(f"commit: cannot write {item['shard']}\nsecond line")
        rows = pa.concat_tables(dataset.read_part(p) for p in dataset.part_paths(fs.join(self.folder, item["shard"])))
        fs.write_json(fs.join(self.folder, item["shard"] + ".json"), sorted(rows.column("z").to_pylist()))
        return {"shards": 1, "rows": rows.num_rows, "by_shard": {item["shard"]: item["expected"]}}


def test_map_shards_commits_each_shard_once_with_all_its_rows(engine, tmp_path):
    import json

    specs = [StageSpec(Double, AddConfig(), batch_size=3), StageSpec(AddOnce, AddConfig(amount=1), batch_size=4)]
    items = [{"i": i} for i in range(6)]
    stats = engine.map_shards(items, _read_shard, specs, _Pieces(str(tmp_path)), _Commit(str(tmp_path)))
    # shards 1..5 hold 1+2+3+4+5 rows; shard 0 holds none and is never committed
    assert stats == {"shards": 5, "rows": 15, "by_shard": {f"s{i}": i for i in range(1, 6)}}
    for i in range(1, 6):
        assert json.loads((tmp_path / f"s{i}.json").read_text()) == [2 * (10 * i + j) + 1 for j in range(i)]
    assert not (tmp_path / "s0.json").exists()


def test_map_shards_a_failed_commit_is_one_curate_error_line(engine, tmp_path):
    specs = [StageSpec(Double, AddConfig()), StageSpec(AddOnce, AddConfig())]
    with pytest.raises(CurateError, match="^commit: cannot write s2$"):
        engine.map_shards([{"i": i} for i in range(4)], _read_shard, specs, _Pieces(str(tmp_path)),
                          _Commit(str(tmp_path), fail="s2"))
    assert engine.map_shards([], _read_shard, specs, _Pieces(str(tmp_path)), _Commit(str(tmp_path))) == {}


def _read_or_fail(item: dict) -> pa.Table:
    if item["i"] == 2:
        raise OSError(5, "Input/output error", item["tar"])
    return _read(item)


def test_a_failed_read_or_task_names_its_input(engine):
    items = [{"i": i, "tar": f"/run/download/shards/{i:05d}.tar"} for i in range(3)]
    with pytest.raises(CurateError, match=r"^/run/download/shards/00002\.tar: Input/output error: "
                                          r"/run/download/shards/00002\.tar$"):
        list(engine.map_stages(items, _read_or_fail, [StageSpec(Double, AddConfig())]))
    with pytest.raises(CurateError, match=r"^/run/download/shards/00002\.tar: Input/output error"):
        engine.run_tasks(_read_or_fail, items, max_retries=0)
