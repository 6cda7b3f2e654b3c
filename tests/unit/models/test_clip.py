"""The open_clip wrapper against the bundled tiny model, offline: nothing here touches a network."""

from __future__ import annotations

import argparse
import json
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from curate.demo.shapes import english_caption, other_scene, random_scene, render
from curate.models.clip import ClipScorer
from curate.models.spec import (
    TINY_CLIP_DIR,
    ClipSpec,
    ModelLoadError,
    file_sha256,
    read_state_dict,
)

open_clip = pytest.importorskip("open_clip")

TINY_CFG = json.loads((TINY_CLIP_DIR / "open_clip_config.json").read_text())["model_cfg"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny() -> ClipScorer:
    return ClipScorer(ClipSpec.parse("tiny")).load()


def _pairs(n: int, seed: int) -> tuple[list[Image.Image], list[str], list[str]]:
    """Shapes at pool-like sizes with a matching and a clearly mismatched English caption each."""
    rng = random.Random(seed)
    images, matched, mismatched = [], [], []
    for _ in range(n):
        scene = random_scene(rng)
        short, long = rng.randint(60, 640), rng.randint(60, 1200)
        w, h = (short, max(short, long)) if rng.random() < 0.5 else (max(short, long), short)
        images.append(render(scene, w, h, rng))
        matched.append(english_caption(scene, rng))
        mismatched.append(english_caption(other_scene(scene, rng), rng))
    return images, matched, mismatched


# -- the bundled model ---------------------------------------------------------------------------------
def test_bundled_asset_is_small_and_plain_open_clip_loads_it() -> None:
    weights = TINY_CLIP_DIR / "open_clip_model.safetensors"
    assert weights.stat().st_size < 4_000_000
    assert {"model_cfg", "preprocess_cfg"} <= json.loads((TINY_CLIP_DIR / "open_clip_config.json").read_text()).keys()
    # The form Spark and Ray workers can use with nothing registered: open_clip's own local-dir: schema.
    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{TINY_CLIP_DIR}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{TINY_CLIP_DIR}")
    assert isinstance(tokenizer, open_clip.SimpleTokenizer) and tokenizer.context_length == 16
    assert all(p.dtype == torch.float32 for p in model.parameters())  # float16 on disk, float32 in memory
    stored = read_state_dict(weights)
    assert all(v.dtype == torch.float16 for v in stored.values())
    assert torch.equal(model.state_dict()["logit_scale"], stored["logit_scale"].float())


def test_scorer_matches_plain_open_clip(tiny: ClipScorer) -> None:
    images, captions, _ = _pairs(4, seed=1)
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{TINY_CLIP_DIR}")
    tokenizer = open_clip.get_tokenizer(f"local-dir:{TINY_CLIP_DIR}")
    with torch.no_grad():
        img = model.eval().encode_image(torch.stack([preprocess(im) for im in images]), normalize=True)
        txt = model.encode_text(tokenizer(captions), normalize=True)
    np.testing.assert_allclose(tiny.embed_images(images), img.numpy(), atol=1e-5)
    np.testing.assert_allclose(tiny.embed_texts(captions), txt.numpy(), atol=1e-5)


def test_metadata_names_the_exact_weights(tiny: ClipScorer) -> None:
    weights = TINY_CLIP_DIR / "open_clip_model.safetensors"
    assert tiny.model_name == "tiny" and tiny.pretrained is None
    assert tiny.revision == f"sha256:{file_sha256(weights)}"
    assert tiny.metadata() == {"clip_model": "tiny", "clip_pretrained": "", "clip_revision": tiny.revision}


def test_embeddings_are_unit_norm_float32() -> None:
    images, captions, _ = _pairs(5, seed=2)
    images.append(Image.new("L", (90, 300), 128))  # greyscale and RGBA go through the RGB conversion
    images.append(Image.new("RGBA", (50, 50), (255, 0, 0, 128)))
    tiny = ClipScorer("tiny", batch_size=3).load()  # several batches, the last one partial
    img, txt = tiny.embed_images(images), tiny.embed_texts(captions)
    assert img.dtype == txt.dtype == np.float32
    assert img.shape == (7, TINY_CFG["embed_dim"]) and txt.shape == (5, TINY_CFG["embed_dim"])
    assert tiny.embed_dim == TINY_CFG["embed_dim"]
    np.testing.assert_allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, atol=1e-5)
    assert tiny.embed_images([]).shape == tiny.embed_texts([]).shape == (0, TINY_CFG["embed_dim"])


def test_matched_pairs_score_clearly_above_mismatched(tiny: ClipScorer) -> None:
    images, matched, mismatched = _pairs(48, seed=3)
    img = tiny.embed_images(images)
    good = tiny.similarity(img, tiny.embed_texts(matched))
    bad = tiny.similarity(img, tiny.embed_texts(mismatched))
    assert good.mean() - bad.mean() > 0.5, (good.mean(), bad.mean())
    assert good.mean() > 0.7
    assert np.mean(good > bad) >= 0.9


