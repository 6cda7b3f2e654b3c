import gzip

import pytest

from curate.errors import CurateError
from curate.extract.config import ExtractConfig
from curate.extract.inputs import crawl_of, expand, file_key


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_a_folder_a_glob_and_a_file(tmp_path):
    for name in ("b.warc.wat.gz", "a.warc.wat.gz", "sub/c.warc.wat.gz", "x.warc.gz", "notes.txt.bak"):
        _touch(tmp_path / "in" / name)
    folder = expand(ExtractConfig(input=str(tmp_path / "in")))
    assert [f.path for f in folder] == [str(tmp_path / "in" / n) for n in ("a.warc.wat.gz", "b.warc.wat.gz",
                                                                           "sub/c.warc.wat.gz")]
    assert [f.index for f in folder] == [0, 1, 2]
    warc = expand(ExtractConfig(input=str(tmp_path / "in"), source_format="warc"))
    assert [f.path for f in warc] == [str(tmp_path / "in" / "x.warc.gz")]
    glob = expand(ExtractConfig(input=str(tmp_path / "in" / "*.wat.gz"), limit=1))
    assert [f.path for f in glob] == [str(tmp_path / "in" / "a.warc.wat.gz")]
    one = expand(ExtractConfig(input=str(tmp_path / "in" / "x.warc.gz")))
    assert [(f.path, f.key) for f in one] == [(str(tmp_path / "in" / "x.warc.gz"),) * 2]


def test_a_common_crawl_listing(tmp_path):
    listing = tmp_path / "wat.paths.gz"
    lines = ["crawl-data/CC-MAIN-2024-10/segments/170/wat/CC-MAIN-20240220-00000.warc.wat.gz",
             "", "# a comment", "crawl-data/CC-MAIN-2024-10/segments/170/wat/CC-MAIN-20240220-00001.warc.wat.gz",
             "crawl-data/CC-MAIN-2024-10/segments/170/wat/CC-MAIN-20240220-00000.warc.wat.gz"]  # listed twice
    listing.write_bytes(gzip.compress("\n".join(lines).encode()))
    files = expand(ExtractConfig(input=str(listing), paths_prefix=str(tmp_path / "mirror") + "/"))
    assert [f.path for f in files] == [str(tmp_path / "mirror" / lines[0]), str(tmp_path / "mirror" / lines[3])]
    assert [f.key for f in files] == [lines[0], lines[3]]
    assert {f.crawl for f in files} == {"CC-MAIN-2024-10"}
    s3 = expand(ExtractConfig(input=str(listing)))
    assert s3[0].path == "s3://commoncrawl/" + lines[0] and s3[0].key == lines[0]


def test_two_copies_of_one_crawl_file_are_refused(tmp_path):
    listing = tmp_path / "two.paths"
    listing.write_text("/a/crawl-data/CC-MAIN-2024-10/x.wat.gz\n/b/crawl-data/CC-MAIN-2024-10/x.wat.gz\n")
    with pytest.raises(CurateError, match="same Common Crawl file"):
        expand(ExtractConfig(input=str(listing)))


@pytest.mark.parametrize("make,message", [
    (lambda p: str(p / "nothing-*.wat.gz"), "no files match"),
    (lambda p: str(p / "missing.wat.gz"), "no such file or folder"),
    (lambda p: str(p / "missing.paths.gz"), "no such listing"),
    (lambda p: (p / "bad.paths.gz").write_bytes(b"\x1f\x8b not gzip") and str(p / "bad.paths.gz"), "cannot read"),
    (lambda p: (p / "empty.paths").write_text("\n# only a comment\n") and str(p / "empty.paths"), "names no files"),
    (lambda p: (p / "empty").mkdir() or str(p / "empty"), "no .wat.gz or .wat files"),
    (lambda p: " ", "--input is empty"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, make, message):
    with pytest.raises(CurateError, match=message) as info:
        expand(ExtractConfig(input=make(tmp_path)))
    assert "\n" not in str(info.value)


def test_keys_and_crawls():
    assert file_key("s3://commoncrawl/crawl-data/CC-MAIN-2024-10/a.gz") == "crawl-data/CC-MAIN-2024-10/a.gz"
    assert file_key("https://data.commoncrawl.org/crawl-data/CC-MAIN-2024-10/a.gz") == "crawl-data/CC-MAIN-2024-10/a.gz"
    assert file_key("/data/x.wat.gz") == "/data/x.wat.gz"
    assert crawl_of("/x/CC-MAIN-2023-50/y") == "CC-MAIN-2023-50" and crawl_of("/x/y") is None
