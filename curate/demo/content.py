"""What each pool sample looks like: reliable captions, image sizes per defect, JPEG bytes, corruption."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

from curate.dedup import phash
from curate.demo.shapes import Scene, english_caption, random_scene, render

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
NEAR_MAX_BITS = 2  # planted near-duplicates differ from their original by at most this many pHash bits
NEAR_FORMS: tuple[str, ...] = ("reencode", "resize", "crop")


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
    """A pool image: `scene` on a mildly textured background, so that unrelated pool images have distant
    perceptual hashes (flat backgrounds made many of them collide) and near-duplicate search finds only
    the planted copies."""
    buf = io.BytesIO()
    render(scene, size[0], size[1], rng, texture=True).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def corrupt(jpeg: bytes, rng: random.Random) -> tuple[str, bytes]:
    """A JPEG no decoder accepts: cut off mid-scan, or valid headers followed by noise."""
    if rng.random() < 0.5:
        return "truncated", jpeg[: int(len(jpeg) * rng.uniform(0.3, 0.6))]
    scan = jpeg.index(b"\xff\xda")  # start of scan: keep the headers, replace the entropy-coded data
    return "garbled", jpeg[:scan] + rng.randbytes(len(jpeg) - scan)


def placeholder() -> bytes:
    """The "image not available" picture a host returns with status 200 for any missing image."""
    img = Image.new("RGB", (320, 240), (232, 232, 232))
    draw = ImageDraw.Draw(img)
    draw.rectangle((110, 60, 210, 140), outline=(150, 150, 150), width=6)  # a broken-picture frame
    draw.polygon([(125, 128), (150, 95), (170, 115), (185, 100), (198, 128)], fill=(170, 170, 170))
    draw.ellipse((180, 72, 196, 88), fill=(170, 170, 170))
    draw.rectangle((70, 170, 250, 184), fill=(180, 180, 180))  # where the "not available" text would be
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def variant(body: bytes, kind: str, rng: random.Random) -> bytes:
    """A near-duplicate of a JPEG: re-encoded at another quality, resized (shorter side stays >= 220 px)
    or cropped by 1% per side, then re-encoded."""
    with Image.open(io.BytesIO(body)) as im:
        img = im.convert("RGB")
    w, h = img.size
    if kind == "resize":
        scale = rng.uniform(0.75, 0.9)
        if min(w, h) * scale >= 220:
            img = img.resize((round(w * scale), round(h * scale)), Image.LANCZOS)
    elif kind == "crop":
        img = img.crop((w // 100, h // 100, w - w // 100, h - h // 100))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=rng.randint(60, 80))
    return buf.getvalue()


def near_copy(body: bytes, rng: random.Random) -> tuple[str, bytes]:
    """(form, bytes) of a near-duplicate of `body` within NEAR_MAX_BITS of its pHash: the drawn form if it
    stays that close, else a plain re-encode (the closest of a few tries; deterministic either way)."""
    origin = phash.phash_bytes(body)
    best: tuple[int, str, bytes] | None = None
    for form in (rng.choice(NEAR_FORMS), "reencode", "reencode", "reencode"):
        copy = variant(body, form, rng)
        distance = phash.hamming(origin, phash.phash_bytes(copy))
        if distance <= NEAR_MAX_BITS:
            return form, copy
        if best is None or distance < best[0]:
            best = (distance, form, copy)
    assert best is not None
    return best[1], best[2]


def eval_set(contaminated: list[bytes], rng: random.Random) -> dict[str, bytes]:
    """An evaluation image folder: re-encoded copies of `contaminated`, plus as many unrelated renders."""
    files = {f"eval-{j:04d}.jpg": variant(body, "reencode", rng) for j, body in enumerate(contaminated)}
    for j in range(max(len(contaminated), 4)):
        files[f"other-{j:04d}.jpg"] = jpeg(random_scene(rng), size("clean", rng), rng)
    return files


def hash_list(entries: list[tuple[str, bytes]], rng: random.Random) -> str:
    """A stand-in safety hash list: for each (kind, image bytes) its md5, sha1, sha256 or pHash (the pHash
    of a re-encoded copy, so it matches within a distance rather than exactly), then unrelated entries."""
    lines = ["# stand-in safety hash list (md5, sha1, sha256 or 16-hex-digit pHash per line)"]
    for kind, body in entries:
        if kind == "phash":
            entry = phash.phash_bytes(variant(body, "reencode", rng))
            if phash.hamming(entry, phash.phash_bytes(body)) > NEAR_MAX_BITS:
                entry = phash.phash_bytes(body)
            lines.append(entry)
        else:
            lines.append(phash.digests(body)[kind])
    lines += [rng.randbytes(n).hex() for n in (8, 16, 20, 32)]
    return "\n".join(lines) + "\n"
