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


def test_a_batch_that_fails_names_the_stage_and_its_first_uid():
    """What a Spark or Ray worker's failure becomes (one line, the cause chained for -v)."""
    with pytest.raises(CurateError, match=r"^stage drop_odd: a batch of 2 rows from uid u7: ZeroDivisionError: "
                                          r"integer modulo by zero$") as got:
        _DropOdd(0)(pa.table({"x": [1, 2], "uid": ["u7", "u8"]}))
    assert isinstance(got.value.__cause__, ZeroDivisionError)
    with pytest.raises(CurateError, match=r"^stage drop_odd: a batch of 1 rows: ZeroDivisionError"):
        _DropOdd(0)(pa.table({"x": [1]}))


def test_stats_merge():
    a, b = StageStats.from_table(pa.table({"reason": ["r", None]})), StageStats.from_table(pa.table({"z": [1]}))
    a.merge(b)
    assert a.to_dict() == {"rows_in": 3, "kept": 2, "rejected": {"r": 1}}
