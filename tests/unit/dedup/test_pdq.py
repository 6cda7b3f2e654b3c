"""PDQ (Meta's 256-bit perceptual hash) in the hash-list machinery: the hash itself, lists that carry it, and
the reference index that answers "within d bits of a listed hash?" with exact recall."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate.dedup import phash
from curate.dedup.refindex import BRUTE_FORCE, RefIndex, hex_words
from curate.dedup.refs import load_hash_lists
from curate.download.safety import PDQ_DISTANCE
from curate.errors import CurateError


def _photo(seed: int, size: int = 256) -> Image.Image:
    """A smooth random picture (PDQ quality is high for it, as for photographs)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((size, size), Image.BICUBIC)


def _encoded(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_pdq_survives_reencoding_and_resizing_but_separates_images():
    assert PDQ_DISTANCE == 31  # ThreatExchange pdq/README.md: matching threshold <= 31
    a = phash.pdq_bytes(_encoded(_photo(1)))
    assert a is not None and len(a) == 64
    variants = [_encoded(_photo(1), "JPEG", quality=60), _encoded(_photo(1).resize((160, 160)))]
    assert all(phash.hamming(a, phash.pdq_bytes(v)) <= PDQ_DISTANCE for v in variants)
    others = [phash.pdq_bytes(_encoded(_photo(s))) for s in range(2, 8)]
    assert min(phash.hamming(a, o) for o in others) > 2 * PDQ_DISTANCE


def test_featureless_images_have_no_pdq():
    flat = _encoded(Image.new("RGB", (64, 64), (200, 10, 10)))
    assert phash.pdq_bytes(flat) is None  # quality under PDQ_MIN_QUALITY: it would match too much
    assert phash.pdq_bytes(b"not an image") is None


def test_hash_lists_read_pdq_from_prefix_and_named_columns(tmp_path):
    h = [f"{i:064x}" for i in (1, 2, 3)]
    (tmp_path / "a.txt").write_text(f"pdq:{h[0]}  # a PDQ entry\n{'e' * 64}\n")
    (tmp_path / "b.csv").write_text(f"pdq,note\n{h[1]},x\n")
    pq.write_table(pa.table({"pdq": [h[2].upper()]}), tmp_path / "c.parquet")
    refs = load_hash_lists([str(tmp_path / n) for n in ("a.txt", "b.csv", "c.parquet")])
    assert refs.pdq == frozenset(h) and refs.sha256 == frozenset({"e" * 64})  # 64 bare hex digits: sha256
    (tmp_path / "bad.txt").write_text("pdq:abc\n")
    with pytest.raises(CurateError, match="64-hex-digit pdq"):
        load_hash_lists([str(tmp_path / "bad.txt")])


@pytest.mark.parametrize("n", [50, BRUTE_FORCE + 500])  # brute force, then the multi-index layout
def test_ref_index_has_exact_recall_for_256_bit_hashes(n):
    rng = np.random.default_rng(n)
    refs = rng.integers(0, 2 ** 63, (n, 4), dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    queries = refs[rng.choice(n, 40, replace=False)].copy()
    for i, q in enumerate(queries):  # flip 0..40 bits spread over the four words
        for bit in rng.choice(256, i, replace=False):
            q[bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    queries = np.vstack([queries, rng.integers(0, 2 ** 63, (20, 4), dtype=np.int64).astype(np.uint64)])
    index = RefIndex(refs, PDQ_DISTANCE)
    assert (index.layout is None) == (n <= BRUTE_FORCE)
    truth = np.bitwise_count(queries[:, None, :] ^ refs[None, :, :]).sum(axis=2, dtype=np.int64).min(axis=1)
    want = np.where(truth <= PDQ_DISTANCE, truth, -1)
    assert index.within(queries).tolist() == want.tolist()
    assert (want[:32] >= 0).all() and (want[32:40] == -1).all()  # both sides of the threshold are probed


def test_hex_words_orders_words_most_significant_first():
    words = hex_words(["0" * 15 + "1" + "f" * 48], 256)
    assert words.shape == (1, 4) and words[0].tolist() == [1, 2 ** 64 - 1, 2 ** 64 - 1, 2 ** 64 - 1]
