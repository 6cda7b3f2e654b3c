"""A real client: open_clip's own trainer (`python -m open_clip_train.main`) trains the bundled tiny CLIP
model for a few steps on CPU from our shards and our sizes.json."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import curate
from curate.shard.run import ShardConfig, run_shard
from curate.shard.synthetic import SyntheticRun, make_run

TINY = Path(curate.__file__).parent / "assets" / "tiny-clip"


@pytest.mark.slow
def test_open_clip_trainer_runs_on_our_shards(tmp_path):
    run = str(tmp_path / "run")
    make_run(run, SyntheticRun(n=64, per_shard=20, weights=True, safety_every=9))
    stats = run_shard(run, ShardConfig(samples_per_shard=32, passes=2, seed=0))
    sizes = json.loads((tmp_path / "run" / "shard" / "sizes.json").read_text())
    last = len(sizes) - 1
    cmd = [sys.executable, "-m", "open_clip_train.main",
           "--model", f"local-dir:{TINY}",
           "--train-data", str(tmp_path / "run" / "shard" / f"{{00000..{last:05d}}}.tar"),
           "--dataset-type", "webdataset", "--batch-size", "8", "--workers", "1", "--epochs", "1",
           "--device", "cpu", "--precision", "fp32", "--lr", "1e-4", "--warmup", "2", "--seed", "0",
           "--logs", str(tmp_path / "logs"), "--name", "tiny", "--save-frequency", "0", "--report-to", ""]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path)}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "train_num_samples: None" in log  # the size came from our sizes.json
    steps = re.findall(r"Train Epoch: 0 \[\s*(\d+)/(\d+)", log)
    assert steps and int(steps[-1][0]) == int(steps[-1][1]) >= stats["samples_written"] - 8
    losses = [float(x) for x in re.findall(r"Contrastive_loss: (\S+)", log)]  # nan and inf too
    assert losses and all(math.isfinite(x) for x in losses)  # neither nan nor inf
