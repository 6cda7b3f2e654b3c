"""The perceptual hash: bit-for-bit imagededup's PHash, stable under re-encoding, far for other images."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

from curate.dedup import phash
from curate.demo.shapes import Scene, render


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def test_agrees_with_imagededup(tmp_path):
    from imagededup.methods import PHash

    encoder = PHash(verbose=False)
    rng = random.Random(0)
    for i in range(5):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(_jpeg(render(Scene("star", "red"), 200 + 40 * i, 300, rng)))
        assert phash.phash_bytes(path.read_bytes()) == encoder.encode_image(image_file=str(path))


def test_reencoded_and_resized_copies_stay_close_and_other_images_do_not():
    hashes = []
    for seed in range(5):
        img = render(Scene("circle", "blue"), 400, 300, random.Random(seed), texture=True)
        h = phash.phash_bytes(_jpeg(img))
        assert phash.hamming(h, phash.phash_bytes(_jpeg(img, quality=60))) <= 3
        assert phash.hamming(h, phash.phash_bytes(_jpeg(img.resize((280, 210))))) <= 3
        hashes.append(h)
    # the same scene on other textured backgrounds is far away (flat backgrounds collided)
    assert min(phash.hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1:]) > 6


def test_hash_image_digests_and_undecodable_bytes():
    data = _jpeg(Image.new("RGB", (40, 40), (10, 200, 30)))
    out = phash.hash_image(data)
    assert len(out["md5"]) == 32 and len(out["sha1"]) == 40 and len(out["sha256"]) == 64
    assert len(out["phash"]) == 16
    assert phash.hash_image(b"not an image")["phash"] is None


@pytest.mark.parametrize("hex_hash", ["0000000000000000", "ffffffffffffffff", "8000000000000001", "7f00ff00aa55c3e1"])
def test_int64_round_trip(hex_hash):
    v = phash.to_int64(hex_hash)
    assert -(1 << 63) <= v < 1 << 63
    assert phash.to_hex(v) == hex_hash
    assert phash.hex_to_int64([hex_hash])[0] == v
    assert phash.popcount64(np.array([v], dtype=np.int64))[0] == bin(int(hex_hash, 16)).count("1")
