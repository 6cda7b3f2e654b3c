"""The two scoring stages. Each loads its model once in setup() (once per Ray actor)."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from PIL import Image

from curate.models.langid import BUNDLED, LangId
from curate.stage import Stage

log = logging.getLogger(__name__)

# Refuse to decode more pixels than this (decompression bombs); such an image is a decode_error.
MAX_PIXELS = 64_000_000


@dataclass(frozen=True)
class ClipConfig:
    model: str = "tiny"  # NAME:PRETRAINED, a local file, local-dir:, or "tiny" (the bundled model)
    device: str = "cpu"
    threads: int = 1  # torch threads per actor; more oversubscribes a small machine


@dataclass(frozen=True)
class LangIdConfig:
    model: str = BUNDLED


def _decode(data: bytes) -> tuple[Image.Image | None, str | None]:
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            return None, f"{img.width}x{img.height} exceeds {MAX_PIXELS} pixels"
        return img.convert("RGB"), None
    except Exception as exc:  # any decoder failure is this sample's status, never the actor's death
        return None, f"{type(exc).__name__}: {exc}"


def _f16_lists(emb: np.ndarray) -> pa.Array:
    flat = pa.array(emb.astype(np.float16).ravel(), pa.float16())
    offsets = pa.array(np.arange(0, emb.size + 1, emb.shape[1], dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, flat)


class ClipStage(Stage[ClipConfig]):
    """Decodes each image once, embeds image and caption, adds their cosine and the embeddings;
    drops the image bytes so they never travel further down the pipeline."""

    name = "clip"
    reads = ("image", "caption")
    adds = ("status", "error", "clip_similarity", "image_embedding", "text_embedding")

    def setup(self) -> None:
        import torch

        from curate.models.clip import ClipScorer, ClipSpec

        torch.set_num_threads(self.config.threads)
        self.scorer = ClipScorer(ClipSpec.parse(self.config.model), device=self.config.device).load()

    def process_batch(self, table: pa.Table) -> pa.Table:
        decoded = [_decode(b) for b in table.column("image").to_pylist()]
        ok = [i for i, (img, _) in enumerate(decoded) if img is not None]
        n = table.num_rows
        sim = np.full(n, np.nan, dtype=np.float32)
        dim = None
        img_emb = txt_emb = None
        if ok:
            captions = [table.column("caption")[i].as_py() or "" for i in ok]
            img_emb = self.scorer.embed_images([decoded[i][0] for i in ok])
            txt_emb = self.scorer.embed_texts(captions)
            sim[ok] = self.scorer.similarity(img_emb, txt_emb)
            dim = img_emb.shape[1]
        full_img = np.zeros((n, dim or 1), np.float32)
        full_txt = np.zeros((n, dim or 1), np.float32)
        if ok:
            full_img[ok], full_txt[ok] = img_emb, txt_emb
        status = ["ok" if img is not None else "decode_error" for img, _ in decoded]
        valid = pa.array([s == "ok" for s in status])
        out = table.drop_columns(["image"])
        return (out.append_column("status", pa.array(status, pa.string()))
                .append_column("error", pa.array([e for _, e in decoded], pa.string()))
                .append_column("clip_similarity", pa.array(sim, pa.float32(), mask=~np.asarray(valid)))
                .append_column("image_embedding", _f16_lists(full_img))
                .append_column("text_embedding", _f16_lists(full_txt)))


class LangIdStage(Stage[LangIdConfig]):
    name = "langid"
    reads = ("caption",)
    adds = ("language", "language_score")

    def setup(self) -> None:
        self.model = LangId(self.config.model).load()

    def process_batch(self, table: pa.Table) -> pa.Table:
        labels, probs = self.model.predict(table.column("caption").to_pylist())
        return (table.append_column("language", pa.array(labels, pa.string()))
                .append_column("language_score", pa.array(probs, pa.float32())))
