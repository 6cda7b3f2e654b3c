import threading

import pytest

from curate.engines.local import LocalEngine


def _where(item: int) -> tuple[int, str]:
    return item * 2, threading.current_thread().name


def test_threads_keep_the_item_order_and_run_off_the_calling_thread():
    out = LocalEngine(threads=3).run_tasks(_where, range(50))
    assert [r for r, _ in out] == [2 * i for i in range(50)]
    assert all(name.startswith("curate-task") for _, name in out)
    assert LocalEngine().run_tasks(_where, [1]) == [(2, threading.current_thread().name)]


def _fail_on_7(item: int) -> int:
    if item == 7:
        raise RuntimeError("task 7 failed")
    return item


def test_a_failing_task_fails_the_call_and_bad_thread_counts_are_refused():
    with pytest.raises(RuntimeError, match="task 7"):
        LocalEngine(threads=2).run_tasks(_fail_on_7, range(10))
    with pytest.raises(ValueError):
        LocalEngine(threads=0)
