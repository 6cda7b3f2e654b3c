"""Load open_clip models for the score stage and embed images and captions with them.

A model is named by a `ClipSpec` (`curate.models.spec`), written on the command line as
`--model NAME:PRETRAINED`:

- `tiny`: the bundled tiny model (`curate/assets/tiny-clip`, trained on the demo's coloured shapes);
  `tiny:/path/file.pt` puts other weights into the same architecture.
- `ViT-L-14:openai`: an open_clip architecture and pretrained tag, loaded by open_clip's own code (which
  downloads the weights into its cache the first time).
- `ViT-B-32:/path/to/checkpoint.pt` (or `.pth`, `.bin`, `.safetensors`): an open_clip architecture with
  weights from a local file in open_clip's state-dict format (what open_clip training saves).
- `local-dir:/path/to/folder` and `hf-hub:org/repo`: open_clip's own schemas (a folder or Hub repo holding
  `open_clip_config.json` and weights). The whole string is the name.

Local weights are read by this module, never unpickled freely: `torch.load(..., weights_only=True)`, or
safetensors. (open_clip 3.3.0 passes `weights_only=True` as well, but retries without the argument when
`torch.load` raises a `TypeError`; reading the file here keeps that fallback out of our path.)

`ClipScorer` is built on the driver, shipped to workers, and `load()`ed there once per actor: nothing is
registered process-wide, so Spark executors and Ray workers need no set-up of their own.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from curate.models.spec import (
    CHECKPOINT_SUFFIXES,
    CONFIG_FILE,
    HF_HUB_PREFIX,
    LOCAL_DIR_PREFIX,
    PRECISIONS,
    ClipSpec,
    LoadPlan,
    ModelLoadError,
    ModelSpecError,
    file_sha256,
    load_plan,
    read_state_dict,
)

logger = logging.getLogger(__name__)


class _DropRandomInitWarning(logging.Filter):
    """open_clip warns "initialized randomly" when we build an architecture whose weights we load next."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded for model")


@contextmanager
def _quiet_random_init() -> Iterator[None]:
    root, noise = logging.getLogger(), _DropRandomInitWarning()
    root.addFilter(noise)
    try:
        yield
    finally:
        root.removeFilter(noise)


