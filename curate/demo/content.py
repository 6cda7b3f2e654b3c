"""What each pool sample looks like: reliable captions, image sizes per defect, JPEG bytes, corruption."""

from __future__ import annotations

import io
import random

from curate.demo.shapes import Scene, english_caption, render

# Captions that fasttext lid.176.ftz gets wrong or calls with a margin under 0.1 over the runner-up
# (checked exhaustively over every caption this module can produce; tests/unit/demo/test_pool.py
# re-checks with the real model). "circle" alone reads as Persian, "cross" is a coin toss.
LID_AMBIGUOUS: frozenset[str] = frozenset(
    {"a photo of a black circle", "a photo of a blue circle", "a photo of a purple circle",
     "a photo of a white circle", "a photo of a yellow circle", "circle", "cross",
     "black circle", "blue circle", "green circle", "purple circle", "red circle", "white circle",
     "yellow circle", "black cross", "blue cross", "purple cross", "yellow cross"}
)
SHORT_FORMS: tuple[str, ...] = ("{color} {shape}", "the {shape}", "{shape}")
JPEG_QUALITY = 90


def english(scene: Scene, rng: random.Random) -> str:
    """An English caption of `scene` that language ID reliably reads as English."""
    for _ in range(100):
        caption = english_caption(scene, rng)
        if caption not in LID_AMBIGUOUS:
            return caption
    raise RuntimeError(f"no reliable English caption for {scene}")


def short(scene: Scene, rng: random.Random) -> str:
    """An English caption of at most two words that matches `scene` ("red star", "the circle")."""
    forms = [f.format(color=scene.color, shape=scene.shape) for f in SHORT_FORMS]
    return rng.choice([c for c in forms if c not in LID_AMBIGUOUS])


def size(defect: str, rng: random.Random) -> tuple[int, int]:
    if defect == "aspect":
        short = rng.randint(200, 260)
        long = round(short * rng.uniform(3.3, 4.5))
        return (long, short) if rng.random() < 0.5 else (short, long)
    lo, hi = (60, 180) if defect == "small" else (220, 640)
    while True:
        w, h = rng.randint(lo, hi), rng.randint(lo, hi)
        if max(w, h) / min(w, h) <= 2.5:
            return w, h


def jpeg(scene: Scene, size: tuple[int, int], rng: random.Random) -> bytes:
    buf = io.BytesIO()
    render(scene, size[0], size[1], rng).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def corrupt(jpeg: bytes, rng: random.Random) -> tuple[str, bytes]:
    """A JPEG no decoder accepts: cut off mid-scan, or valid headers followed by noise."""
    if rng.random() < 0.5:
        return "truncated", jpeg[: int(len(jpeg) * rng.uniform(0.3, 0.6))]
    scan = jpeg.index(b"\xff\xda")  # start of scan: keep the headers, replace the entropy-coded data
    return "garbled", jpeg[:scan] + rng.randbytes(len(jpeg) - scan)
