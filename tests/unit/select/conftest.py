"""A small synthetic pool with every column the policies read, and a fake run directory around it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

CAPTIONS = ["a red circle on a table", "a photo of a golden retriever dog", "un chien sur la plage",
            "two tabby cats sleeping", "zqx vbnm qwerty", "a banana and an orange on a plate"]


def make_pool(n: int = 200, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    uids = [f"{rng.integers(0, 2**63):016x}{i:016x}" for i in range(n)]
    caps = [CAPTIONS[i % len(CAPTIONS)] for i in range(n)]
    lang = ["fr" if "chien" in c else "en" for c in caps]
    lang = [("de" if i % 10 == 3 else la) for i, la in enumerate(lang)]
    emb = rng.normal(size=(n, 8)).astype(np.float16)
    sims = np.round(rng.uniform(-0.1, 0.5, n), 2).astype(np.float32)  # rounded: many ties at the cut
    return pa.table({
        "uid": uids, "caption": caps, "language": lang, "language_score": np.ones(n, np.float32),
        "original_width": rng.integers(100, 600, n), "original_height": rng.integers(100, 600, n),
        "clip_similarity": sims, "clip_vit_l_14": sims, "clip_vit_b_32": np.round(sims + 0.02, 2),
        "clip_multilingual": np.round(sims - 0.01, 2), "clip_dfn": rng.uniform(0, 1, n).astype(np.float32),
        "nsfw": rng.uniform(0, 1, n).astype(np.float32), "source": ["a" if i % 4 else "b" for i in range(n)],
        "image_embedding": pa.array(list(emb), pa.list_(pa.float16())),
        "aesthetic": np.round(rng.uniform(3, 8, n), 1).astype(np.float32),  # drawn last: earlier columns unchanged
    })


@pytest.fixture(scope="session")
def pool() -> pa.Table:
    return make_pool()
