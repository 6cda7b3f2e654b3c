import io
import random
import tarfile

import pytest

from curate.errors import CurateError
from curate.io.tario import write_tar_file
from curate.shard import gather
from curate.shard.reshard import ShardJob
from curate.shard.tarfast import headers, scan, write_tar


def _source(path, members):
    write_tar_file(str(path), members)
    return str(path)


def _job(tmp_path, rng, n_sources=3, n=60):
    sources = []
    for s in range(n_sources):
        members = []
        for i in range(20):
            exts = sorted(rng.sample(["jpg", "json", "txt", "png"], rng.randint(1, 3)))
            members += [(f"{s}{i:05d}.{e}", rng.randbytes(rng.choice([0, 1, 512, 513, rng.randrange(1, 40_000)])))
                        for e in exts]
        members += [(f"{s}99998.jpg", b"a" * 700), (f"{s}99999.jpg", b"b" * 5000), (f"{s}99998.txt", b"apart")]
        sources.append(_source(tmp_path / f"src{s}.tar", members))
    listing = {p: scan(p) for p in sources}
    entries = []
    for i in range(n):
        src = rng.choice(sources)
        key = rng.choice(sorted(listing[src]))
        files = tuple(sorted((e, off, size) for e, (off, size) in listing[src][key].items()))
        entries.append((f"{i:011d}", src, files))
    return ShardJob.of(str(tmp_path / "out.tar"), str(tmp_path / "out_stats.json"), "out.tar", entries), listing


def _reference(job):
    files = []
    for key, src, members, _ in job.rows():
        raw = open(src, "rb").read()
        files += [(f"{key}.{e}", raw[off:off + size]) for e, off, size in members]
    buf = io.BytesIO()
    write_tar(buf, files)
    return buf.getvalue()


@pytest.mark.parametrize("buffer,max_open", [(gather.BUFFER, gather.MAX_OPEN), (4096, 1)])
def test_gathered_tar_is_the_reference_archive(tmp_path, monkeypatch, buffer, max_open):
    monkeypatch.setattr(gather, "BUFFER", buffer)  # small: samples bigger than the buffer, many flushes
    monkeypatch.setattr(gather, "MAX_OPEN", max_open)  # 1: sources closed and opened again
    rng = random.Random(buffer)
    job, _ = _job(tmp_path, rng)
    assert any(lo < 0 for lo in job.lo.tolist())  # some samples' files lie apart
    size, _ = gather.copy_tar_local(job.tar, job, list(job.sources))
    want = _reference(job)
    assert open(job.tar, "rb").read() == want and size == len(want)
    assert not list(tmp_path.glob("_tmp.*"))


def test_a_source_cut_short_is_a_clear_error_and_leaves_nothing(tmp_path):
    job, _ = _job(tmp_path, random.Random(5), n_sources=1, n=30)
    src = job.sources[0]
    raw = open(src, "rb").read()
    open(src, "wb").write(raw[: int(job.offsets.max())])  # the last-placed file is gone
    with pytest.raises(CurateError, match="cut short"):
        gather.copy_tar_local(job.tar, job, list(job.sources))
    assert not list(tmp_path.glob("out*")) and not list(tmp_path.glob("_tmp.*"))


def test_headers_at_once_are_tarfiles_headers():
    rng = random.Random(2)
    names = [f"{rng.randrange(10 ** 12):012d}.{rng.choice(['jpg', 'json', 'txt'])}" for _ in range(300)]
    names += ["é.jpg", "x" * 100, "a.b.c"]
    sizes = [rng.choice([0, 1, 511, 512, 8 ** 11 - 1, rng.randrange(10 ** 9)]) for _ in names]
    heads = headers(names, sizes)
    for i, (name, size) in enumerate(zip(names, sizes, strict=True)):
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, 0, 0o444  # as DeterministicTarWriter sets them
        assert heads[i * 512:(i + 1) * 512] == info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    assert headers(["y" * 101], [1]) is None and headers(["a"], [8 ** 11]) is None and headers([], []) == b""
