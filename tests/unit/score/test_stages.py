"""The scoring stages in this process (no Ray): several models in one pass, probes, decode errors."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch
from safetensors.torch import load_file, save_file

from curate.models.spec import TINY_CLIP_DIR
from curate.score.config import ClipConfig
from curate.score.run import plan, read_shard
from curate.score.stages import ClipStage, DecodeConfig, DecodeStage, LangIdConfig, LangIdStage
from curate.score.synthetic import SyntheticRun, make_run
from curate.stage import build


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> tuple[pa.Table, pa.Table]:
    """(rows with caption and image bytes, labels) of a synthetic run: 60 images, 2 corrupt, 1 in 4
    captions mismatched, some PNGs."""
    run = str(tmp_path_factory.mktemp("run"))
    labels = make_run(run, SyntheticRun(n=60, shards=2, corrupt=2, seed=3))
    return pa.concat_tables([read_shard(item) for item in plan(run)]), labels


@pytest.fixture(scope="module")
def other_weights(tmp_path_factory) -> str:
    """The tiny architecture with perturbed weights: a second, different model."""
    state = load_file(str(TINY_CLIP_DIR / "open_clip_model.safetensors"))
    gen = torch.Generator().manual_seed(0)
    state = {k: (v.float() + 0.02 * torch.randn(v.shape, generator=gen)).to(v.dtype)
             if v.is_floating_point() else v for k, v in state.items()}
    path = tmp_path_factory.mktemp("w") / "other.safetensors"
    save_file(state, str(path))
    return str(path)


def _score(rows: pa.Table, config: ClipConfig, decode_stage: bool = True) -> pa.Table:
    torch.set_num_threads(1)
    if decode_stage:
        rows = build(DecodeStage, DecodeConfig())(rows)
    return build(ClipStage, config)(rows)


def test_several_models_in_one_pass_equal_each_model_alone(pool, other_weights):
    rows, _ = pool
    both = _score(rows, ClipConfig(model="tiny", extra_models=(f"other=tiny:{other_weights}",),
                                   embeddings=("all",)))
    alone_tiny = _score(rows, ClipConfig(model="tiny"))
    alone_other = _score(rows, ClipConfig(model=f"other=tiny:{other_weights}"))
    assert both.column("clip_tiny").equals(alone_tiny.column("clip_tiny"))
    assert both.column("clip_similarity").equals(alone_tiny.column("clip_similarity"))
    assert both.column("clip_other").equals(alone_other.column("clip_other"))
    assert both.column("image_embedding_other").equals(alone_other.column("image_embedding"))
    a, b = (np.asarray(both.column(c).to_pylist(), dtype=float) for c in ("clip_tiny", "clip_other"))
    assert np.nanmax(np.abs(a - b)) > 1e-3  # the two models really differ
    assert "image_embedding_other" not in alone_tiny.column_names


def test_tiny_model_separates_matched_and_mismatched_captions(pool):
    rows, labels = pool
    out = _score(rows, ClipConfig()).select(["uid", "status", "clip_similarity"]).join(labels, "uid")
    out = out.filter(pa.compute.equal(out.column("status"), "ok"))
    matched = np.asarray(out.filter(out.column("matched")).column("clip_similarity"))
    mismatched = np.asarray(out.filter(pa.compute.invert(out.column("matched"))).column("clip_similarity"))
    assert len(matched) > 30 and len(mismatched) > 10
    assert matched.min() > mismatched.max()


def test_corrupt_images_become_decode_error_rows(pool):
    rows, labels = pool
    for decode_stage in (True, False):
        out = _score(rows, ClipConfig(probes=("is_red",)), decode_stage=decode_stage)
        assert out.num_rows == rows.num_rows and out.column("uid").equals(rows.column("uid"))
        bad = set(labels.filter(labels.column("corrupt")).column("uid").to_pylist())
        errors = out.filter(pa.compute.equal(out.column("status"), "decode_error"))
        assert set(errors.column("uid").to_pylist()) == bad
        assert all(errors.column("error").to_pylist())
        for col in ("clip_similarity", "clip_tiny", "is_red"):
            assert errors.column(col).null_count == len(bad)
            assert out.column(col).null_count == len(bad)
        assert not {"image", "pixels"} & set(out.column_names)


def test_decoding_in_tasks_or_in_the_actor_gives_identical_outputs(pool):
    rows, _ = pool
    assert _score(rows, ClipConfig()).equals(_score(rows, ClipConfig(), decode_stage=False))


def test_probe_column_named_by_the_probe(pool):
    rows, _ = pool
    out = _score(rows, ClipConfig(probes=("is_red",)))
    scores = np.asarray(out.column("is_red").drop_null())
    assert ((scores >= 0) & (scores <= 1)).all() and scores.max() > 0.5 > scores.min()


def test_langid_stage_labels_every_caption():
    stage = build(LangIdStage, LangIdConfig())
    out = stage(pa.table({"caption": ["a red circle on a plain\nbackground", "un cercle rouge sur un fond uni",
                                      None]}))
    assert out.column("language").to_pylist()[:2] == ["en", "fr"] and out.column("language").null_count == 1


@pytest.mark.gpu
def test_cuda_stage_gives_the_cpu_stages_outputs(pool):
    """On a GPU the actor decodes JPEGs on the device and runs bf16: same rows, statuses and (within
    bf16 and resize rounding) the same similarities as the CPU path."""
    rows, _ = pool
    cpu = _score(rows, ClipConfig(probes=("is_red",)))
    gpu = _score(rows, ClipConfig(device="cuda", probes=("is_red",)), decode_stage=False)
    assert gpu.column("status").equals(cpu.column("status")) and gpu.column("uid").equals(cpu.column("uid"))
    a, b = (np.asarray(t.column("clip_similarity").to_pylist(), dtype=float) for t in (cpu, gpu))
    assert np.nanmax(np.abs(a - b)) < 0.05
