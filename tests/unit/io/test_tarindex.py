import random

from curate.io.tarindex import VERSION, format_index, index_path, parse_index, read_index_bytes, write_index
from curate.io.tario import index, write_tar_file


def test_the_writer_lists_data_offsets_and_the_index_reads_back_like_the_tar(tmp_path):
    rng = random.Random(0)
    members = []
    for i in range(30):  # one to three files per sample, odd sizes, an extension with a dot
        for ext in sorted(rng.sample(["jpg", "json", "txt", "seg.png"], rng.randint(1, 3))):
            members.append((f"{i:09d}.{ext}", rng.randbytes(rng.choice([0, 1, 511, 512, 513, rng.randrange(5000)]))))
    listed = write_tar_file(str(tmp_path / "a.tar"), members)
    raw = (tmp_path / "a.tar").read_bytes()
    assert [(n, raw[off:off + size]) for n, off, size in listed] == members
    assert write_index(str(tmp_path / "a.tar"), listed)
    text = (tmp_path / "a.idx").read_text()
    assert text.splitlines()[0] == f"{VERSION} 30" and len(text.splitlines()) == 31
    assert all(len(line.split(" ")) % 4 == 0 for line in text.splitlines()[1:])
    assert read_index_bytes(str(tmp_path / "a.tar")) == text.encode()
    assert parse_index(text.encode()) == index(str(tmp_path / "a.tar"))


def test_names_the_format_cannot_hold_get_no_index(tmp_path):
    assert format_index([("a b.jpg", 512, 3)]) is None
    assert format_index([("noextension", 512, 3)]) is None
    assert not write_index(str(tmp_path / "x.tar"), [("a b.jpg", 512, 3)])
    assert not (tmp_path / "x.idx").exists()
    assert read_index_bytes(str(tmp_path / "x.tar")) is None
    assert index_path("s3://b/shards/00012.tar") == "s3://b/shards/00012.idx"


def test_a_malformed_index_is_a_value_error():
    import pytest

    for bad in (b"v9 1\njpg 512 3 a.jpg\n", b"v1.2 2\njpg 512 3 a.jpg\n", b"v1.2 1\njpg 512 a.jpg\n"):
        with pytest.raises(ValueError):
            parse_index(bad)
