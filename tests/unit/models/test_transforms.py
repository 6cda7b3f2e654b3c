"""Decoding and the tensor replay of open_clip's transform (the GPU path), checked against PIL on the CPU."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from PIL import Image

from curate.demo.shapes import random_scene, render
from curate.models.clip import ClipScorer
from curate.models.transforms import TensorTransform, decode_cuda, decode_pil, pil_transform


@pytest.fixture(scope="module")
def tiny() -> ClipScorer:
    torch.set_num_threads(1)
    return ClipScorer("tiny").load()


def _jpegs(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        render(random_scene(rng), rng.randint(40, 400), rng.randint(40, 400), rng).save(buf, format="JPEG")
        out.append(buf.getvalue())
    return out


def test_decode_pil_gives_rgb_arrays_or_a_reason():
    arr, err = decode_pil(_jpegs(1)[0])
    assert err is None and arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
    grey = io.BytesIO()
    Image.new("L", (9, 7), 128).save(grey, format="PNG")
    assert decode_pil(grey.getvalue())[0].shape == (7, 9, 3)
    for bad in (b"not an image", _jpegs(1)[0][:50], None):
        arr, err = decode_pil(bad)
        assert arr is None and err


def test_pil_transform_on_decoded_pixels_is_the_models_own(tiny):
    data = _jpegs(3)
    own = torch.stack([tiny.preprocess(Image.open(io.BytesIO(b)).convert("RGB")) for b in data])
    ours = torch.stack([pil_transform(tiny.preprocess)(decode_pil(b)[0]) for b in data])
    assert torch.equal(own, ours)


def test_tensor_transform_matches_pil_closely(tiny):
    """What the GPU path runs, here on CPU tensors: within a few grey levels of PIL, same embeddings."""
    transform = TensorTransform.from_preprocess(tiny.preprocess)
    assert transform is not None and transform.crop == (32, 32)
    arrays = [decode_pil(b)[0] for b in _jpegs(16, seed=3)]
    pil = torch.stack([pil_transform(tiny.preprocess)(a) for a in arrays])
    tens = torch.stack([transform(torch.tensor(a).permute(2, 0, 1)) for a in arrays])
    assert tens.shape == pil.shape
    assert (tens - pil).abs().mean() < 0.03  # normalised units: about 2 grey levels
    cos = (tiny.embed_pixels(tens) * tiny.embed_pixels(pil)).sum(1)
    assert cos.min() > 0.99


def test_tensor_transform_refuses_transforms_it_cannot_replay():
    from torchvision import transforms as T

    assert TensorTransform.from_preprocess(T.Compose([T.Resize(32), T.RandomCrop(32), T.ToTensor()])) is None


@pytest.mark.gpu
def test_cuda_decode_and_bf16_inference_match_the_cpu_path(tiny):
    data = _jpegs(8, seed=5)
    png = io.BytesIO()
    Image.open(io.BytesIO(data[0])).save(png, format="PNG")
    data += [png.getvalue(), b"broken"]
    decoded = decode_cuda(data, "cuda")
    assert decoded[-1][0] is None and decoded[-1][1]
    for (t, _), b in zip(decoded[:-1], data[:-1], strict=True):
        ref = torch.tensor(decode_pil(b)[0]).permute(2, 0, 1)
        assert t.is_cuda and t.shape == ref.shape
        assert (t.cpu().float() - ref.float()).abs().mean() < 3  # nvjpeg vs libjpeg: IDCT rounding
    gpu = ClipScorer("tiny", device="cuda").load()
    assert gpu.precision == "bf16"
    transform = TensorTransform.from_preprocess(gpu.preprocess)
    emb_gpu = gpu.embed_pixels(torch.stack([transform(t) for t, _ in decoded[:-1]]))
    emb_cpu = tiny.embed_pixels(torch.stack([pil_transform(tiny.preprocess)(decode_pil(b)[0]) for b in data[:-1]]))
    assert (emb_gpu * emb_cpu).sum(1).min() > 0.98


def test_batched_torchvision_decode_path_runs_on_cpu_too():
    """decode_cuda's code path (torchvision batch JPEG decode, PIL for the rest) with device='cpu'."""
    data = _jpegs(4, seed=9)
    png = io.BytesIO()
    Image.open(io.BytesIO(data[0])).save(png, format="PNG")
    decoded = decode_cuda([*data, png.getvalue(), b"\xff\xd8\xff broken jpeg", None], "cpu")
    for (t, err), b in zip(decoded[:5], [*data, png.getvalue()], strict=True):
        ref = torch.tensor(decode_pil(b)[0]).permute(2, 0, 1)
        assert err is None and t.shape == ref.shape and (t.float() - ref.float()).abs().mean() < 3
    assert [t for t, _ in decoded[5:]] == [None, None] and all(e for _, e in decoded[5:])
