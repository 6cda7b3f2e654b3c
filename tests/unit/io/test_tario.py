from curate.io.tario import index, read_member, write_tar_file


def _tar(path, members):
    return write_tar_file(str(path), members)


def test_writer_is_deterministic_and_index_reads_back(tmp_path):
    members = [("000.jpg", b"\xff\xd8img"), ("000.txt", b"a cap"), ("001.jpg", b"x" * 1000)]
    _tar(tmp_path / "a.tar", members)
    _tar(tmp_path / "b.tar", members)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    idx = index(str(tmp_path / "a.tar"))
    assert set(idx) == {"000", "001"} and set(idx["000"]) == {"jpg", "txt"}
    with open(tmp_path / "a.tar", "rb") as fh:
        assert read_member(fh, *idx["001"]["jpg"]) == b"x" * 1000
        assert read_member(fh, *idx["000"]["txt"]) == b"a cap"
