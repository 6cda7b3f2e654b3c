"""Render coloured shapes with captions: the synthetic world of the demo pool and the tiny CLIP model.

One renderer serves both the tiny model's training set (scripts/train_tiny_clip.py) and the sample
pool (curate/demo/pool.py), so the model scores pool images the way it learned to.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 20),
    "purple": (140, 40, 170),
    "orange": (250, 140, 10),
    "black": (15, 15, 15),
    "white": (245, 245, 245),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
TEXTURE_AMPLITUDE = 20  # background brightness offsets of textured pool images, in 0-255 levels
TEXTURE_GRID = 8  # cells per side of the random brightness field

# Translations for the non-English captions of the pool: (colour words, shape words, templates).
_FOREIGN: dict[str, tuple[dict[str, str], dict[str, str], tuple[str, ...]]] = {
    "fr": (
        {"red": "rouge", "green": "vert", "blue": "bleu", "yellow": "jaune", "purple": "violet",
         "orange": "orange", "black": "noir", "white": "blanc"},
        {"circle": "cercle", "square": "carré", "triangle": "triangle", "star": "étoile", "cross": "croix"},
        ("une photo d'un {shape} de couleur {color} sur un fond uni",
         "voici un joli {shape} {color} dessiné au milieu de l'image"),
    ),
    "de": (
        {"red": "roter", "green": "grüner", "blue": "blauer", "yellow": "gelber", "purple": "violetter",
         "orange": "oranger", "black": "schwarzer", "white": "weißer"},
        {"circle": "Kreis", "square": "Quadrat", "triangle": "Dreieck", "star": "Stern", "cross": "Kreuz"},
        ("ein Foto von einem {color} {shape} auf einem einfarbigen Hintergrund",
         "hier sieht man einen {color} {shape} in der Mitte des Bildes"),
    ),
    "es": (
        {"red": "rojo", "green": "verde", "blue": "azul", "yellow": "amarillo", "purple": "morado",
         "orange": "naranja", "black": "negro", "white": "blanco"},
        {"circle": "círculo", "square": "cuadrado", "triangle": "triángulo", "star": "estrella",
         "cross": "cruz"},
        ("una foto de un {shape} de color {color} sobre un fondo liso",
         "aquí vemos un {shape} {color} dibujado en el centro de la imagen"),
    ),
}
FOREIGN_LANGUAGES: tuple[str, ...] = tuple(_FOREIGN)

_EN_TEMPLATES: tuple[str, ...] = (
    "a photo of a {color} {shape}",
    "a {color} {shape} on a plain background",
    "a picture showing a {color} {shape} in the middle",
    "a simple drawing of a {color} {shape}",
    "there is a {color} {shape} in this image",
)


@dataclass(frozen=True)
class Scene:
    """What an image shows: the ground truth a caption can match or not."""

    shape: str
    color: str


def random_scene(rng: random.Random) -> Scene:
    return Scene(rng.choice(SHAPES), rng.choice(sorted(COLORS)))


def other_scene(scene: Scene, rng: random.Random) -> Scene:
    """A scene that differs from `scene` in both shape and colour (a clearly mismatched caption)."""
    shape = rng.choice([s for s in SHAPES if s != scene.shape])
    color = rng.choice([c for c in sorted(COLORS) if c != scene.color])
    return Scene(shape, color)


def english_caption(scene: Scene, rng: random.Random) -> str:
    return rng.choice(_EN_TEMPLATES).format(color=scene.color, shape=scene.shape)


def foreign_caption(scene: Scene, lang: str, rng: random.Random) -> str:
    colors, shapes, templates = _FOREIGN[lang]
    return rng.choice(templates).format(color=colors[scene.color], shape=shapes[scene.shape])


def _background(rng: random.Random, fg: tuple[int, int, int]) -> tuple[int, int, int]:
    """A muted background far enough from the shape's colour to keep the shape visible."""
    while True:
        bg = tuple(rng.randint(90, 170) for _ in range(3))
        if sum(abs(a - b) for a, b in zip(bg, fg, strict=True)) > 150:
            return bg  # type: ignore[return-value]


def _star(cx: float, cy: float, r: float, rot: float) -> list[tuple[float, float]]:
    pts = []
    for i in range(10):
        rad = r if i % 2 == 0 else r * 0.45
        a = rot + i * math.pi / 5
        pts.append((cx + rad * math.sin(a), cy - rad * math.cos(a)))
    return pts


def _textured(size: tuple[int, int], bg: tuple[int, int, int], rng: random.Random,
              amplitude: int = TEXTURE_AMPLITUDE, grid: int = TEXTURE_GRID) -> Image.Image:
    """A background of colour `bg` with a smooth random brightness field (a `grid`x`grid` grid of offsets in
    +-`amplitude`, upsampled bicubically): mild to the eye, but it gives every image its own
    low-frequency structure, so the perceptual hashes of unrelated pool images lie far apart."""
    cells = Image.new("L", (grid, grid))
    cells.putdata([128 + rng.randint(-amplitude, amplitude) for _ in range(grid * grid)])
    field = np.asarray(cells.resize(size, Image.BICUBIC), dtype=np.int16)[..., None] - 128
    pixels = np.clip(np.array(bg, dtype=np.int16) + field, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def render(scene: Scene, width: int, height: int, rng: random.Random, texture: bool = False) -> Image.Image:
    """Draw `scene` on a `width`x`height` RGB canvas; the shape fills 50-80% of the shorter side.
    With `texture`, the plain background gets a mild smooth brightness field (see `_textured`)."""
    fg = COLORS[scene.color]
    bg = _background(rng, fg)
    img = _textured((width, height), bg, rng) if texture else Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(img)
    side = min(width, height)
    r = side * rng.uniform(0.25, 0.4)
    cx = width / 2 + rng.uniform(-0.1, 0.1) * side
    cy = height / 2 + rng.uniform(-0.1, 0.1) * side
    box = (cx - r, cy - r, cx + r, cy + r)
    if scene.shape == "circle":
        draw.ellipse(box, fill=fg)
    elif scene.shape == "square":
        draw.rectangle(box, fill=fg)
    elif scene.shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=fg)
    elif scene.shape == "star":
        draw.polygon(_star(cx, cy, r, rng.uniform(-0.2, 0.2)), fill=fg)
    elif scene.shape == "cross":
        w = r * 0.35
        draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=fg)
        draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=fg)
    else:
        raise ValueError(f"unknown shape {scene.shape!r}")
    return img
