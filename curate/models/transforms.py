"""Decoding and preprocessing for the score stage: PIL on the CPU, torchvision on tensors (and on a GPU).

Each open_clip model brings its own inference transform (`Resize(shortest side, bicubic) → CenterCrop →
RGB → ToTensor → Normalize`, sizes and statistics per model). On the CPU we apply that transform itself
to a PIL image, so preprocessing is exactly the model's. On a GPU, `TensorTransform` replays the same
steps with torchvision's tensor functions on a uint8 CHW tensor (decoded on the device by
`torchvision.io.decode_jpeg`); bicubic antialiased resizing on tensors differs from PIL's by a few grey
levels, so GPU embeddings agree with CPU ones to about 1e-3 in cosine, not bit for bit.

Nothing here touches CUDA at import time.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

# Refuse to decode more pixels than this (decompression bombs); such an image is a decode_error.
MAX_PIXELS = 64_000_000
JPEG_MAGIC = b"\xff\xd8\xff"
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


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


def decode_cuda(images: Sequence[bytes | None], device: str) -> list[tuple[Any, str | None]]:
    """Decode JPEGs on the GPU with torchvision (nvjpeg), anything else (or a JPEG nvjpeg refuses) with
    PIL: a list of (uint8 CHW tensor on `device`, None) or (None, error)."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    out: list[tuple[Any, str | None]] = [(None, None)] * len(images)
    jpegs = [i for i, b in enumerate(images) if b is not None and b[:3] == JPEG_MAGIC]
    if jpegs:
        datas = [torch.frombuffer(bytearray(images[i]), dtype=torch.uint8) for i in jpegs]
        try:
            decoded = decode_jpeg(datas, mode=ImageReadMode.RGB, device=device)
        except RuntimeError as exc:  # one bad JPEG fails the batch: fall back to PIL for these
            log.debug("GPU JPEG decode failed for a batch (%s); decoding it with PIL", exc)
            decoded = [None] * len(jpegs)
        for i, t in zip(jpegs, decoded, strict=True):
            if t is not None and t.shape[1] * t.shape[2] <= MAX_PIXELS:
                out[i] = (t, None)
    for i, b in enumerate(images):
        if out[i][0] is None:
            arr, err = decode_pil(b)
            out[i] = (None, err) if arr is None else (torch.tensor(arr).permute(2, 0, 1).to(device), None)
    return out


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
