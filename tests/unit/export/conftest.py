"""A finished shard run (60 samples in 3 tars of 25, 25 and 10) with a selection record and score models,
built once per module; Hugging Face libraries kept offline with their caches in the test's folder."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.shard.run import ShardConfig, run_shard
from curate.shard.synthetic import SyntheticRun, make_run

SELECTION = {"kept": 60, "pool": 60, "policy": {"name": "datacomp", "seed": 0, "target_size": None},
             "steps": [{"name": "clip_score", "rejected": 0,
                        "resolved": {"column": "clip_similarity", "threshold": 0.3}}]}
MODELS = {"models": [{"alias": "tiny", "name": "tiny", "pretrained": "", "columns": ["clip_similarity", "clip_tiny"],
                      "revision": "sha256:" + "ab" * 32}], "langid_model": "lid.176.ftz",
          "langid_revision": "sha256:" + "cd" * 32, "probes": []}


def build_run(root: Path, **shard) -> Path:
    """A synthetic run with select's selection.json and score's models.json, sharded 25 per tar."""
    run = root / "run"
    make_run(str(run), SyntheticRun())
    (run / "select" / "selection.json").write_text(json.dumps(SELECTION))
    (run / "score" / "models.json").write_text(json.dumps(MODELS))
    run_shard(str(run), ShardConfig(samples_per_shard=25, **shard))
    return run


@pytest.fixture(scope="module")
def shard_run(tmp_path_factory) -> Path:
    return build_run(tmp_path_factory.mktemp("export"))


@pytest.fixture(autouse=True)
def hf_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))


@dataclass(frozen=True)
class Reference:
    """What every format must give back: the manifest's rows in stream order and the tars' image bytes."""

    uids: list[str]
    captions: list[str]
    keys: list[str]
    images: dict[str, bytes]  # key -> bytes stored in the shard tars


def reference_of(run: Path) -> Reference:
    parts = sorted((run / "shard" / "manifest").glob("part-*.parquet"))
    m = pa.concat_tables([pq.read_table(p) for p in parts])
    images = {}
    for tar in sorted((run / "shard").glob("*.tar")):
        with tarfile.open(tar) as t:
            for member in t:
                if member.name.endswith(".jpg"):
                    images[member.name.split(".", 1)[0]] = t.extractfile(member).read()
    return Reference(m.column("uid").to_pylist(), m.column("caption").to_pylist(), m.column("key").to_pylist(),
                     images)


@pytest.fixture(scope="module")
def ref(shard_run) -> Reference:
    return reference_of(shard_run)


@pytest.fixture
def make_shard_run():
    """build_run(root, **ShardConfig fields) for a test that needs its own run."""
    return build_run
