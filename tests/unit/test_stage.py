import pyarrow as pa
import pytest

from curate.errors import CurateError
from curate.stage import Stage, StageStats


class _DropOdd(Stage[int]):
    name = "drop_odd"
    reads = ("x",)
    adds = ("reason",)

    def process_batch(self, table):
        return table.append_column("reason", pa.array([None if v % self.config == 0 else "odd"
                                                       for v in table.column("x").to_pylist()], pa.string()))


def test_base_class_counts_reasons():
    stage = _DropOdd(2)
    stage(pa.table({"x": [1, 2, 3]}))
    stage(pa.table({"x": [4, 5]}))
    assert stage.stats.to_dict() == {"rows_in": 5, "kept": 2, "rejected": {"odd": 3}}


def test_missing_input_column_is_a_clear_error():
    with pytest.raises(CurateError, match="lacks columns"):
        _DropOdd(2)(pa.table({"y": [1]}))


def test_stats_merge():
    a, b = StageStats.from_table(pa.table({"reason": ["r", None]})), StageStats.from_table(pa.table({"z": [1]}))
    a.merge(b)
    assert a.to_dict() == {"rows_in": 3, "kept": 2, "rejected": {"r": 1}}
