from dataclasses import replace

from curate.shard.reshard import ShardJob, Source, _write_through_python, index_source, split, write_shard
from curate.shard.synthetic import SyntheticRun, make_run


def test_split_by_count_and_bytes():
    assert split([1] * 7, 3, 100) == [(0, 3), (3, 6), (6, 7)]
    assert split([4, 4, 4, 4], 10, 8) == [(0, 2), (2, 4)]
    assert split([20, 1, 1], 10, 8) == [(0, 1), (1, 3)]  # one oversized sample still gets a shard
    assert split([], 10, 8) == [(0, 0)]


def test_write_shard_is_idempotent_and_reads_each_source_once(tmp_path):
    run = str(tmp_path / "run")
    make_run(run, SyntheticRun(n=10, per_shard=5))
    src, cat = index_source(Source(f"{run}/download/shards", "00001.tar"))
    row = cat.sort_by("key").slice(0, 1).to_pylist()[0]
    files = tuple(zip(row["exts"], row["offsets"], row["sizes"], strict=True))
    assert row["lo"] == min(row["offsets"]) and row["nbytes"] == sum(row["sizes"])  # one read for the sample
    job = ShardJob.of(str(tmp_path / "o.tar"), str(tmp_path / "o_stats.json"), "o.tar",
                      [("a", src.path, files), ("b", src.path, files)], (("unique_samples", 1),))
    stats = write_shard(job)
    assert stats == {"shard": "o.tar", "samples": 2, "bytes": 2 * row["nbytes"],
                     "unique_samples": 1, "fingerprint": stats["fingerprint"],
                     "tar_bytes": (tmp_path / "o.tar").stat().st_size}
    mtime = (tmp_path / "o.tar").stat().st_mtime_ns
    assert write_shard(job) == stats and (tmp_path / "o.tar").stat().st_mtime_ns == mtime
    # the gathered copy (local files) and the path through Python (any fsspec filesystem) agree
    _write_through_python(replace(job, tar=str(tmp_path / "p.tar")))
    assert (tmp_path / "p.tar").read_bytes() == (tmp_path / "o.tar").read_bytes()
    assert not list(tmp_path.glob("_tmp.*"))
    want = (tmp_path / "o.tar").read_bytes()
    (tmp_path / "o.tar").write_bytes(want[:100])  # a damaged tar beside its stats is written again
    assert write_shard(job) == stats and (tmp_path / "o.tar").read_bytes() == want
    other = ShardJob.of(job.tar, job.stats, job.name, [("a", src.path, files)])  # another job, same name: rewritten
    assert write_shard(other)["samples"] == 1


def test_fast_tar_matches_the_deterministic_writer_and_tarfile(tmp_path):
    import io
    import random

    from curate.io.tario import DeterministicTarWriter, index
    from curate.shard.tarfast import scan, write_tar

    rng = random.Random(0)
    for n in (0, 1, 7, 40):
        members = [(f"{i:011d}.{rng.choice(['jpg', 'txt', 'json'])}", rng.randbytes(rng.randrange(0, 3000)))
                   for i in range(n)]
        ref = io.BytesIO()
        w = DeterministicTarWriter(ref)
        for name, data in members:
            w.add(name, data)
        w.close()
        fast = io.BytesIO()
        assert write_tar(fast, members) == len(ref.getvalue())
        assert fast.getvalue() == ref.getvalue()
        path = tmp_path / f"{n}.tar"
        path.write_bytes(fast.getvalue())
        assert scan(str(path)) == index(str(path))
    import tarfile

    with tarfile.open(tmp_path / "gnu.tar", "w", format=tarfile.GNU_FORMAT) as t:  # img2dataset-style archive
        for name in ("x" * 120 + ".jpg", "short.txt"):
            info = tarfile.TarInfo(name)
            info.size = 3
            t.addfile(info, io.BytesIO(b"abc"))
    assert scan(str(tmp_path / "gnu.tar")) == index(str(tmp_path / "gnu.tar"))
