"""The scoring stages in this process (no Ray): several models in one pass, probes, decode errors."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
import torch
from safetensors.torch import load_file, save_file

from curate.models.clip import ClipScorer
from curate.models.spec import TINY_CLIP_DIR
from curate.score.config import ClipConfig
from curate.score.run import plan, read_shard
from curate.score.stages import ClipStage, DecodeStage, LangIdConfig, LangIdStage, decode_config
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
        rows = build(DecodeStage, decode_config(config))(rows)
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
        assert not {"image", "_px0"} & set(out.column_names)


def test_decoding_in_tasks_or_in_the_actor_gives_identical_outputs(pool):
    rows, _ = pool
    assert _score(rows, ClipConfig()).equals(_score(rows, ClipConfig(), decode_stage=False))


def test_decode_stage_ships_each_geometry_once_at_the_models_input_size(pool, other_weights):
    rows, labels = pool
    config = ClipConfig(model="tiny", extra_models=(f"other=tiny:{other_weights}",))
    out = build(DecodeStage, decode_config(config))(rows)
    assert [c for c in out.column_names if c.startswith("_px")] == ["_px0"]  # both models: 32 x 32, bicubic
    assert out.schema.field("_px0").type == pa.binary(32 * 32 * 3)
    assert out.column("_px0").null_count == labels.column("corrupt").to_pylist().count(True)


def test_exact_decode_embeds_what_the_models_own_transform_gives(pool):
    """--exact-decode: the decode tasks' geometry and the actor's batched tensor steps together are the
    model's own transform, bit for bit (the path the stage took before it split them)."""
    from PIL import Image

    rows, _ = pool
    out = _score(rows, ClipConfig(decoder="exact", embeddings=("all",)))
    scorer = ClipScorer("tiny").load()
    ok = [i for i, s in enumerate(out.column("status").to_pylist()) if s == "ok"]
    images = [Image.open(io.BytesIO(rows.column("image")[i].as_py())).convert("RGB") for i in ok]
    own = np.concatenate([scorer.embed_pixels(torch.stack([scorer.preprocess(im) for im in images[s:s + 64]]))
                          for s in range(0, len(images), 64)])
    ours = np.asarray(out.column("image_embedding").to_pylist(), np.float32)[ok]
    assert np.array_equal(ours, own.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("decoder", ["simplejpeg", "pil-draft"])
def test_fast_decoders_reject_what_exact_rejects_and_really_decode_otherwise(pool, decoder):
    """The fast decoders are another path (scores move: bench/RESULTS.md measures how far), but every image
    the exact path rejects they reject with the same status."""
    rows, _ = pool
    fast, exact = _score(rows, ClipConfig(decoder=decoder)), _score(rows, ClipConfig())
    assert fast.column("status").equals(exact.column("status"))
    a, b = (np.asarray(t.column("clip_similarity").to_pylist(), dtype=float) for t in (fast, exact))
    assert np.nanmax(np.abs(a - b)) > 0


@pytest.mark.parametrize(("decoder", "min_side", "shape"), [
    ("simplejpeg", 32, (38, 50)), ("simplejpeg", 64, (75, 100)), ("simplejpeg", 300, (300, 400)),
    ("pil-draft", 32, (38, 50)), ("pil-draft", 64, (75, 100)), ("pil-draft", 100, (150, 200)),
    ("exact", 32, (300, 400))])
def test_a_jpeg_decodes_at_the_smallest_dct_scale_covering_the_input(decoder, min_side, shape):
    """400 x 300: libjpeg scales by k/8 (simplejpeg) or 1/2, 1/4, 1/8 (PIL's draft), rounding up; the
    smallest scale whose sides both reach min_side wins (32: 1/8 gives 50 x 38; 64: 2/8 and 1/4 give
    100 x 75; 100 with draft: 1/4 gives a 75 side, so 1/2)."""
    from PIL import Image

    from curate.models.transforms import decode

    buf = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 30, 60)).save(buf, "JPEG")
    arr, err = decode(buf.getvalue(), min_side, decoder)
    assert err is None and arr.shape == (*shape, 3)


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


@pytest.mark.gpu
def test_jpegs_nvjpeg_refuses_are_flagged_per_row(pool):
    """A damaged JPEG in a GPU-decoded batch: the rest of the batch still decodes on the device, the damaged
    one is flagged (the stage's stats count the flags) and becomes a decode_error row."""
    rows, _ = pool
    broken = next(b for b in rows.column("image").to_pylist() if b[:3] == b"\xff\xd8\xff")[:200]
    rows = rows.set_column(rows.column_names.index("image"), "image",
                           pa.array([broken, *rows.column("image").to_pylist()[1:]], pa.binary()))
    out = _score(rows, ClipConfig(device="cuda"), decode_stage=False)
    flags = out.column("_gpu_decode_fallback").to_pylist()
    assert flags[0] and out.column("status")[0].as_py() == "decode_error"
    assert sum(flags) == 1
