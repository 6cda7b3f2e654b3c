"""The export's tar reader: its own header parser on plain archives, tarfile for anything else."""

import io
import json
import tarfile

import pytest

from curate.errors import CurateError
from curate.export.tars import samples


def _tar(path, members, fmt=tarfile.USTAR_FORMAT):
    with tarfile.open(path, "w", format=fmt) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def _sample(key, uid):
    return [(f"{key}.jpg", b"\xff\xd8" + uid.encode()), (f"{key}.json", json.dumps({"uid": uid}).encode()),
            (f"{key}.txt", f"caption {uid}".encode())]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_every_sample_once_whatever_the_headers(tmp_path, fmt):
    long = "x" * 120  # a name USTAR cannot hold in 100 bytes: pax or GNU long-name headers mid-archive
    members = _sample("a", "u1") + _sample(f"dir/{long}" if fmt != tarfile.USTAR_FORMAT else "b", "u2") \
        + _sample("c", "u3")
    _tar(tmp_path / "t.tar", members, fmt)
    got = list(samples(str(tmp_path / "t.tar")))
    assert [s.uid for s in got] == ["u1", "u2", "u3"]
    assert [s.caption for s in got] == ["caption u1", "caption u2", "caption u3"]
    assert [s.image for s in got] == [b"\xff\xd8u1", b"\xff\xd8u2", b"\xff\xd8u3"]


def test_a_sample_without_a_uid_is_a_one_line_error(tmp_path):
    _tar(tmp_path / "t.tar", [("a.jpg", b"x"), ("a.txt", b"c")])
    with pytest.raises(CurateError, match="no uid"):
        list(samples(str(tmp_path / "t.tar")))