def test_score_is_rowwise_cosine(tiny: ClipScorer) -> None:
    images, captions, _ = _pairs(3, seed=4)
    img, txt = tiny.embed_images(images), tiny.embed_texts(captions)
    np.testing.assert_allclose(tiny.score(images, captions), np.sum(img * txt, axis=1), atol=1e-5)
    np.testing.assert_allclose(ClipScorer.similarity(3 * img, txt), np.sum(img * txt, axis=1), atol=1e-5)
    with pytest.raises(ValueError):
        ClipScorer.similarity(img, txt[:2])
    with pytest.raises(ValueError):
        tiny.score(images, captions[:2])


def test_embedding_before_load_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="load"):
        ClipScorer("tiny").embed_texts(["a red circle"])


# -- local checkpoints ---------------------------------------------------------------------------------
def _tiny_state() -> dict[str, torch.Tensor]:
    return {k: v.float() for k, v in read_state_dict(TINY_CLIP_DIR / "open_clip_model.safetensors").items()}


@pytest.mark.parametrize("wrap", ["plain", "training_checkpoint"])
def test_pt_checkpoint_round_trip(tiny: ClipScorer, tmp_path: Path, wrap: str) -> None:
    state = _tiny_state()
    path = tmp_path / "epoch_1.pt"
    if wrap == "plain":
        torch.save(state, path)
    else:  # what open_clip's trainer writes, with DistributedDataParallel's "module." prefix
        torch.save({"epoch": 1, "name": "run", "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    scorer = ClipScorer(f"tiny:{path}").load()
    assert scorer.revision == f"sha256:{file_sha256(path)}"
    images, captions, _ = _pairs(2, seed=5)
    np.testing.assert_allclose(scorer.embed_images(images), tiny.embed_images(images), atol=1e-6)
    np.testing.assert_allclose(scorer.embed_texts(captions), tiny.embed_texts(captions), atol=1e-6)


def test_pt_checkpoint_loads_with_weights_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict] = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    path = tmp_path / "w.pt"
    torch.save(_tiny_state(), path)
    ClipScorer(ClipSpec("tiny", str(path))).load()
    assert calls and all(c.get("weights_only") is True for c in calls)


def test_checkpoint_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    """Any object beyond tensors and plain containers (here the argparse args many trainers save)."""
    path = tmp_path / "with_args.pt"
    torch.save({"state_dict": _tiny_state(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(ModelLoadError, match="weights_only=True") as info:
        ClipScorer(f"tiny:{path}").load()
    assert "argparse.Namespace" in str(info.value) and "\n" not in str(info.value)


def test_local_dir_copy_loads_and_checkpoint_must_fit(tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / "open_clip_config.json").write_bytes((TINY_CLIP_DIR / "open_clip_config.json").read_bytes())
    (folder / "open_clip_model.safetensors").write_bytes((TINY_CLIP_DIR / "open_clip_model.safetensors").read_bytes())
    scorer = ClipScorer(f"local-dir:{folder}").load()
    assert scorer.embed_texts(["a red star"]).shape == (1, TINY_CFG["embed_dim"])

    state = _tiny_state()
    state.pop("logit_scale")
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(ModelLoadError, match="do not fit"):
        ClipScorer(f"tiny:{tmp_path / 'partial.pt'}").load()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tiny:/nonexistent/weights.pt", "does not exist"),
        ("ViT-B-32:/nonexistent/epoch_9.pt", "does not exist"),
        ("local-dir:/nonexistent/folder", "no open_clip_config.json"),
        ("ViT-B-32:no_such_tag", "neither an open_clip pretrained tag"),
        ("No-Such-Arch:openai", "not an open_clip architecture"),
    ],
)
def test_load_errors_are_actionable(spec: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message) as info:
        ClipScorer(spec).load()
    assert "\n" not in str(info.value)


def test_garbage_checkpoint_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="cannot read checkpoint"):
        ClipScorer(f"tiny:{path}").load()


def test_hub_tag_goes_through_open_clip_and_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tag is open_clip's to download; offline, that fails, and the message says what to do."""
    seen: list[dict] = []

    def offline(cfg, *args, **kwargs):
        seen.append(cfg)
        raise OSError("network is unreachable")

    monkeypatch.setattr(open_clip.factory, "download_pretrained", offline)  # never reach the network
    with pytest.raises(ModelLoadError, match="NAME:/path/to/checkpoint") as info:
        ClipScorer("RN50:openai").load()
    assert seen and (seen[0].get("hf_hub") or seen[0].get("url"))
    assert "network is unreachable" in str(info.value) and "\n" not in str(info.value)


def test_cuda_without_gpu_is_a_load_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ModelLoadError, match="CUDA"):
        ClipScorer("tiny", device="cuda").load()



def test_unloaded_scorer_pickles_for_workers() -> None:
    """Built on the driver, shipped to Spark/Ray workers, loaded there."""
    scorer = pickle.loads(pickle.dumps(ClipScorer("tiny", batch_size=8)))
    assert (scorer.spec, scorer.batch_size) == (ClipSpec.tiny(), 8)
    assert scorer.load().embed_texts(["a blue cross"]).shape == (1, TINY_CFG["embed_dim"])
