"""The pipeline with its run on an object store: a real S3 API (moto's server mode) on loopback, the input,
the hash list and the eval images on S3 too, run through the CLI as a user would (download, dedup, select,
shard and audit on Spark, score on Ray; their workers read their inputs from S3 and write their parts there);
every output file equals the one a local run writes, byte for byte."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate.verify import verify_run

pytestmark = [pytest.mark.spark, pytest.mark.ray, pytest.mark.slow, pytest.mark.long]  # ~2 min: make test-long

BUCKET = "curate-test"


@pytest.fixture(scope="module")
def s3_env(moto_s3):
    env, s3 = moto_s3
    s3.mkdir(BUCKET)
    return env, s3


def _local_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _s3_digests(s3, root: str) -> dict[str, str]:
    out = {}
    for key in sorted(s3.find(root)):
        with s3.open(key, "rb") as fh:
            out[key[len(root) + 1:]] = hashlib.sha256(fh.read()).hexdigest()
    return out


_PIPELINE = """
import json, sys
from curate.dedup.config import DedupConfig
from curate.download.config import DownloadConfig
from curate.pipeline import PipelineConfig, run_pipeline
from curate.score.config import ClipConfig, ScoreConfig
from curate.shard.run import ShardConfig

a = json.loads(sys.argv[1])
config = PipelineConfig(
    download=DownloadConfig(input=a["input"], shard_size=100, threads=16, timeout=5,
                            allow_addresses=(f"127.0.0.1:{a['port']}",)),
    dedup=DedupConfig(hash_lists=(a["hash_list"],), eval_images=a["eval"]),
    score=ScoreConfig(clip=ClipConfig(probes=("is_red",))), shard=ShardConfig(samples_per_shard=40))
result = run_pipeline(a["run"], config)
sys.exit(0 if result.ok else 1)
"""


def _pipeline(run: str, input_: str, hash_list: str, eval_images: str, port: str, env: dict) -> None:
    """The whole pipeline in one fresh process (one Spark session, one local Ray), so that Spark's Python
    workers start with the S3 settings in their environment."""
    args = json.dumps({"run": run, "input": input_, "hash_list": hash_list, "eval": eval_images, "port": port})
    proc = subprocess.run([sys.executable, "-c", _PIPELINE, args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_the_pipeline_on_s3_equals_a_local_run(s3_env, small_pool, tmp_path):
    """Every stage (download, dedup, select, shard and audit on Spark, score on Ray) with its run on S3:
    the workers read their inputs from S3 and write their parts there; the same bytes as a local run.
    (`curate demo --out s3://...` is this path from the CLI.)"""
    env, s3 = s3_env
    pool, server = small_pool
    port = server.base_url.rsplit(":", 1)[1]
    s3.put(str(pool / "urls.parquet"), f"{BUCKET}/input/urls.parquet")
    s3.put(str(pool / "hashlist.txt"), f"{BUCKET}/input/hashlist.txt")
    s3.put(str(pool / "eval"), f"{BUCKET}/input/eval", recursive=True)
    local = tmp_path / "local"
    _pipeline(str(local), str(pool / "urls.parquet"), str(pool / "hashlist.txt"), str(pool / "eval"), port, env)
    remote = f"s3://{BUCKET}/run"
    _pipeline(remote, f"s3://{BUCKET}/input/urls.parquet", f"s3://{BUCKET}/input/hashlist.txt",
              f"s3://{BUCKET}/input/eval", port, env)

    want = _local_digests(local)
    got = _s3_digests(s3, f"{BUCKET}/run")
    assert set(got) == set(want)
    different = sorted(k for k in want if got[k] != want[k])
    # the plan records where its input was, and each stage's _fingerprint.json its configuration (the input,
    # hash list and eval paths) and its earlier stages' fingerprints; every other file is the same bytes
    stages = ("dedup", "download", "score", "select", "shard")
    assert different == sorted(["download/urls/_plan.json", *(f"{s}/_fingerprint.json" for s in stages)])
    assert any(k.startswith("dedup/decisions/") for k in got) and any(k.endswith(".tar") for k in got)
    assert any(k.startswith("score/scores/") for k in got) and any(k.startswith("score/embeddings/") for k in got)
    assert "score/_SUCCESS" in got and "select/uids.npy" in got and "shard/_SUCCESS" in got
    assert any(k.startswith("shard/manifest/part-") for k in got) and any(k.startswith("shard/0") for k in got)
    assert not [k for k in got if "/_tmp." in k or k.startswith(("download/_raw", "dedup/_work", "score/_pieces",
                                                                   "select/_work", "shard/_work"))]
    # every part and tar has its checksum sidecar, and `curate verify` checks them on the store
    assert any(k.startswith("shard/_sums/") and k.endswith(".tar.json") for k in got)
    report = verify_run(remote)
    assert report.ok and report.checked > 0, report.lines()
