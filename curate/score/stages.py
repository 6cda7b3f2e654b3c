"""The scoring stages: decode (CPU tasks), language ID and CLIP (actors that load their models once).

Images are decoded once. On the CPU, `DecodeStage` runs in stateless tasks beside the model actors, so
decoding overlaps inference; the CLIP actor then applies each model's own transform to the decoded
pixels and runs every configured model and probe on them. On a GPU the CLIP actor takes the image bytes
and decodes JPEGs on the device itself (`curate.models.transforms.decode_cuda`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from curate.models.langid import LangId
from curate.models.transforms import decode_pil
from curate.score.config import ClipConfig, LangIdConfig
from curate.stage import Stage

log = logging.getLogger(__name__)

PIXEL_COLUMNS = ("pixels", "height", "width")


@dataclass(frozen=True)
class DecodeConfig:
    """DecodeStage has nothing to configure yet."""


class DecodeStage(Stage[DecodeConfig]):
    """Image bytes → RGB pixels (raw uint8 HWC bytes with height and width), or status decode_error."""

    name = "decode"
    stateless: ClassVar[bool] = True  # no model: engines may run it in plain tasks
    reads = ("image",)
    adds = ("status", "error", *PIXEL_COLUMNS)

    def process_batch(self, table: pa.Table) -> pa.Table:
        decoded = [decode_pil(b) for b in table.column("image").to_pylist()]
        arrays = [a for a, _ in decoded]
        out = table.drop_columns(["image"])
        return (out.append_column("status", pa.array(["ok" if a is not None else "decode_error" for a in arrays]))
                .append_column("error", pa.array([e for _, e in decoded], pa.string()))
                .append_column("pixels", pa.array([None if a is None else a.tobytes() for a in arrays],
                                                  pa.large_binary()))
                .append_column("height", pa.array([None if a is None else a.shape[0] for a in arrays], pa.int32()))
                .append_column("width", pa.array([None if a is None else a.shape[1] for a in arrays], pa.int32())))


def f16_lists(emb: np.ndarray) -> pa.Array:
    flat = pa.array(emb.astype(np.float16).ravel(), pa.float16())
    offsets = pa.array(np.arange(0, emb.size + 1, max(emb.shape[1], 1), dtype=np.int32)[: emb.shape[0] + 1])
    return pa.ListArray.from_arrays(offsets, flat)


def embedding_columns(alias: str, first: bool) -> tuple[str, str]:
    return ("image_embedding", "text_embedding") if first else (f"image_embedding_{alias}", f"text_embedding_{alias}")


class ClipStage(Stage[ClipConfig]):
    """Every configured model (and probe) on one decoded batch: `clip_similarity` (the first model's),
    `clip_<alias>` per model, one column per probe, and the embeddings asked for. Drops the pixels."""

    name = "clip"
    reads = ("caption",)
    adds = ("status", "error", "clip_similarity", "image_embedding", "text_embedding")

    def setup(self) -> None:
        import torch

        from curate.models.clip import ClipScorer
        from curate.models.probe import Probe, ProbeSpec

        cfg = self.config
        cfg.validate()
        torch.set_num_threads(cfg.threads)
        self.entries = cfg.entries()
        self.embed = set(cfg.embedding_aliases())
        self.scorers = {e.alias: ClipScorer(e.spec, device=cfg.device, precision=cfg.precision).load()
                        for e in self.entries}
        self.probes = [Probe(ProbeSpec.read(p)) for p in cfg.probes]
        for probe in self.probes:
            if probe.spec.model not in self.scorers:
                from curate.errors import CurateError

                raise CurateError(f"probe {probe.spec.name} reads model {probe.spec.model!r}, which is not "
                                  f"configured (models: {sorted(self.scorers)})")
        self.on_gpu = cfg.device.startswith("cuda")
        self.tensor_transforms: dict[str, Any] = {}
        if self.on_gpu:
            from curate.models.transforms import TensorTransform

            self.tensor_transforms = {a: TensorTransform.from_preprocess(s.preprocess) for a, s in self.scorers.items()}

    # -- decoding ---------------------------------------------------------------------------------------
    def _images(self, table: pa.Table) -> tuple[list[Any], list[str | None]]:
        """Decoded images (numpy HWC arrays, or device tensors on a GPU) or None, and errors."""
        if "pixels" in table.column_names:
            pix, hs, ws = (table.column(c).to_pylist() for c in PIXEL_COLUMNS)
            images = [None if p is None else np.frombuffer(p, np.uint8).reshape(h, w, 3)
                      for p, h, w in zip(pix, hs, ws, strict=True)]
            return images, table.column("error").to_pylist()
        data = table.column("image").to_pylist()
        if self.on_gpu and self.config.decode_on_device:
            from curate.models.transforms import decode_cuda

            pairs = decode_cuda(data, self.config.device)
        else:
            pairs = [decode_pil(b) for b in data]
        return [p for p, _ in pairs], [e for _, e in pairs]

    def _pixels(self, alias: str, images: list[Any]) -> Any:
        import torch

        from curate.models.transforms import pil_transform

        transform = self.tensor_transforms.get(alias)
        if transform is None:  # the model's own PIL transform
            pil = pil_transform(self.scorers[alias].preprocess)
            batch = [pil(im if isinstance(im, np.ndarray) else im.permute(1, 2, 0).cpu().numpy()) for im in images]
        else:
            batch = [transform(im if not isinstance(im, np.ndarray) else
                               torch.tensor(im).permute(2, 0, 1).to(self.config.device)) for im in images]
        return torch.stack(batch)

    # -- scoring ----------------------------------------------------------------------------------------
    def process_batch(self, table: pa.Table) -> pa.Table:
        images, errors = self._images(table)
        n = table.num_rows
        ok = [i for i, im in enumerate(images) if im is not None]
        valid = np.zeros(n, bool)
        valid[ok] = True
        captions = [c or "" for c in table.column("caption").to_pylist()]
        out = table.drop_columns([c for c in ("image", "status", "error", *PIXEL_COLUMNS) if c in table.column_names])
        out = (out.append_column("status", pa.array(["ok" if v else "decode_error" for v in valid], pa.string()))
               .append_column("error", pa.array([None if v else (e or "decode failed") for v, e in zip(valid, errors,
                                                                                                      strict=True)],
                                                pa.string())))
        sims: dict[str, np.ndarray] = {}
        embs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for e in self.entries:
            scorer = self.scorers[e.alias]
            dim = scorer.embed_dim
            img_emb, txt_emb = np.zeros((n, dim), np.float32), np.zeros((n, dim), np.float32)
            if ok:
                pixels = self._pixels(e.alias, [images[i] for i in ok])
                img_emb[ok] = np.concatenate([scorer.embed_pixels(pixels[s:s + scorer.batch_size])
                                              for s in range(0, len(ok), scorer.batch_size)])
                txt_emb[ok] = scorer.embed_texts([captions[i] for i in ok])
            sim = np.full(n, np.nan, np.float32)
            if ok:
                sim[ok] = scorer.similarity(img_emb[ok], txt_emb[ok])
            sims[e.alias], embs[e.alias] = sim, (img_emb, txt_emb)
        first = self.entries[0].alias
        out = out.append_column("clip_similarity", pa.array(sims[first], pa.float32(), mask=~valid))
        for e in self.entries:
            out = out.append_column(e.column, pa.array(sims[e.alias], pa.float32(), mask=~valid))
        for probe in self.probes:
            img_emb, txt_emb = embs[probe.spec.model]
            score = np.full(n, np.nan, np.float32)
            if ok:
                score[ok] = probe.score(img_emb[ok], txt_emb[ok])
            out = out.append_column(probe.spec.name, pa.array(score, pa.float32(), mask=~valid))
        for i, e in enumerate(self.entries):
            if e.alias in self.embed:
                img_col, txt_col = embedding_columns(e.alias, i == 0)
                out = out.append_column(img_col, f16_lists(embs[e.alias][0])).append_column(
                    txt_col, f16_lists(embs[e.alias][1]))
        return out


class LangIdStage(Stage[LangIdConfig]):
    """fasttext label and probability per caption, in batches (captions normalised: newlines removed)."""

    name = "langid"
    reads = ("caption",)
    adds = ("language", "language_score")

    def setup(self) -> None:
        self.model = LangId(self.config.model).load()

    def process_batch(self, table: pa.Table) -> pa.Table:
        labels, probs = self.model.predict(table.column("caption").to_pylist())
        return (table.append_column("language", pa.array(labels, pa.string()))
                .append_column("language_score", pa.array(probs, pa.float32())))
