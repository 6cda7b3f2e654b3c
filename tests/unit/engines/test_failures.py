"""A task that fails in a Spark or Ray worker reaches the driver as one CurateError naming its input (a part,
a shard's tar, a uid) and the cause (curate.errors.Named); the CLI prints an engine exception that escaped
an action as that one line too (curate.cli.engine_error)."""

from __future__ import annotations

import errno

import pyarrow as pa
import pytest

from curate.errors import CurateError, Named, input_name, named


def _boom(item):
    if item.get("fail"):
        raise ValueError(f"bad header at byte {item['at']}\nsecond line")
    return {"done": 1}


def _full(item):
    raise OSError(errno.ENOSPC, "No space left on device", item["path"] + ".tmp")


@pytest.mark.parametrize("item, name", [
    ({"tar": "/r/download/shards/00003.tar", "shard": "00003.tar"}, "/r/download/shards/00003.tar"),
    ({"path": "/r/dedup/hashes/00007.parquet"}, "/r/dedup/hashes/00007.parquet"),
    ({"uid": "ab" * 16}, "ab" * 16),
    ("s3://b/run/select/part-00001.parquet", "s3://b/run/select/part-00001.parquet"),
    ([{"tar": "/a.tar"}, {"tar": "/b.tar"}], "/a.tar (and 1 more)"),
])
def test_input_name(item, name):
    assert input_name(item) == name


def test_named_says_stage_input_and_cause_on_one_line():
    with pytest.raises(CurateError, match=r"^dedup: /r/x\.tar: ValueError: bad header at byte 9$"):
        Named(_boom, "dedup")({"tar": "/r/x.tar", "fail": True, "at": 9})
    with pytest.raises(CurateError, match=r"^/r/p\.parquet: No space left on device: /r/p\.parquet\.tmp$"):
        Named(_full)({"path": "/r/p.parquet"})
    ours = CurateError("dedup: cannot read /r/x.tar: unexpected end of data")
    with pytest.raises(CurateError) as got:
        Named(lambda item: (_ for _ in ()).throw(ours), "dedup")({"tar": "/r/x.tar"})
    assert got.value is ours  # a CurateError already names its input: as it is
    assert named(named(_boom)).fn is _boom


@pytest.mark.spark
def test_a_failed_spark_task_names_its_input(spark_engine):
    items = [{"tar": f"/run/download/shards/{i:05d}.tar", "fail": i == 3, "at": 512} for i in range(4)]
    with pytest.raises(CurateError) as got:
        spark_engine.for_each(_boom, items)
    assert str(got.value) == "/run/download/shards/00003.tar: ValueError: bad header at byte 512"
    with pytest.raises(CurateError, match=r"^/run/download/shards/00003\.tar: ValueError"):
        spark_engine.run_tasks(_boom, items)


def _read(item: dict) -> pa.Table:
    if item["path"].endswith("00002.parquet"):
        raise OSError(errno.EIO, "Input/output error", item["path"])
    return pa.table({"x": [1, 2]})


@pytest.mark.spark
def test_a_failed_spark_read_names_its_part_also_from_a_plain_action(spark_engine):
    """A read in the executors fails in an action the engine does not wrap (count): the CLI's handler turns
    Spark's Py4JJavaError into the one line."""
    from curate.cli import engine_error

    frame = spark_engine.read_items([{"path": f"/run/p/{i:05d}.parquet"} for i in range(3)], _read,
                                    pa.schema([("x", pa.int64())]), tasks=3)
    with pytest.raises(Exception) as got:
        spark_engine.count_where(frame)
    assert "Traceback" in str(got.value) or "Error" in str(got.value)
    line = engine_error(got.value)
    assert str(line) == "/run/p/00002.parquet: Input/output error: /run/p/00002.parquet"
    assert engine_error(KeyError("x")) is None


# Ray Data's text of a failed UDF when the chain of exceptions is lost (ray 2.x, as a score on a full disk
# printed it): the storage error without a file, the one curate.io.fs.naming raised from it, Ray's wrapper.
RAY_TEXT = """\x1b[36mray::MapBatches(PieceWriter)()\x1b[39m (pid=17775, ip=192.0.2.2)
  File "/work/main/curate/io/fs.py", line 118, in _atomic_open
    with fs.open(tmp, mode) as fh:
OSError: [Errno 28] No space left on device

The above exception was the direct cause of the following exception:

\x1b[36mray::MapBatches(PieceWriter)()\x1b[39m (pid=17775, ip=192.0.2.2)
  File "/work/main/curate/io/fs.py", line 89, in naming
    raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), path) from exc
OSError: [Errno 28] No space left on device: '/r/score/_pieces/00004/000040.parquet'

The above exception was the direct cause of the following exception:

\x1b[36mray::MapBatches(PieceWriter)()\x1b[39m (pid=17775, ip=192.0.2.2)
ray.exceptions.UserCodeException: UDF failed to process a data block.
"""


def test_a_ray_stage_error_is_the_one_the_stage_raised_not_its_cause():
    ray = pytest.importorskip("curate.engines.ray")

    line = str(ray.user_error(RuntimeError(RAY_TEXT)))
    assert line == ("a Ray stage failed: OSError: [Errno 28] No space left on device: "
                    "'/r/score/_pieces/00004/000040.parquet'")
