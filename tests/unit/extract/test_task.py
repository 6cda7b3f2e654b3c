"""One file on a worker: damaged input, stats in the part footer, storage errors."""

import json

import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.extract.config import ExtractConfig
from curate.extract.inputs import InputFile
from curate.extract.synthetic import WatPage, img, write_wat
from curate.extract.task import DAMAGE_KEY, STATS_KEY, ExtractTask, Item, read_stats


def _pages(lo, hi):
    return [WatPage(f"https://example.com/{i}.html", links=(img(f"/{i}.jpg", alt=f"page {i}"),)) for i in range(lo, hi)]


def _damaged(tmp_path):
    """Pages 0-4 intact, then a second WAT (pages 5-9) whose first gzip member is corrupt."""
    write_wat(str(tmp_path / "a.gz"), _pages(0, 5))
    write_wat(str(tmp_path / "b.gz"), _pages(5, 10))
    second = bytearray((tmp_path / "b.gz").read_bytes())
    for k in range(30, 60):
        second[k] ^= 0xFF
    path = tmp_path / "damaged.warc.wat.gz"
    path.write_bytes((tmp_path / "a.gz").read_bytes() + bytes(second))
    return path


def test_a_damaged_file_keeps_what_precedes_the_damage(tmp_path, extract):
    stats, pairs, _ = extract(_damaged(tmp_path))
    assert [r["caption"] for r in pairs] == [f"page {i}" for i in range(5)]
    assert (stats["files_damaged"], stats["records"]) == (1, 15)
    footer = pq.read_schema(tmp_path / "run0" / "extract" / "part-00000.parquet").metadata
    assert b"damaged.warc.wat.gz" in footer[DAMAGE_KEY] and json.loads(footer[STATS_KEY])["kept"] == 5


def test_strict_makes_damage_an_error(tmp_path, extract):
    with pytest.raises(CurateError, match="damaged after 15 records") as info:
        extract(_damaged(tmp_path), strict=True)
    assert "\n" not in str(info.value)


def test_a_file_cut_inside_a_record_is_damaged(tmp_path, extract):
    path = tmp_path / "cut.warc.wat.gz"
    write_wat(str(path), _pages(0, 3))
    data = path.read_bytes()
    path.write_bytes(data[:-60])  # inside the last record's compressed body
    stats, pairs, _ = extract(path)
    assert stats["files_damaged"] == 1 and [r["caption"] for r in pairs] == ["page 0", "page 1", "page 2"]


def test_not_a_warc_file_is_damaged_from_its_first_byte(tmp_path, extract):
    path = tmp_path / "x.warc.wat.gz"
    path.write_bytes(b"this is a text file, not WARC\n" * 10)
    stats, pairs, _ = extract(path)
    assert (stats["files_damaged"], stats["records"], pairs) == (1, 0, [])


def test_a_missing_file_raises_for_the_engine_to_retry(tmp_path):
    task = ExtractTask(ExtractConfig(input="x"), str(tmp_path / "out"))
    with pytest.raises(CurateError, match="no such input file"):
        task(Item(InputFile(0, str(tmp_path / "gone.wat.gz"), "gone", None), done=False))


def test_an_unreadable_file_is_a_one_line_error(tmp_path):
    (tmp_path / "dir.warc.wat.gz").mkdir()
    task = ExtractTask(ExtractConfig(input="x"), str(tmp_path / "out"))
    with pytest.raises(CurateError, match="cannot read .*dir.warc.wat.gz") as info:
        task(Item(InputFile(0, str(tmp_path / "dir.warc.wat.gz"), "d", None), done=False))
    assert "\n" not in str(info.value)


def test_stats_travel_in_the_footer(tmp_path):
    path = tmp_path / "a.warc.wat.gz"
    write_wat(str(path), _pages(0, 2))
    task = ExtractTask(ExtractConfig(input=str(path)), str(tmp_path / "out"))
    item = Item(InputFile(3, str(path), "k", None), done=False)
    stats = task(item)
    assert stats["kept"] == 2 and (tmp_path / "out" / "rejects" / "part-00003.parquet").exists()
    assert read_stats(str(tmp_path / "out" / "part-00003.parquet")) == stats
    assert task(Item(item.file, done=True)) == stats  # a done file: only its footer is read
