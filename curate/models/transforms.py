"""Decoding and preprocessing for the score stage.

Each open_clip model brings its own inference transform: a geometry part on a PIL image (`Resize` of the
shortest side, bicubic, then `CenterCrop`; or open_clip's `longest`/`squash` modes) followed by
`ToTensor` and `Normalize`. The score stage splits it there: decode tasks run the geometry part
(`Geometry.transform`, built by open_clip's own `image_transform` from the model's preprocessing config,
which `geometry` resolves without loading weights) and ship uint8 pixels of the model's input size; the
model's actor then converts a whole batch at once (`to_tensor_batch`), bit for bit what `ToTensor` and
`Normalize` give image by image.

Decoding (`decode`): `exact` (the default) is PIL's full decode, what the model's transform would see.
`simplejpeg` and `pil-draft` (`--decoder`) let libjpeg-turbo decode a JPEG at the smallest DCT scale (1/8 steps, or 1/2,
1/4, 1/8 with PIL's `draft`) whose sides are both at least the model's input, then the model's exact
resize runs on that; anything else (PNG, CMYK JPEGs, damaged files) takes the exact path, so both paths
reject the same images with the same message. bench/RESULTS.md compares their speed and scores.

On a GPU, `decode_cuda` decodes JPEGs with nvjpeg and `TensorTransform` replays the geometry on device
tensors; bicubic antialiased resizing on tensors differs from PIL's by a few grey levels, so GPU
embeddings agree with CPU ones to about 1e-3 in cosine, not bit for bit. Nothing here touches CUDA at
import time.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

# Refuse to decode more pixels than this (decompression bombs); such an image is a decode_error.
MAX_PIXELS = 64_000_000
JPEG_MAGIC = b"\xff\xd8\xff"
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
DECODERS = ("simplejpeg", "pil-draft", "exact")
# exact by default: on the sample pool the DCT-scaled decoders moved the tiny model's similarities by up to
# 0.068 (issue 14 asks for 0.005 before a fast decoder becomes the default; bench/RESULTS.md)
DEFAULT_DECODER = "exact"
_TENSOR_STEPS = ("MaybeConvertMode", "MaybeToTensor", "ToTensor", "Normalize")


def decode_pil(data: bytes | None) -> tuple[np.ndarray | None, str | None]:
    """An RGB uint8 HWC array, or None and why the bytes could not be decoded."""
    if data is None:
        return None, "no image bytes"
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            return None, f"{img.width}x{img.height} exceeds {MAX_PIXELS} pixels"
        return np.asarray(img.convert("RGB")), None
    except Exception as exc:  # any decoder failure is this sample's status, never the worker's death
        # deterministic text (no object addresses), so a rerun writes the same bytes
        return None, f"{type(exc).__name__}: " + _ADDRESS.sub("", str(exc))


def _decode_simplejpeg(data: bytes, min_side: int) -> np.ndarray | None:
    import simplejpeg

    h, w, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    if h * w > MAX_PIXELS or colorspace not in ("YCbCr", "Gray"):  # CMYK/YCCK: PIL converts them its own way
        return None
    return simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=min_side, min_width=min_side)


def _decode_draft(data: bytes, min_side: int) -> np.ndarray | None:
    img = Image.open(io.BytesIO(data))
    if img.width * img.height > MAX_PIXELS:
        return None
    img.draft("RGB", (min_side, min_side))
    return np.asarray(img.convert("RGB"))


_REDUCED = {"simplejpeg": _decode_simplejpeg, "pil-draft": _decode_draft}


def decode(data: bytes | None, min_side: int, decoder: str = DEFAULT_DECODER) -> tuple[np.ndarray | None, str | None]:
    """`decode_pil`, or with a fast `decoder` a JPEG at the smallest DCT scale whose sides are both at
    least `min_side` (never upscaled); what the fast decoder refuses goes the exact way."""
    fast = _REDUCED.get(decoder)
    if fast is not None and data is not None and data[:3] == JPEG_MAGIC:
        try:
            arr = fast(data, min_side)
            if arr is not None:
                return arr, None
        except ImportError:  # a missing decoder is the installation's error, never a silent exact decode
            raise
        except Exception:  # CMYK, damaged or unusual files: the exact path decides, with its message
            pass
    elif fast is None and decoder != "exact":
        raise ValueError(f"decoder {decoder!r} is not one of {DECODERS}")
    return decode_pil(data)


@dataclass(frozen=True)
class Geometry:
    """The geometry steps of an open_clip inference transform (before ToTensor): the output is
    `size` (height, width) pixels."""

    size: tuple[int, int]
    resize_mode: str = "shortest"
    interpolation: str = "bicubic"
    fill_color: int = 0

    @property
    def min_side(self) -> int:
        """A decoded image whose sides are both at least this loses nothing to the resize."""
        return max(self.size)

    @property
    def nbytes(self) -> int:
        return self.size[0] * self.size[1] * 3

    def transform(self) -> Callable[[Image.Image], Image.Image]:
        """open_clip's own steps for this geometry (`image_transform`, inference), without the tensor ones."""
        from open_clip.transform import image_transform
        from torchvision.transforms import Compose

        full = image_transform(self.size, is_train=False, resize_mode=self.resize_mode,
                               interpolation=self.interpolation, fill_color=self.fill_color)
        return Compose(geometry_steps(full))

    def pixels(self, arr: np.ndarray, transform: Callable[[Image.Image], Image.Image] | None = None) -> np.ndarray:
        """The model's input pixels (uint8, height x width x 3) of a decoded RGB image."""
        out = np.asarray((transform or self.transform())(Image.fromarray(arr)).convert("RGB"))
        if out.shape != (*self.size, 3):
            raise ValueError(f"geometry {self} gave {out.shape}")
        return out