class ClipScorer:
    """An open_clip model with its transform and tokenizer, embedding images and captions in batches.

    Construct anywhere (cheap, picklable); call `load()` once where the model runs (a Ray actor's set-up).
    Embeddings are float32 numpy arrays of shape (N, embed_dim) with unit L2 norm.
    """

    def __init__(self, spec: ClipSpec | str, device: str = "cpu", batch_size: int = 64,
                 precision: str = "auto") -> None:
        self.spec = ClipSpec.parse(spec) if isinstance(spec, str) else spec
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if precision not in PRECISIONS:
            raise ModelSpecError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        self.device = device
        # auto: bf16 autocast on a GPU, fp32 on the CPU (where bf16 matmuls are slower and less exact)
        self.precision = ("bf16" if device.startswith("cuda") else "fp32") if precision == "auto" else precision
        self.batch_size = batch_size
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None
        self._revision: str | None = None
        self._embed_dim = 0

    # -- loading ---------------------------------------------------------------------------------------
    def load(self) -> ClipScorer:
        """Create the model (eval mode), its inference transform and tokenizer; a no-op when loaded."""
        if self._model is not None:
            return self
        started = time.perf_counter()
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"{self.spec}: device {self.device!r} asked for, but torch sees no CUDA GPU")
        plan = load_plan(self.spec)
        import open_clip  # heavy (torchvision, timm): imported only where a model is loaded

        schema = plan.arch.startswith((LOCAL_DIR_PREFIX, HF_HUB_PREFIX))
        if not schema and plan.arch not in open_clip.list_models():
            raise ModelLoadError(f"{self.spec}: {plan.arch!r} is not an open_clip architecture "
                                 "(open_clip.list_models() lists them); or use local-dir:/path/to/folder")

        try:
            if plan.weights is not None:
                model, preprocess = self._create_and_read(open_clip, plan.arch, plan.weights)
                revision = f"sha256:{file_sha256(plan.weights)}"
            else:
                model, preprocess = self._create_from_open_clip(open_clip, plan)
                revision = self._remote_revision(open_clip, plan)
            tokenizer = open_clip.get_tokenizer(plan.arch)
        except ModelLoadError:
            raise
        except Exception as e:  # open_clip raises RuntimeError, ValueError, OSError, HF Hub errors ...
            raise ModelLoadError(self._explain(plan, e)) from e
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        with torch.inference_mode():  # the embedding width, whatever the architecture's config calls it
            self._embed_dim = int(model.encode_text(tokenizer(["a"]).to(self.device)).shape[1])
        self._model, self._preprocess, self._tokenizer = model, preprocess, tokenizer
        self._revision = revision
        logger.info("loaded CLIP model %s (%s, embed_dim %d) on %s in %.1fs", self.spec, revision,
                    self.embed_dim, self.device, time.perf_counter() - started)
        return self

    def _create_and_read(self, open_clip: Any, arch: str, weights: Path) -> tuple[Any, Any]:
        """Build the architecture with no weights (nothing downloaded), then copy in the local file's."""
        with _quiet_random_init():
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=None, load_weights=False, pretrained_image=False, pretrained_text=False,
                device=self.device,
            )
        state = read_state_dict(weights)
        try:
            # load_state_dict copies each tensor into the float32 parameter: float16 files come back as fp32.
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise ModelLoadError(f"{self.spec}: weights in {weights} do not fit {arch}: {first}") from e
        return model, preprocess

    def _create_from_open_clip(self, open_clip: Any, plan: LoadPlan) -> tuple[Any, Any]:
        if plan.tag is not None and not open_clip.get_pretrained_cfg(plan.arch, plan.tag):
            known = ", ".join(open_clip.list_pretrained_tags_by_model(plan.arch)) or "none"
            raise ModelLoadError(
                f"{self.spec}: {plan.tag!r} is neither an open_clip pretrained tag of {plan.arch} "
                f"(known: {known}) "
                f"nor a checkpoint path (paths contain '/' or end in {', '.join(CHECKPOINT_SUFFIXES)})"
            )
        model, _, preprocess = open_clip.create_model_and_transforms(
            plan.arch, pretrained=plan.tag, device=self.device, weights_only=True, require_pretrained=True
        )
        return model, preprocess

    @staticmethod
    def _remote_revision(open_clip: Any, plan: LoadPlan) -> str:
        if plan.tag is None:
            return plan.arch  # hf-hub:org/repo (open_clip does not pin a Hub revision)
        cfg = open_clip.get_pretrained_cfg(plan.arch, plan.tag)
        return cfg.get("hf_hub") or cfg.get("url") or f"{plan.arch}:{plan.tag}"

    def _explain(self, plan: LoadPlan, error: Exception) -> str:
        cause = " ".join(str(error).split())[:300] or type(error).__name__
        if plan.weights is None:
            return (
                f"cannot load {self.spec} through open_clip ({cause}). Pretrained tags and hf-hub: models "
                "are downloaded on first use: fetch them once with network access into the shared cache "
                "(HF_HOME), or download the checkpoint and pass NAME:/path/to/checkpoint"
            )
        return f"cannot load {self.spec} from {plan.weights} ({cause})"

    # -- metadata --------------------------------------------------------------------------------------
    def _loaded(self) -> Any:
        if self._model is None:
            raise RuntimeError("ClipScorer.load() must be called first")
        return self._model

    @property
    def model_name(self) -> str:
        return self.spec.name

    @property
    def pretrained(self) -> str | None:
        return self.spec.pretrained

    @property
    def revision(self) -> str:
        """What exactly was loaded: `sha256:<hex>` of a local weights file, or the Hub repo / URL of a tag."""
        self._loaded()
        assert self._revision is not None
        return self._revision

    @property
    def embed_dim(self) -> int:
        self._loaded()
        return self._embed_dim

    def metadata(self) -> dict[str, str]:
        """The model's identity, for the metadata of tables the score stage writes."""
        return {"clip_model": self.model_name, "clip_pretrained": self.pretrained or "",
                "clip_revision": self.revision}

    # -- embedding -------------------------------------------------------------------------------------
    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """L2-normalised image embeddings, float32 (len(images), embed_dim)."""
        self._loaded()
        out = [np.zeros((0, self._embed_dim), np.float32)]
        for start in range(0, len(images), self.batch_size):
            batch = torch.stack([self._preprocess(im) for im in images[start:start + self.batch_size]])
            out.append(self.embed_pixels(batch))
        return np.concatenate(out)

    @property
    def preprocess(self) -> Any:
        """The model's own inference transform (a PIL image in, a normalised CHW float tensor out)."""
        self._loaded()
        return self._preprocess

    def _autocast(self) -> Any:
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        return torch.autocast(self.device.split(":")[0], dtype=dtype, enabled=dtype is not None)

    def embed_pixels(self, batch: torch.Tensor) -> np.ndarray:
        """L2-normalised embeddings of one batch of preprocessed images (N, 3, H, W), float32 numpy."""
        model = self._loaded()
        with torch.inference_mode(), self._autocast():
            emb = model.encode_image(batch.to(self.device, non_blocking=True), normalize=True)
        return emb.float().cpu().numpy()

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised caption embeddings, float32 (len(texts), embed_dim)."""
        model = self._loaded()
        out = [np.zeros((0, self._embed_dim), np.float32)]
        for start in range(0, len(texts), self.batch_size):
            tokens = self._tokenizer(list(texts[start:start + self.batch_size]))
            with torch.inference_mode(), self._autocast():
                emb = model.encode_text(tokens.to(self.device), normalize=True)
            out.append(emb.float().cpu().numpy())
        return np.concatenate(out)

    @staticmethod
    def similarity(img_emb: np.ndarray, txt_emb: np.ndarray) -> np.ndarray:
        """Row-wise cosine similarity of two (N, D) arrays: one float32 score per image-caption pair."""
        a, b = np.asarray(img_emb, np.float32), np.asarray(txt_emb, np.float32)
        if a.ndim != 2 or a.shape != b.shape:
            raise ValueError(f"expected two (N, D) arrays of the same shape, got {a.shape} and {b.shape}")
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        return (np.einsum("nd,nd->n", a, b) / np.maximum(norms, 1e-12)).astype(np.float32)

    def score(self, images: Sequence[Image.Image], texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each image with its caption (the CLIP score DataComp filters on)."""
        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} captions")
        return self.similarity(self.embed_images(images), self.embed_texts(texts))


