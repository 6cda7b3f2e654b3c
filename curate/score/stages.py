"""The scoring stages: decode (CPU tasks), language ID and CLIP (actors that load their models once).

Images are decoded once, at the smallest JPEG scale that still covers every model's input
(`curate.models.transforms.decode`; `--exact-decode` decodes in full, as the model's own transform
would), and each model's exact resize and crop runs in the decode tasks, which ship uint8 pixels of the
model's input size: one column per distinct geometry (`_px0`, `_px1`, ...). The CLIP actor turns a
batch of them into the model's tensors at once (`to_tensor_batch`, bit for bit the model's `ToTensor`
and `Normalize`) and runs every configured model and probe. With `decode_tasks` off the actor decodes
the same way itself; on a GPU with `decode_on_device` it takes the image bytes and decodes JPEGs on the
device (`decode_cuda`), counting the ones nvjpeg refused in `_gpu_decode_fallback`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import CurateError
from curate.models.langid import LangId
from curate.models.transforms import DEFAULT_DECODER, Geometry, decode, geometry
from curate.score.config import ClipConfig, LangIdConfig
from curate.stage import Stage

log = logging.getLogger(__name__)

PIXEL_PREFIX = "_px"
GPU_FALLBACK = "_gpu_decode_fallback"  # per row: nvjpeg refused this JPEG (decoded on the CPU, or failed)


def pixel_column(index: int) -> str:
    return f"{PIXEL_PREFIX}{index}"


@dataclass(frozen=True)
class DecodeConfig:
    """The distinct geometries of the configured models (pixel column i holds geometry i) and the decoder."""

    geometries: tuple[Geometry, ...] = ()
    decoder: str = DEFAULT_DECODER

    @property
    def min_side(self) -> int:
        return max((g.min_side for g in self.geometries), default=0)


def model_geometries(clip: ClipConfig) -> tuple[Geometry, ...]:
    """Each configured model's geometry, in model order (from configs: no weights are read)."""
    return tuple(geometry(e.spec) for e in clip.entries())


def decode_config(clip: ClipConfig) -> DecodeConfig:
    return DecodeConfig(tuple(dict.fromkeys(model_geometries(clip))), clip.decoder)  # with nvjpeg: for the rest


def decode_batch(images: list[bytes | None], config: DecodeConfig) -> tuple[np.ndarray, list[str | None], list]:
    """(valid mask, errors, one uint8 N x H x W x 3 array per geometry) of a batch of image bytes."""
    n = len(images)
    outs = [np.zeros((n, *g.size, 3), np.uint8) for g in config.geometries]
    transforms = [g.transform() for g in config.geometries]
    valid = np.zeros(n, bool)
    errors: list[str | None] = [None] * n
    for i, data in enumerate(images):
        arr, errors[i] = decode(data, config.min_side, config.decoder)
        if arr is None:
            continue
        valid[i] = True
        for g, t, out in zip(config.geometries, transforms, outs, strict=True):
            out[i] = g.pixels(arr, t)
    return valid, errors, outs


