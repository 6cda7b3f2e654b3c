"""Decoding, the split of open_clip's transform into geometry (decode tasks) and tensor steps (a batch in the
actor), and the tensor replay of the transform (the GPU path), checked against the model's own transform."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import Compose

from curate.demo.shapes import random_scene, render
from curate.models.clip import ClipScorer
from curate.models.spec import ClipSpec
from curate.models.transforms import (
    Geometry,
    TensorTransform,
    decode,
    decode_cuda,
    decode_pil,
    geometry,
    geometry_steps,
    normalize_of,
    pil_transform,
    to_tensor_batch,
)


@pytest.fixture(scope="module")
def tiny() -> ClipScorer:
    torch.set_num_threads(1)
    return ClipScorer("tiny").load()


def _jpegs(n: int, seed: int = 0, sides: tuple[int, int] = (40, 400)) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        render(random_scene(rng), rng.randint(*sides), rng.randint(*sides), rng).save(buf, format="JPEG")
        out.append(buf.getvalue())
    return out


def _jpeg(width: int, height: int, mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), {"RGB": (200, 40, 10), "L": 90, "CMYK": (0, 80, 160, 20)}[mode]).save(
        buf, format="JPEG")
    return buf.getvalue()


def test_fast_decoders_reduce_jpegs_to_the_smallest_scale_covering_the_input():
    data = _jpeg(512, 384)
    # libjpeg-turbo scales by n/8: 384 * 1/8 = 48 >= 32; for 224, 384 * 5/8 = 240 (4/8 would give 192 < 224)
    assert decode(data, 32, "simplejpeg")[0].shape == (48, 64, 3)
    assert decode(data, 224, "simplejpeg")[0].shape == (240, 320, 3)
    # PIL's draft scales by 1/2, 1/4 or 1/8 only: 384 / 8 = 48; for 224 no power of two fits
    assert decode(data, 32, "pil-draft")[0].shape == (48, 64, 3)
    assert decode(data, 224, "pil-draft")[0].shape == (384, 512, 3)
    assert decode(data, 32, "exact")[0].shape == (384, 512, 3)
    assert decode(_jpeg(20, 30), 224, "simplejpeg")[0].shape == (30, 20, 3)  # never upscaled


def test_fast_decoders_send_everything_else_the_exact_way():
    png = io.BytesIO()
    Image.new("RGB", (300, 200), (1, 2, 3)).save(png, format="PNG")
    grey, cmyk = _jpeg(64, 48, "L"), _jpeg(64, 48, "CMYK")
    for decoder in ("simplejpeg", "pil-draft"):
        assert decode(png.getvalue(), 32, decoder)[0].shape == (200, 300, 3)  # not a JPEG: full size
        assert np.array_equal(decode(cmyk, 200, decoder)[0], decode_pil(cmyk)[0])
        assert np.array_equal(decode(grey, 200, decoder)[0], decode_pil(grey)[0])  # grey replicated to RGB
        for bad in (b"not an image", _jpegs(1)[0][:50], None):
            assert decode(bad, 32, decoder) == decode_pil(bad)  # same decode_error message
    with pytest.raises(ValueError, match="not one of"):
        decode(png.getvalue(), 32, "fastest")


def test_geometry_from_configs_is_the_loaded_models_own(tiny, tmp_path):
    import open_clip

    assert geometry(ClipSpec.tiny()) == Geometry((32, 32))
    assert repr(Geometry((32, 32)).transform()) == repr(Compose(geometry_steps(tiny.preprocess)))
    weights = tmp_path / "b32.pt"
    weights.write_bytes(b"")  # only its name is read
    _, _, b32 = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    assert geometry(ClipSpec("ViT-B-32", str(weights))) == Geometry((224, 224))
    assert repr(geometry(ClipSpec("ViT-B-32", str(weights))).transform()) == repr(Compose(geometry_steps(b32)))
    # pretrained tags bring their own preprocessing: SigLIP's webli weights squash the image to 224 x 224
    assert geometry(ClipSpec("ViT-B-16-SigLIP", "webli")) == Geometry((224, 224), resize_mode="squash")
    assert geometry(ClipSpec("ViT-L-14", "openai")) == Geometry((224, 224))


def test_geometry_pixels_then_one_tensor_batch_equal_the_models_transform_bit_for_bit(tiny):
    data = _jpegs(12, seed=4)
    own = torch.stack([tiny.preprocess(Image.open(io.BytesIO(b)).convert("RGB")) for b in data])
    g, transform = Geometry((32, 32)), Geometry((32, 32)).transform()
    pixels = np.stack([g.pixels(decode(b, 32, "exact")[0], transform) for b in data])
    assert pixels.dtype == np.uint8 and pixels.shape == (12, 32, 32, 3)
    assert torch.equal(to_tensor_batch(pixels, *normalize_of(tiny.preprocess)), own)


def test_geometry_split_refuses_transforms_without_tensor_steps():
    from torchvision import transforms as T

    with pytest.raises(ValueError, match="cannot split"):
        geometry_steps(T.Compose([T.Resize(32), T.CenterCrop(32)]))


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
    decoded, refused = decode_cuda(data, "cuda")
    assert decoded[-1][0] is None and decoded[-1][1] and refused == []  # "broken" is no JPEG: PIL's to refuse
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
    decoded, refused = decode_cuda([*data, png.getvalue(), b"\xff\xd8\xff broken jpeg", None], "cpu")
    assert refused == [5]  # the damaged JPEG: counted, then PIL's decode_error
    for (t, err), b in zip(decoded[:5], [*data, png.getvalue()], strict=True):
        ref = torch.tensor(decode_pil(b)[0]).permute(2, 0, 1)
        assert err is None and t.shape == ref.shape and (t.float() - ref.float()).abs().mean() < 3
    assert [t for t, _ in decoded[5:]] == [None, None] and all(e for _, e in decoded[5:])
