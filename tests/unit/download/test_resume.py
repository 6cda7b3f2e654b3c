"""Kill a real `curate download` (SIGKILL to its whole process group: driver, JVM, Python workers) at
several points, resume it, and get the same bytes as an uninterrupted run."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.download.config import DownloadConfig
from curate.download.run import run_download
from curate.engines.local import LocalEngine

pytestmark = [pytest.mark.spark, pytest.mark.slow]

N_SHARDS, SHARD = 12, 10


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _start(run: Path, inp: Path, port: int, tmp: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "curate.cli", "-q", "download", str(run), "--input", str(inp),
           "--shard-size", str(SHARD), "--threads", "2", "--timeout", "5", "--deadline", "10",
           "--allow-address", f"127.0.0.1:{port}"]
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def _kill(proc: subprocess.Popen) -> int:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate(timeout=60)
    return proc.returncode


def _samples(run: Path) -> int:
    folder = run / "download" / "samples"
    return len(list(folder.glob("*.parquet"))) if folder.is_dir() else 0


def _raw_started(run: Path) -> bool:
    raw = run / "download" / "_raw"
    return raw.is_dir() and any(p.suffix == ".tar" for p in raw.iterdir())


def _img_hits(server) -> int:
    return sum(n for p, n in server.hits.items() if p.startswith("/img/"))


@pytest.mark.long  # ~55 s: make test-long; test_run.py resumes an interrupted download in CI
def test_killed_download_resumes_into_identical_bytes(bad_server, tmp_path, wait_for):
    urls = [f"{bad_server.base}/img/slow-{i}.jpg" for i in range(N_SHARDS * SHARD - 3)]
    urls += [f"{bad_server.base}/missing", f"{bad_server.base}/html", f"{bad_server.base}/optout"]
    inp = tmp_path / "in.parquet"
    pq.write_table(pa.table({"url": urls, "caption": [f"photo {i}" for i in range(len(urls))]}), inp)
    ref = tmp_path / "ref"
    run_download(LocalEngine(), str(ref), DownloadConfig(input=str(inp), shard_size=SHARD, threads=2, timeout=5,
                                                         deadline=10,
                                                         allow_addresses=(f"127.0.0.1:{bad_server.port}",)))
    run = tmp_path / "run"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # 1: mid-shard, with a half-written raw tar; 2: after some shards finished
    for condition in (lambda: _raw_started(run), lambda: _samples(run) >= 3):
        proc = _start(run, inp, bad_server.port, scratch)
        assert wait_for(lambda c=condition, p=proc: c() or p.poll() is not None, timeout=180)
        assert _kill(proc) == -signal.SIGKILL, "the download finished before it could be killed"
        assert not (run / "download" / "_SUCCESS").exists()
    done_before = _samples(run)
    assert 3 <= done_before < N_SHARDS
    finished = {p.name for p in (run / "download" / "samples").glob("*.parquet")}
    pending = [p for p in sorted((run / "download" / "urls").glob("*.parquet")) if p.name not in finished]
    to_fetch = sum(1 for p in pending for u in pq.read_table(p).column("url").to_pylist() if "/img/" in u)
    before = _img_hits(bad_server)
    proc = _start(run, inp, bad_server.port, scratch)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert _digest(run / "download") == _digest(ref / "download")
    hits = _img_hits(bad_server)
    assert hits - before == to_fetch  # each URL of an unfinished shard once; finished shards not again

    before = _digest(run / "download")
    proc = _start(run, inp, bad_server.port, scratch)  # a rerun after completion is a no-op
    proc.communicate(timeout=300)
    assert proc.returncode == 0 and _img_hits(bad_server) == hits
    assert _digest(run / "download") == before
