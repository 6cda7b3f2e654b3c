"""Face blurring before an image is written, from the pool's face boxes (DataComp's `face_bboxes`: a list of
[x0, y0, x1, y1] in [0, 1] relative to the image), the way DataComp's downloader does it (img2dataset's
bounding-box blurrer, after princetonvisualai/imagenet-face-obfuscation): each box grows by 10% of its
longer side on every side, the boxes are blurred with a Gaussian whose kernel follows from the largest box
(sigma = 0.1 x its longer side), and the blurred image is blended in through the box mask blurred with the
same kernel, so the edges are soft. Pixels the blurred mask does not reach are left exactly as they were.

`FaceBlur` wraps img2dataset's resizer (it is called with the row's boxes): it decodes, blurs, re-encodes in
the run's encode format and hands the new bytes on; rows without boxes pass through untouched.
"""

from __future__ import annotations

import io
import json
import math

import cv2
import numpy as np

GROW = 0.1  # each box grows by this share of its longer side (imagenet-face-obfuscation)
SIGMA = 0.1  # the Gaussian's sigma, as a share of the largest box's longer side


def parse_boxes(value) -> list[list[float]] | None:
    """The boxes of a `face_bboxes` cell (a JSON text or a list of 4-number lists); None when empty or bad."""
    if value is None:
        return None
    try:
        boxes = json.loads(value) if isinstance(value, str) else value
        out = [[float(c) for c in box] for box in boxes]
    except (TypeError, ValueError):
        return None
    out = [b for b in out if len(b) == 4]
    return out or None


def blur_region(width: int, height: int,
                boxes: list[list[float]]) -> tuple[list[tuple[int, int, int, int]], int, float]:
    """The grown boxes in pixels (x0, y0, x1, y1, end exclusive), the odd Gaussian kernel size and sigma."""
    grown, largest = [], 0
    for x0, y0, x1, y1 in boxes:
        px = [int(x0 * width), int(y0 * height), int(x1 * width), int(y1 * height)]
        side = max(px[2] - px[0], px[3] - px[1])
        largest = max(largest, side)
        g = int(GROW * side)
        grown.append((max(0, px[0] - g), max(0, px[1] - g), min(width, px[2] + g), min(height, px[3] + g)))
    kernel = max(3, 2 * math.ceil(SIGMA * largest) + 1)
    return grown, kernel | 1, max(SIGMA * largest, 0.5)


def blur_boxes(img: np.ndarray, boxes: list[list[float]]) -> np.ndarray:
    """`img` (H x W x C, uint8) with the boxes blurred."""
    height, width = img.shape[:2]
    grown, kernel, sigma = blur_region(width, height, boxes)
    mask = np.zeros((height, width), dtype=np.float32)
    for x0, y0, x1, y1 in grown:
        mask[y0:y1, x0:x1] = 1.0
    soft = cv2.GaussianBlur(mask, (kernel, kernel), sigma)
    blurred = cv2.GaussianBlur(img, (kernel, kernel), sigma).astype(np.float32)
    alpha = soft[..., None] if img.ndim == 3 else soft
    mixed = np.rint(img.astype(np.float32) * (1 - alpha) + blurred * alpha).clip(0, 255).astype(np.uint8)
    return np.where(alpha > 0, mixed, img)


class FaceBlur:
    """A resizer wrapper: blur the row's face boxes, then let img2dataset's resizer do the rest."""

    def __init__(self, resizer, encode_format: str) -> None:
        self.resizer = resizer
        self.encode_format = encode_format

    def __call__(self, img_stream, blurring_bbox_list=None):
        boxes = parse_boxes(blurring_bbox_list)
        if boxes:
            img_stream.seek(0)
            img = cv2.imdecode(np.frombuffer(img_stream.read(), np.uint8), cv2.IMREAD_COLOR)
            if img is not None:  # undecodable bodies go on unchanged: the resizer reports them
                params = list(getattr(self.resizer, "encode_params", None) or [])
                ok, buf = cv2.imencode(f".{self.encode_format}", blur_boxes(img, boxes), params)
                if ok:
                    img_stream = io.BytesIO(buf.tobytes())
            img_stream.seek(0)
        return self.resizer(img_stream, None)
