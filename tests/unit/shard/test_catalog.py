import logging
import random

from curate.io.tarindex import write_index
from curate.io.tario import write_tar_file
from curate.shard.catalog import catalog, from_listing
from curate.shard.tarfast import scan


def _tar(path, members, with_index=True):
    written = write_tar_file(str(path), members)
    if with_index:
        assert write_index(str(path), written)
    return str(path)


def _rows(table):
    """The places of the files (the index's or the headers' part of a catalog), by key."""
    return sorted(table.drop_columns([c for c in ("crcs",) if c in table.column_names]).to_pylist(),
                  key=lambda r: r["key"])


def _samples(rng, n, exts=("jpg", "json", "txt")):
    return [(f"{i:09d}.{ext}", rng.randbytes(rng.randrange(1, 3000))) for i in range(n) for ext in exts]


def test_the_index_gives_what_the_headers_give(tmp_path):
    rng = random.Random(0)
    uniform = _tar(tmp_path / "u.tar", _samples(rng, 40))  # read column-wise
    mixed = _tar(tmp_path / "m.tar", _samples(rng, 5) + [("000000099.jpg", b"x" * 700)])  # line by line
    # files written out of extension order, and a sample whose files lie apart (a.txt after b.jpg)
    apart = _tar(tmp_path / "a.tar", [("b.txt", b"t"), ("b.jpg", b"j" * 900), ("a.jpg", b"i" * 600),
                                       ("c.jpg", b"k" * 5000), ("a.txt", b"cap")])
    for path in (uniform, mixed, apart):
        assert _rows(catalog(path)) == _rows(from_listing(scan(path)))
    rows = {r["key"]: r for r in catalog(apart).to_pylist()}
    assert rows["b"]["exts"] == ["jpg", "txt"] and rows["b"]["lo"] >= 0  # adjacent: one read
    assert rows["a"]["lo"] == -1 and rows["a"]["nbytes"] == 603  # apart: read file by file


def test_a_stale_or_broken_index_falls_back_to_the_headers(tmp_path, caplog):
    rng = random.Random(1)
    path = _tar(tmp_path / "s.tar", _samples(rng, 20))
    stale = (tmp_path / "s.idx").read_bytes()
    _tar(tmp_path / "s.tar", _samples(rng, 20), with_index=False)  # rewritten: other sizes, old index
    (tmp_path / "s.idx").write_bytes(stale)
    with caplog.at_level(logging.WARNING):
        assert _rows(catalog(path)) == _rows(from_listing(scan(path)))
    assert "does not match" in caplog.text or "past the end" in caplog.text
    for bad in (b"garbage", b"v1.2 3\njpg 512 10 a.jpg\n", b"v1.2 1\njpg 512 999999999 000000000.jpg\n"):
        (tmp_path / "s.idx").write_bytes(bad)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert _rows(catalog(path)) == _rows(from_listing(scan(path)))
        assert "s.idx" in caplog.text


def test_files_carry_the_crc32c_their_tar_sidecar_lists(tmp_path):
    """curate's tar writer lists each file's CRC32C by data offset in the tar's sidecar; the catalog gives
    it per file (checked here with google's CRC32C of the bytes), -1 for a tar without a sidecar."""
    import google_crc32c

    rng = random.Random(3)
    members = _samples(rng, 12)
    path = _tar(tmp_path / "c.tar", members)
    data = dict(members)
    for row in catalog(path).to_pylist():
        want = [google_crc32c.value(data[f"{row['key']}.{ext}"]) for ext in row["exts"]]
        assert row["crcs"] == want
    (tmp_path / "_sums" / "c.tar.json").unlink()
    assert all(c == -1 for row in catalog(path).to_pylist() for c in row["crcs"])