def _fixed_binary(arr: np.ndarray, valid: np.ndarray) -> pa.Array:
    """An N x ... uint8 array as N fixed-size binary values (null where not valid), without copying rows."""
    n = arr.shape[0]
    width = int(np.prod(arr.shape[1:]))
    mask = pa.array(valid, pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(pa.binary(width), n, [mask, pa.py_buffer(np.ascontiguousarray(arr))],
                                 null_count=int(n - valid.sum()))


def _pixels_of(column: pa.ChunkedArray, size: tuple[int, int]) -> np.ndarray:
    """A fixed-size binary pixel column back to an N x H x W x 3 uint8 array (nulls as zeros)."""
    chunks = []
    for chunk in column.chunks:
        data = np.frombuffer(chunk.buffers()[1], np.uint8)
        width = size[0] * size[1] * 3
        chunks.append(data[chunk.offset * width:(chunk.offset + len(chunk)) * width])
    flat = np.concatenate(chunks) if chunks else np.zeros(0, np.uint8)
    return flat.reshape(len(column), *size, 3)


def _statuses(valid: np.ndarray, errors: list[str | None]) -> tuple[pa.Array, pa.Array]:
    status = pa.array(np.where(valid, "ok", "decode_error").tolist(), pa.string())
    error = pa.array([None if v else (e or "decode failed") for v, e in zip(valid.tolist(), errors, strict=True)],
                     pa.string())
    return status, error


class DecodeStage(Stage[DecodeConfig]):
    """Image bytes → each geometry's input pixels, status and error (decode_error where it fails)."""

    name = "decode"
    stateless: ClassVar[bool] = True  # no model: engines may run it in plain tasks
    reads = ("image",)
    adds = ("status", "error")

    def process_batch(self, table: pa.Table) -> pa.Table:
        valid, errors, outs = decode_batch(table.column("image").to_pylist(), self.config)
        status, error = _statuses(valid, errors)
        out = table.drop_columns(["image"]).append_column("status", status).append_column("error", error)
        for i, arr in enumerate(outs):
            out = out.append_column(pixel_column(i), _fixed_binary(arr, valid))
        return out


def f16_lists(emb: np.ndarray) -> pa.Array:
    flat = pa.array(emb.astype(np.float16).ravel(), pa.float16())
    offsets = pa.array(np.arange(0, emb.size + 1, max(emb.shape[1], 1), dtype=np.int32)[: emb.shape[0] + 1])
    return pa.ListArray.from_arrays(offsets, flat)


def embedding_columns(alias: str, first: bool) -> tuple[str, str]:
    return ("image_embedding", "text_embedding") if first else (f"image_embedding_{alias}", f"text_embedding_{alias}")


class ClipStage(Stage[ClipConfig]):
    """Every configured model (and probe) on one batch: `clip_similarity` (the first model's),
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
                raise CurateError(f"probe {probe.spec.name} reads model {probe.spec.model!r}, which is not "
                                  f"configured (models: {sorted(self.scorers)})")
        self.on_gpu = cfg.device.startswith("cuda")
        self.gpu_decode = cfg.gpu_decode
        self.decoding = decode_config(cfg)
        self.inputs = {} if self.gpu_decode else self._check_geometries()
        self.tensor_transforms: dict[str, Any] = {}
        self._warned = False
        if self.gpu_decode:
            from curate.models.transforms import TensorTransform

            self.tensor_transforms = {a: TensorTransform.from_preprocess(s.preprocess) for a, s in self.scorers.items()}

    def _check_geometries(self) -> dict[str, tuple[int, Geometry, tuple, tuple]]:
        """alias → (pixel column index, geometry, mean, std), after checking that each loaded model's own
        transform has the geometry the decode tasks apply (resolved from its config on the driver)."""
        from torchvision.transforms import Compose

        from curate.models.transforms import geometry_steps, normalize_of

        out = {}
        geoms = self.decoding.geometries
        for e, g in zip(self.entries, model_geometries(self.config), strict=True):
            pre = self.scorers[e.alias].preprocess
            own, ours = repr(Compose(geometry_steps(pre))), repr(g.transform())
            if own != ours:
                raise CurateError(f"score: model {e.alias}'s transform {own} differs from the geometry the decode "
                                  f"tasks would apply ({ours}); please report it")
            out[e.alias] = (geoms.index(g), g, *normalize_of(pre))
        return out

    # -- decoding ---------------------------------------------------------------------------------------
    def _decoded(self, table: pa.Table) -> tuple[np.ndarray, list[str | None], dict[str, Any], pa.Array | None]:
        """(valid mask, errors, alias → model-ready input of the valid rows, per-row GPU fallbacks or None)."""
        if pixel_column(0) in table.column_names:
            valid = pc.equal(table.column("status"), "ok").to_numpy(zero_copy_only=False)
            errors = table.column("error").to_pylist()
            pixels = [_pixels_of(table.column(pixel_column(i)), g.size)
                      for i, g in enumerate(self.decoding.geometries)]
        elif self.gpu_decode:
            return self._decoded_on_gpu(table.column("image").to_pylist())
        else:
            valid, errors, pixels = decode_batch(table.column("image").to_pylist(), self.decoding)
        inputs = {}
        for alias, (i, _, mean, std) in self.inputs.items():
            inputs[alias] = self._tensors(pixels[i][valid], mean, std)
        return valid, errors, inputs, None

    def _tensors(self, pixels: np.ndarray, mean: tuple, std: tuple) -> Any:
        import torch

        from curate.models.transforms import to_tensor_batch

        if self.on_gpu:  # uint8 crosses to the device, a quarter of the float bytes
            return to_tensor_batch(torch.from_numpy(pixels).to(self.config.device, non_blocking=True), mean, std)
        return to_tensor_batch(pixels, mean, std)

    def _decoded_on_gpu(self, data: list) -> tuple[np.ndarray, list[str | None], dict[str, Any], pa.Array]:
        import torch

        from curate.models.transforms import decode_cuda

        pairs, refused = decode_cuda(data, self.config.device)
        if refused and not self._warned:
            log.warning("score: nvjpeg could not decode %d JPEGs of a batch; they were decoded on the CPU (counted "
                        "in the stage's gpu_decode_fallbacks; further batches are not logged)", len(refused))
            self._warned = True
        valid = np.array([t is not None for t, _ in pairs], bool)
        images = [t for t, _ in pairs if t is not None]
        inputs = {}
        for alias in self.scorers:
            transform = self.tensor_transforms[alias]
            if transform is None:
                raise CurateError(f"score: model {alias}'s transform cannot be replayed on the GPU; set "
                                  "score.clip.decode_on_device to false")
            inputs[alias] = torch.stack([transform(im) for im in images]) if images else None
        flags = np.zeros(len(data), bool)
        flags[refused] = True
        return valid, [e for _, e in pairs], inputs, pa.array(flags)

    # -- scoring ----------------------------------------------------------------------------------------
    def process_batch(self, table: pa.Table) -> pa.Table:
        valid, errors, inputs, fallbacks = self._decoded(table)
        n = table.num_rows
        ok = np.flatnonzero(valid)
        captions = [c or "" for c in table.column("caption").to_pylist()]
        status, error = _statuses(valid, errors)
        drop = [c for c in table.column_names if c in ("image", "status", "error") or c.startswith(PIXEL_PREFIX)]
        out = table.drop_columns(drop).append_column("status", status).append_column("error", error)
        sims: dict[str, np.ndarray] = {}
        embs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for e in self.entries:
            scorer = self.scorers[e.alias]
            dim = scorer.embed_dim
            img_emb, txt_emb = np.zeros((n, dim), np.float32), np.zeros((n, dim), np.float32)
            sim = np.full(n, np.nan, np.float32)
            if len(ok):
                pixels = inputs[e.alias]
                img_emb[ok] = np.concatenate([scorer.embed_pixels(pixels[s:s + scorer.batch_size])
                                              for s in range(0, len(ok), scorer.batch_size)])
                txt_emb[ok] = scorer.embed_texts([captions[i] for i in ok])
                sim[ok] = scorer.similarity(img_emb[ok], txt_emb[ok])
            sims[e.alias], embs[e.alias] = sim, (img_emb, txt_emb)
        out = out.append_column("clip_similarity", pa.array(sims[self.entries[0].alias], pa.float32(), mask=~valid))
        for e in self.entries:
            out = out.append_column(e.column, pa.array(sims[e.alias], pa.float32(), mask=~valid))
        for probe in self.probes:
            img_emb, txt_emb = embs[probe.spec.model]
            score = np.full(n, np.nan, np.float32)
            if len(ok):
                score[ok] = probe.score(img_emb[ok], txt_emb[ok])
            out = out.append_column(probe.spec.name, pa.array(score, pa.float32(), mask=~valid))
        for i, e in enumerate(self.entries):
            if e.alias in self.embed:
                img_col, txt_col = embedding_columns(e.alias, i == 0)
                out = out.append_column(img_col, f16_lists(embs[e.alias][0])).append_column(
                    txt_col, f16_lists(embs[e.alias][1]))
        if fallbacks is not None:
            out = out.append_column(GPU_FALLBACK, fallbacks)
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
