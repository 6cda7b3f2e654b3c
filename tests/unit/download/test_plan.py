"""Download planning: the input cut into shards of consecutive rows with their uids, one part per shard,
the same bytes from the in-process plan, Spark and Ray; uids derived exactly as `derive_uids` would."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.download.config import DownloadConfig
from curate.download.inputs import derive_uids
from curate.download.plan import plan_urls
from curate.engines.local import LocalEngine
from curate.errors import CurateError


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.suffix == ".parquet"}


def _input(tmp_path: Path) -> tuple[DownloadConfig, list[tuple[str, str | None]]]:
    """Three files of a folder (7, 0 and 6 rows), with a pair repeated across files and null captions."""
    a, b, c = "http://h/a.jpg", "http://h/b.jpg", "http://h/c.jpg"
    rows = [(a, "x"), (b, None), (a, "x"), (c, ""), (b, None), (a, "y"), (c, "z"),  # file a.parquet
            (a, "x"), (b, "x"), (c, ""), (b, None), (a, "y"), (a, "x")]  # file c.parquet, after an empty one
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"url": [r[0] for r in rows[:7]], "caption": [r[1] for r in rows[:7]]}),
                   folder / "a.parquet")
    pq.write_table(pa.table({"url": pa.array([], pa.string()), "caption": pa.array([], pa.string())}),
                   folder / "b.parquet")
    pq.write_table(pa.table({"url": [r[0] for r in rows[7:]], "caption": [r[1] for r in rows[7:]]}),
                   folder / "c.parquet")
    (folder / "_SUCCESS").write_bytes(b"")  # markers are not input
    return DownloadConfig(input=str(folder), shard_size=4), rows


def test_in_process_plan_shards_consecutive_rows_with_derived_uids(tmp_path):
    config, rows = _input(tmp_path)
    plan = plan_urls(LocalEngine(), config, str(tmp_path / "urls"))
    assert (plan.rows, plan.shards) == (13, 4)
    got = pq.read_table(tmp_path / "urls")
    assert list(zip(got.column("url").to_pylist(), got.column("caption").to_pylist(), strict=True)) == rows
    assert got.column("uid").to_pylist() == derive_uids([r[0] for r in rows], [r[1] for r in rows])
    assert [pq.read_metadata(tmp_path / "urls" / f"{s:05d}.parquet").num_rows for s in range(4)] == [4, 4, 4, 1]
    # the hand-computed uid of the second (url, caption) repeat: suffix \x00 1
    repeat = [i for i, r in enumerate(rows) if r == rows[0]][1]
    text = f"{rows[0][0]}\x00{rows[0][1] or ''}\x001"
    assert got.column("uid")[repeat].as_py() == hashlib.sha256(text.encode()).hexdigest()[:32]
    done = json.loads((tmp_path / "urls" / "_plan.json").read_text())
    assert done["rows"] == 13 and [f[0] for f in done["fingerprint"]["files"]] == [
        "a.parquet", "b.parquet", "c.parquet"]


def test_a_finished_plan_is_reused_and_another_input_refused(tmp_path):
    config, _ = _input(tmp_path)
    plan_urls(LocalEngine(), config, str(tmp_path / "urls"))
    before = _digest(tmp_path / "urls")
    assert plan_urls(LocalEngine(), config, str(tmp_path / "urls")).rows == 13
    assert _digest(tmp_path / "urls") == before
    with pytest.raises(CurateError, match="another input"):
        plan_urls(LocalEngine(), DownloadConfig(input=config.input, shard_size=5), str(tmp_path / "urls"))


@pytest.mark.spark
def test_spark_plan_writes_the_in_process_bytes(spark_engine, tmp_path):
    config, _ = _input(tmp_path)
    plan_urls(LocalEngine(), config, str(tmp_path / "local"))
    plan = plan_urls(spark_engine, config, str(tmp_path / "spark"))
    assert (plan.rows, plan.shards) == (13, 4)
    assert _digest(tmp_path / "spark") == _digest(tmp_path / "local")


@pytest.mark.spark
@pytest.mark.parametrize("table,message", [
    (pa.table({"url": ["a", "b"], "uid": ["0" * 32, "0" * 32]}), "not unique"),
    (pa.table({"url": ["a", "b"], "uid": ["0" * 32, "XYZ"]}), "'XYZ' is not 32 lowercase hex"),
    (pa.table({"url": ["a", "a"], "caption": pa.array([None, ""], pa.string())}), "not unique"),
])
def test_spark_plan_refuses_bad_uids_in_one_line(spark_engine, tmp_path, table, message):
    pq.write_table(table, tmp_path / "in.parquet")
    config = DownloadConfig(input=str(tmp_path / "in.parquet"))
    for engine in (LocalEngine(), spark_engine):
        with pytest.raises(CurateError, match=message) as info:
            plan_urls(engine, config, str(tmp_path / engine.name))
        assert "\n" not in str(info.value)


@pytest.mark.ray
def test_ray_plan_writes_the_in_process_bytes(tmp_path):
    from curate.engines.ray import RayEngine

    config, _ = _input(tmp_path)
    plan_urls(LocalEngine(), config, str(tmp_path / "local"))
    with RayEngine(num_cpus=2):
        plan = plan_urls(_RayName(), config, str(tmp_path / "ray"))
        pq.write_table(pa.table({"url": ["a", "b"], "uid": ["0" * 32, "0" * 32]}), tmp_path / "dup.parquet")
        with pytest.raises(CurateError, match="not unique"):
            plan_urls(_RayName(), DownloadConfig(input=str(tmp_path / "dup.parquet")), str(tmp_path / "dup"))
    assert (plan.rows, plan.shards) == (13, 4)
    assert _digest(tmp_path / "ray") == _digest(tmp_path / "local")


class _RayName:
    name = "ray"
