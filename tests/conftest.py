"""Shared fixtures: environment for Spark and Ray on a small machine, the sample pool on a loopback
server, and engines started once per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if not has_gpu:
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def spark_engine():
    from curate.engines.spark import SparkEngine

    with SparkEngine() as engine:
        yield engine


@pytest.fixture(scope="session")
def small_pool(tmp_path_factory):
    """A 300-row sample pool served on loopback for the whole session: (pool dir, server)."""
    from curate.demo.pool import PoolConfig, generate_pool
    from curate.demo.run import _free_port
    from curate.demo.server import LoopbackServer

    root = tmp_path_factory.mktemp("pool")
    port = _free_port()
    generate_pool(root, f"http://127.0.0.1:{port}", PoolConfig(n=300, seed=1))
    with LoopbackServer(root / "site", port=port) as server:
        yield root, server


@pytest.fixture(scope="module")
def moto_s3():
    """moto's S3 server on loopback for a module, with the environment botocore and s3fs read pointed at it:
    (environment, s3fs filesystem). Each module makes its own buckets."""
    from moto.server import ThreadedMotoServer

    from curate.demo.run import _free_port

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import s3fs

    try:
        yield env, s3fs.S3FileSystem(use_listings_cache=False)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()
