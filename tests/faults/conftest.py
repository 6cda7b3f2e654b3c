"""Fixtures of the fault-injection suite: the generated pool on loopback, the uninterrupted baseline run made
by the real `curate` commands, and fresh copies of its upstream stages for each test (helpers: harness.py)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .harness import POOL_N, POOL_SEED, STAGES, Pool, after, copy_upstream, run_curate, stage_args


@pytest.fixture(scope="session")
def scratch() -> Path:
    """A short temporary folder for the children (Ray's socket paths must fit in 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="fz"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _keep() -> Path | None:
    """$CURATE_FAULTS_DIR: keep the pool and the baseline there across sessions (made when missing), for
    working on the suite; unset (make test), both live in the session's temporary folder."""
    keep = os.environ.get("CURATE_FAULTS_DIR")
    return Path(keep) if keep else None


@pytest.fixture(scope="session")
def pool(tmp_path_factory) -> Pool:
    """The generated pool, served on loopback for the whole session (the download kills fetch from it)."""
    from curate.demo.pool import SUMMARY_FILE, PoolConfig, generate_pool
    from curate.demo.run import _free_port
    from curate.demo.server import LoopbackServer, PortInUseError

    root = _keep() / "pool" if _keep() else tmp_path_factory.mktemp("faultpool")
    if (root / SUMMARY_FILE).is_file():  # kept from an earlier session: served on the port its URLs name
        port = urlsplit(json.loads((root / SUMMARY_FILE).read_text())["base_url"]).port
    else:
        port = _free_port()
        generate_pool(root, f"http://127.0.0.1:{port}", PoolConfig(n=POOL_N, seed=POOL_SEED))
    try:
        server = LoopbackServer(root / "site", port=port).start()
    except PortInUseError:  # a kept pool another session of the suite is serving already: the same files
        if not _keep():
            raise
        server = None
    try:
        yield Pool(root, port)
    finally:
        if server is not None:
            server.stop()


@pytest.fixture(scope="session")
def baseline(pool, scratch, tmp_path_factory) -> Path:
    """The uninterrupted run: every stage once, by the `curate` command, in order. `after(baseline, stage)` is a
    copy of the whole run as it stood when that stage finished (dedup rewrites download's tars: a later stage
    can change an earlier stage's folder)."""
    run = (_keep() / "base" if _keep() else tmp_path_factory.mktemp("faultbase")) / "run"
    if (after(run, STAGES[-1]) / STAGES[-1] / "_SUCCESS").is_file():
        return run
    shutil.rmtree(run.parent, ignore_errors=True)
    for stage in STAGES:
        result = run_curate(stage_args(stage, run, pool), scratch)
        assert result.rc == 0, f"{stage}:\n{result.stderr[-3000:]}"
        assert (run / stage / "_SUCCESS").is_file()
        shutil.copytree(run, after(run, stage), symlinks=True)
    return run


@pytest.fixture
def fresh_run(baseline, tmp_path):
    """fresh_run(stage) -> a copy of the baseline run as it stood before `stage` ran."""
    def make(stage: str, name: str = "run") -> Path:
        run = tmp_path / name
        copy_upstream(baseline, run, stage)
        return run
    return make