def describe(spec: ClipSpec | str) -> dict[str, Any]:
    """A model's identity without building it: name, pretrained tag, revision and embedding width.

    Checks what can be checked cheaply (files exist, the architecture and tag are known to open_clip), so a
    bad `--model` fails on the driver before any worker starts; the weights are loaded in the workers.
    """
    spec = ClipSpec.parse(spec) if isinstance(spec, str) else spec
    plan = load_plan(spec)
    embed_dim = None
    if plan.arch.startswith(LOCAL_DIR_PREFIX):
        cfg = json.loads((Path(plan.arch[len(LOCAL_DIR_PREFIX):]) / CONFIG_FILE).read_text())
        embed_dim = cfg.get("model_cfg", {}).get("embed_dim")
        revision = f"sha256:{file_sha256(plan.weights)}" if plan.weights else plan.arch
    else:
        import open_clip

        if not plan.arch.startswith(HF_HUB_PREFIX):
            if plan.arch not in open_clip.list_models():
                raise ModelLoadError(f"{spec}: {plan.arch!r} is not an open_clip architecture "
                                     "(open_clip.list_models() lists them); or use local-dir:/path/to/folder")
            embed_dim = (open_clip.get_model_config(plan.arch) or {}).get("embed_dim")
            if plan.tag is not None and not open_clip.get_pretrained_cfg(plan.arch, plan.tag):
                known = ", ".join(open_clip.list_pretrained_tags_by_model(plan.arch)) or "none"
                raise ModelLoadError(f"{spec}: {plan.tag!r} is neither an open_clip pretrained tag of "
                                     f"{plan.arch} (known: {known}) nor a checkpoint path")
        revision = (f"sha256:{file_sha256(plan.weights)}" if plan.weights
                    else ClipScorer._remote_revision(open_clip, plan))
    return {"clip_model": spec.name, "clip_pretrained": spec.pretrained or "", "clip_revision": revision,
            "embed_dim": embed_dim}
