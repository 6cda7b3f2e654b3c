"""Image hashes: md5, sha1, sha256 of the bytes, a 64-bit DCT perceptual hash and Meta's 256-bit PDQ hash of
the pixels.

The perceptual hash is imagededup's PHash (itself the pHash of imagehash): RGB, resize to 32x32
(Lanczos), grayscale, 2-D DCT-II, keep the top-left 8x8 coefficients, set a bit where a coefficient is
at least the median of the 63 non-DC ones, pack the 64 bits big-endian into 16 hex digits. The same code
hashes pool images, evaluation images and hash-list images, so their distances are comparable;
tests/unit/dedup/test_phash.py checks that it agrees bit for bit with imagededup.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
from PIL import Image
from scipy.fft import dct

HASH_SIZE = 8  # 8x8 coefficients -> 64 bits
# PDQ hashes of quality under this are discarded: facebook/ThreatExchange pdq/README.md recommends
# "Quality Threshold where we recommend discarding hashes: <=49"
PDQ_MIN_QUALITY = 50
IMG_SIZE = 32
MASK64 = (1 << 64) - 1


def phash_pixels(img: Image.Image) -> str:
    """The perceptual hash of a decoded image, as 16 lowercase hex digits."""
    if img.mode != "RGB":
        img = img.convert("RGBA").convert("RGB")
    small = img.resize((IMG_SIZE, IMG_SIZE), Image.LANCZOS).convert("L")
    pixels = np.asarray(small, dtype=np.uint8).astype(np.float64)
    coef = dct(dct(pixels, axis=0), axis=1)[:HASH_SIZE, :HASH_SIZE]
    median = np.median(coef.flatten()[1:])
    return np.packbits(coef >= median).tobytes().hex()


def pdq_pixels(img: Image.Image) -> str | None:
    """Meta's PDQ hash of a decoded image (the `pdqhash` binding of the reference implementation, on the RGB
    pixels), as 64 hex digits in the bit order of ThreatExchange's hex form; None when its quality is under
    PDQ_MIN_QUALITY (a featureless image: its hash matches too much)."""
    import pdqhash

    rgb = np.ascontiguousarray(np.asarray(img if img.mode == "RGB" else img.convert("RGBA").convert("RGB")))
    bits, quality = pdqhash.compute(rgb)
    if quality < PDQ_MIN_QUALITY:
        return None
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def _decoded(data: bytes) -> Image.Image | None:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        return None


def phash_bytes(data: bytes) -> str | None:
    """The perceptual hash of encoded image bytes, or None when they do not decode."""
    img = _decoded(data)
    return None if img is None else phash_pixels(img)


def pdq_bytes(data: bytes) -> str | None:
    """The PDQ hash of encoded image bytes, or None when they do not decode (or its quality is too low)."""
    img = _decoded(data)
    return None if img is None else pdq_pixels(img)


def perceptual(data: bytes, phash: bool = True, pdq: bool = False) -> dict[str, str | None]:
    """The perceptual hashes asked for, from one decode of `data` (None where it does not decode)."""
    img = _decoded(data) if phash or pdq else None
    out: dict[str, str | None] = {}
    if phash:
        out["phash"] = None if img is None else phash_pixels(img)
    if pdq:
        out["pdq"] = None if img is None else pdq_pixels(img)
    return out


def digests(data: bytes) -> dict[str, str]:
    """md5, sha1 and sha256 of `data` as lowercase hex."""
    return {"md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest()}


def hash_image(data: bytes, pdq: bool = False) -> dict[str, str | None]:
    """Every hash of one image: md5, sha1, sha256 and phash (None if the bytes do not decode), and with `pdq`
    its PDQ hash (None also when its quality is too low)."""
    return {**digests(data), **perceptual(data, phash=True, pdq=pdq)}


def to_int64(hex_hash: str) -> int:
    """A 16-hex-digit hash as a signed 64-bit integer (the type engines store and XOR)."""
    v = int(hex_hash, 16)
    return v - (1 << 64) if v >= 1 << 63 else v


def to_hex(value: int) -> str:
    return f"{value & MASK64:016x}"


def hex_to_int64(hashes: list[str]) -> np.ndarray:
    """Vectorised `to_int64` for a list of 16-hex-digit strings."""
    if not hashes:
        return np.empty(0, dtype=np.int64)
    raw = np.frombuffer(bytes.fromhex("".join(hashes)), dtype=">u8")
    return raw.astype(np.uint64).view(np.int64)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Set bits per element of an int64/uint64 array."""
    return np.bitwise_count(x.view(np.uint64)).astype(np.int32)


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()