def geometry_steps(preprocess: Any) -> list:
    """The steps of an open_clip transform before its tensor conversion; ValueError when it holds any
    step we cannot split there (a training transform, say)."""
    steps = list(getattr(preprocess, "transforms", []))
    names = [type(t).__name__ for t in steps]
    tail = [n for n in names if n in _TENSOR_STEPS]
    if not tail or names[-len(tail):] != tail or "Normalize" not in tail:
        raise ValueError(f"cannot split transform {preprocess!r} into geometry and tensor steps")
    return steps[:len(names) - len(tail)]


def normalize_of(preprocess: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of an open_clip transform's Normalize step."""
    norm = [t for t in getattr(preprocess, "transforms", []) if type(t).__name__ == "Normalize"]
    if not norm:
        raise ValueError(f"transform {preprocess!r} has no Normalize step")
    return tuple(float(m) for m in norm[-1].mean), tuple(float(s) for s in norm[-1].std)


def to_tensor_batch(pixels: Any, mean: Sequence[float], std: Sequence[float]) -> Any:
    """uint8 NHWC pixels (numpy or a tensor, on any device) to the model's normalised float NCHW batch:
    the same elementwise operations, in the same order, as torchvision's ToTensor then Normalize."""
    import torch
    from torchvision.transforms import functional as F

    x = torch.as_tensor(pixels).permute(0, 3, 1, 2).contiguous().to(torch.float32).div(255)
    return F.normalize(x, list(mean), list(std), inplace=True)


def geometry(spec: Any) -> Geometry:
    """The geometry open_clip 3.3.0 gives `spec`'s transform (`factory.create_model`: defaults, then the
    local-dir or Hub config's preprocess_cfg, or the pretrained tag's; the size is the vision tower's),
    read from configs only. The model's actor checks it against the transform it loaded."""
    from curate.models.spec import HF_HUB_PREFIX, LOCAL_DIR_PREFIX, ModelLoadError, load_plan

    plan = load_plan(spec)
    cfg: dict[str, Any] = {}
    if plan.arch.startswith(LOCAL_DIR_PREFIX):
        from pathlib import Path

        from curate.models.spec import CONFIG_FILE

        data = json.loads((Path(plan.arch[len(LOCAL_DIR_PREFIX):]) / CONFIG_FILE).read_text())
        model_cfg, cfg = data.get("model_cfg", {}), data.get("preprocess_cfg") or {}
    else:
        import open_clip

        if plan.arch.startswith(HF_HUB_PREFIX):
            from open_clip.factory import _get_hf_config

            data = _get_hf_config(plan.arch[len(HF_HUB_PREFIX):])
            model_cfg, cfg = data.get("model_cfg", {}), data.get("preprocess_cfg") or {}
        else:
            model_cfg = open_clip.get_model_config(plan.arch.replace("/", "-")) or {}
            if plan.tag is not None:
                cfg = open_clip.get_pretrained_cfg(plan.arch, plan.tag) or {}
    if not model_cfg:
        raise ModelLoadError(f"{spec}: no open_clip model config found")
    size = model_cfg.get("vision_cfg", {}).get("image_size", cfg.get("size", 224))
    size = (int(size), int(size)) if isinstance(size, int | float) else (int(size[0]), int(size[-1]))
    pick = {k: cfg[k] for k in ("resize_mode", "interpolation", "fill_color") if cfg.get(k) is not None}
    return Geometry(size=size, **pick)


def decode_cuda(images: Sequence[bytes | None], device: str) -> tuple[list[tuple[Any, str | None]], list[int]]:
    """Decode JPEGs on the GPU with torchvision (nvjpeg), anything else with PIL. Returns a list of
    (uint8 CHW tensor on `device`, None) or (None, error), and the indices of the JPEGs nvjpeg refused
    (decoded by PIL instead, or failed there too): the caller counts and reports them."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    out: list[tuple[Any, str | None]] = [(None, None)] * len(images)
    jpegs = [i for i, b in enumerate(images) if b is not None and b[:3] == JPEG_MAGIC]
    refused: list[int] = []
    if jpegs:
        datas = [torch.frombuffer(bytearray(images[i]), dtype=torch.uint8) for i in jpegs]
        try:
            decoded = decode_jpeg(datas, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:  # one bad JPEG fails the batch: find it, decoding one at a time
            decoded = [_decode_one(decode_jpeg, d, device) for d in datas]
        for i, t in zip(jpegs, decoded, strict=True):
            if t is None:
                refused.append(i)
            elif t.shape[1] * t.shape[2] <= MAX_PIXELS:
                out[i] = (t, None)
    for i, b in enumerate(images):
        if out[i][0] is None:
            arr, err = decode_pil(b)
            out[i] = (None, err) if arr is None else (torch.tensor(arr).permute(2, 0, 1).to(device), None)
    return out, refused


def _decode_one(decode_jpeg: Callable, data: Any, device: str) -> Any:
    from torchvision.io import ImageReadMode

    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        return None


class TensorTransform:
    """An open_clip inference transform replayed on uint8 CHW tensors: resize the shortest side
    (bicubic, antialiased), centre-crop, scale to [0, 1], normalise."""

    def __init__(self, size: int, crop: tuple[int, int], mean: Sequence[float], std: Sequence[float]) -> None:
        self.size, self.crop = size, crop
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)

    @classmethod
    def from_preprocess(cls, preprocess: Any) -> TensorTransform | None:
        """Read the steps of an open_clip transform; None when it holds a step we do not replay."""
        from torchvision import transforms as T

        size = crop = mean = std = None
        for t in getattr(preprocess, "transforms", []):
            name = type(t).__name__
            if isinstance(t, T.Resize) and isinstance(t.size, int | list | tuple):
                s = t.size if isinstance(t.size, int) else (t.size[0] if len(t.size) == 1 else None)
                if s is None or t.interpolation != T.InterpolationMode.BICUBIC or t.max_size is not None:
                    return None
                size = s
            elif isinstance(t, T.CenterCrop):
                crop = (int(t.size[0]), int(t.size[1]))
            elif isinstance(t, T.Normalize):
                mean, std = t.mean, t.std
            elif name not in ("MaybeConvertMode", "MaybeToTensor", "ToTensor") and "convert_to_rgb" not in repr(t):
                return None
        if size is None or crop is None or mean is None:
            return None
        return cls(size, crop, mean, std)

    def __call__(self, image: Any) -> Any:
        import torch
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as F

        x = F.resize(image, self.size, interpolation=InterpolationMode.BICUBIC, antialias=True)
        x = F.center_crop(x, list(self.crop))
        x = x.to(torch.float32).div_(255.0)
        return F.normalize(x, self.mean, self.std)


def pil_transform(preprocess: Callable[[Image.Image], Any]) -> Callable[[np.ndarray], Any]:
    """The model's own transform, applied to a decoded RGB array (through a PIL image, as it expects)."""
    return lambda arr: preprocess(Image.fromarray(arr))
