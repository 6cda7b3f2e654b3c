"""The stage: parts per input file, resume by listing, refusing mixed inputs, Spark, and the download's input."""

import json
import os

import pytest

from curate.download.config import DownloadConfig
from curate.download.inputs import check_input, read_input
from curate.engines.local import LocalEngine
from curate.errors import CurateError
from curate.extract.config import ExtractConfig
from curate.extract.run import run_extract
from curate.extract.synthetic import WatPage, cc_like_pages, img, write_wat
from curate.io import dataset

from .conftest import read


def _inputs(tmp_path, files=3, pages=40):
    folder = tmp_path / "crawl-data" / "CC-MAIN-2024-10" / "wat"
    folder.mkdir(parents=True)
    for k in range(files):
        write_wat(str(folder / f"f{k}.warc.wat.gz"), cc_like_pages(pages, seed=k))
    return folder


def _bytes(run):
    out = {}
    for sub in ("extract", "extract/rejects"):
        for name in dataset.list_parts(f"{run}/{sub}"):
            with open(f"{run}/{sub}/{name}", "rb") as fh:
                out[f"{sub}/{name}"] = fh.read()
    return out


def _run(engine, run, **config):
    return run_extract(engine, str(run), ExtractConfig(**config))


def test_one_part_per_file_and_resume_recomputes_only_the_missing(tmp_path):
    folder = _inputs(tmp_path)
    run = tmp_path / "run"
    with LocalEngine() as engine:
        first = _run(engine, run, input=str(folder))
        before = _bytes(run)
        assert sorted(before) == [f"extract/{p}" for p in ("part-00000.parquet", "part-00001.parquet",
                                                            "part-00002.parquet")] + \
            [f"extract/rejects/part-0000{k}.parquet" for k in range(3)]
        # an interrupted run: one file's parts and the completion marker are gone
        for name in ("part-00001.parquet", "rejects/part-00001.parquet", "_SUCCESS", "_stats.json"):
            os.remove(run / "extract" / name)
        untouched = os.stat(run / "extract" / "part-00000.parquet").st_mtime_ns
        again = _run(engine, run, input=str(folder))
        assert _bytes(run) == before
        assert os.stat(run / "extract" / "part-00000.parquet").st_mtime_ns == untouched
        assert {k: v for k, v in again.items() if k != "files_resumed"} == \
            {k: v for k, v in first.items() if k != "files_resumed"}
        assert (first["files_resumed"], again["files_resumed"]) == (0, 2)
        assert json.loads((run / "extract" / "_stats.json").read_text()) == again
        assert _run(engine, run, input=str(folder)) == again  # a finished stage, the same configuration: a no-op
        with pytest.raises(CurateError, match=r'input: ".*" -> "/elsewhere".*--redo'):  # another one: refused
            _run(engine, run, input="/elsewhere")
    pairs, rejects = read(str(run))
    assert first["kept"] == len(pairs) and first["rejected_total"] == len(rejects)
    assert first["images"] == len(pairs) + len(rejects)
    assert {r["crawl"] for r in pairs} == {"CC-MAIN-2024-10"} and len({r["uid"] for r in pairs}) == len(pairs)


def test_a_rerun_with_other_inputs_or_settings_is_refused(tmp_path):
    folder = _inputs(tmp_path, files=2, pages=5)
    run = tmp_path / "run"
    with LocalEngine() as engine:
        _run(engine, run, input=str(folder))
        os.remove(run / "extract" / "_SUCCESS")
        with pytest.raises(CurateError, match="other settings"):
            _run(engine, run, input=str(folder), max_caption_chars=10)
        with pytest.raises(CurateError, match="other input files"):
            _run(engine, run, input=str(folder), limit=1)


def test_the_same_pair_in_two_files_gets_two_uids(tmp_path, extract):
    page = WatPage("https://example.com/p.html", links=(img("/same.jpg", alt="same"),))
    (tmp_path / "in").mkdir()
    for name in ("a.warc.wat.gz", "b.warc.wat.gz"):
        write_wat(str(tmp_path / "in" / name), [page])
    _, pairs, _ = extract(tmp_path / "in")
    assert [r["url"] for r in pairs] == ["https://example.com/same.jpg"] * 2
    assert len({r["uid"] for r in pairs}) == 2


def test_the_output_is_a_download_input(tmp_path):
    folder = _inputs(tmp_path, files=2, pages=30)
    run = tmp_path / "run"
    with LocalEngine() as engine:
        stats = _run(engine, run, input=str(folder))
    config = DownloadConfig(input=str(run / "extract"))
    check_input(config)
    urls = read_input(config)
    pairs, _ = read(str(run))
    assert urls.num_rows == stats["kept"] == len(pairs)
    assert urls.column("uid").to_pylist() == [r["uid"] for r in pairs]  # the extract's uids are used as they are
    assert urls.column("url").to_pylist() == [r["url"] for r in pairs]
    assert set(urls.column("source").to_pylist()) == {"CC-MAIN-2024-10"}


@pytest.mark.spark
def test_spark_writes_the_same_bytes_as_the_local_engine(tmp_path, spark_engine):
    folder = _inputs(tmp_path, files=3, pages=30)
    with LocalEngine() as engine:
        local = _run(engine, tmp_path / "local", input=str(folder))
    spark = _run(spark_engine, tmp_path / "spark", input=str(folder), files_per_task=2)
    assert _bytes(tmp_path / "spark") == _bytes(tmp_path / "local")
    assert {k: v for k, v in spark.items() if k != "files_per_task"} == \
        {k: v for k, v in local.items() if k != "files_per_task"}
