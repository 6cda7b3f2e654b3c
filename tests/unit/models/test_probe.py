"""Probes on embeddings: the bundled is_red probe, spec checks, and MLP heads in LAION's layout."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from curate.demo.shapes import COLORS, SHAPES, Scene, render
from curate.models.clip import ClipScorer
from curate.models.probe import PROBE_DIR, Probe, ProbeError, ProbeSpec


@pytest.fixture(scope="module")
def tiny() -> ClipScorer:
    torch.set_num_threads(1)
    return ClipScorer("tiny").load()


def test_bundled_is_red_probe_tells_red_shapes_apart(tiny):
    assert sum(p.stat().st_size for p in PROBE_DIR.iterdir()) < 100_000
    probe = Probe(ProbeSpec.read("is_red"))
    rng = random.Random(7)
    scenes = [Scene(rng.choice(SHAPES), color) for color in sorted(COLORS) for _ in range(6)]
    images = [render(s, rng.randint(64, 300), rng.randint(64, 300), rng) for s in scenes]
    emb = tiny.embed_images(images)
    scores = probe.score(emb, np.zeros_like(emb))
    red = np.array([s.color == "red" for s in scenes])
    assert scores.dtype == np.float32 and ((scores >= 0) & (scores <= 1)).all()
    assert scores[red].min() > 0.5 > scores[~red].max()


def _write(tmp_path, spec: dict, state: dict) -> str:
    save_file(state, str(tmp_path / "w.safetensors"))
    (tmp_path / "p.json").write_text(json.dumps({"weights": "w.safetensors", **spec}))
    return str(tmp_path / "p.json")


def test_mlp_probe_in_laion_layout_matches_torch(tmp_path):
    """Linear layers with dropouts between them (keys layers.0, layers.2, ...), no hidden activation,
    the way LAION's aesthetic predictor is saved; input 'both' concatenates image and text embeddings."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 5), torch.nn.Dropout(0.1), torch.nn.Linear(5, 3),
                              torch.nn.Dropout(0.1), torch.nn.Linear(3, 1)).eval()
    state = {f"layers.{k}": v.contiguous() for k, v in net.state_dict().items()}
    path = _write(tmp_path, {"name": "aesthetic", "model": "m", "input": "both", "layers": [8, 5, 3, 1],
                             "hidden_activation": "none", "activation": "none"}, state)
    probe = Probe(ProbeSpec.read(path))
    img, txt = np.random.default_rng(0).normal(size=(2, 7, 4)).astype(np.float32)
    want = net(torch.from_numpy(np.concatenate([img, txt], 1)))[:, 0].detach().numpy()
    np.testing.assert_allclose(probe.score(img, txt), want, rtol=1e-5, atol=1e-6)


def test_relu_mlp_applies_hidden_activation(tmp_path):
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 1), torch.nn.Sigmoid())
    path = _write(tmp_path, {"name": "nsfw", "model": "m", "input": "text", "layers": [4, 6, 1]},
                  {k: v.contiguous() for k, v in net.state_dict().items()})
    x = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    want = net(torch.from_numpy(x))[:, 0].detach().numpy()
    np.testing.assert_allclose(Probe(ProbeSpec.read(path)).score(np.zeros_like(x), x), want, rtol=1e-5)


@pytest.mark.parametrize("spec, match", [
    ({"name": "Bad-Name", "model": "m", "input": "image", "layers": [4, 1]}, "must match"),
    ({"name": "clip_x", "model": "m", "input": "image", "layers": [4, 1]}, "must match"),
    ({"name": "p", "model": "m", "input": "pixels", "layers": [4, 1]}, "input"),
    ({"name": "p", "model": "m", "input": "image", "layers": [4, 2]}, "to 1 output"),
    ({"name": "p", "model": "m", "input": "image", "layers": [5, 1]}, "do not fit"),
    ({"model": "m", "input": "image", "layers": [4, 1]}, "lacks"),
])
def test_bad_probe_specs_are_one_line_errors(tmp_path, spec, match):
    path = _write(tmp_path, spec, {"0.weight": torch.zeros(1, 4), "0.bias": torch.zeros(1)})
    with pytest.raises(ProbeError, match=match):
        Probe(ProbeSpec.read(path))


def test_probe_refuses_the_wrong_input_width(tmp_path):
    path = _write(tmp_path, {"name": "p", "model": "m", "input": "image", "layers": [4, 1]},
                  {"0.weight": torch.zeros(1, 4), "0.bias": torch.zeros(1)})
    with pytest.raises(ProbeError, match="input width 3"):
        Probe(ProbeSpec.read(path)).score(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))
