"""Which CLIP model a `--model NAME:PRETRAINED` value names, and reading local weights safely.

`ClipSpec` parses the CLI form (`tiny`, `ViT-L-14:openai`, `ViT-B-32:/path/file.pt`,
`local-dir:/folder`, `hf-hub:org/repo`); `load_plan` decides what open_clip builds and which local file we
read ourselves; `read_state_dict` reads it with `torch.load(weights_only=True)` or safetensors, never
unpickling freely. `curate.models.clip` builds and runs the models.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from curate.errors import CurateError
from curate.io.package import package_path

TINY = "tiny"
TINY_CLIP_DIR = package_path("assets", "tiny-clip")
LOCAL_DIR_PREFIX = "local-dir:"
HF_HUB_PREFIX = "hf-hub:"
CONFIG_FILE = "open_clip_config.json"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
# The weight files open_clip 3.3.0 looks for in a local-dir folder, in its order of preference
# (open_clip.factory._find_checkpoint_in_dir).
_DIR_CHECKPOINTS = (
    "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin", "pytorch_model.pth", "model.pth",
)


class ModelSpecError(CurateError, ValueError):
    """A `--model` value that cannot name a model."""


class ModelLoadError(CurateError):
    """A model, its weights or its tokenizer could not be loaded; the message says what to do."""


def _is_path(value: str) -> bool:
    separators = "/" in value or "\\" in value
    return separators or value.startswith(("~", ".")) or value.endswith(CHECKPOINT_SUFFIXES)


@dataclass(frozen=True)
class ClipSpec:
    """Which model to load: an open_clip architecture `name` and where its weights come from.

    `pretrained` is an open_clip tag (`openai`), a local checkpoint file, or None when `name` carries its
    own weights (`tiny`, `local-dir:...`, `hf-hub:...`).
    """

    name: str
    pretrained: str | None = None

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip():
            raise ModelSpecError(f"model name must be non-empty, without surrounding spaces: {self.name!r}")
        if self.name in (LOCAL_DIR_PREFIX, HF_HUB_PREFIX):
            raise ModelSpecError(f"{self.name!r} needs a folder or repository after the colon")
        if self.pretrained == "":
            raise ModelSpecError(f"empty pretrained part in model spec {self.name!r}:")
        if self.pretrained is not None and self.has_schema:
            raise ModelSpecError(f"{self.name} brings its own weights; drop ':{self.pretrained}'")
        if self.pretrained is None and not (self.name == TINY or self.has_schema):
            raise ModelSpecError(
                f"model {self.name!r} needs weights: write NAME:TAG (e.g. ViT-B-32:openai), NAME:/path/to/"
                f"checkpoint.pt, local-dir:/path/to/folder, or {TINY!r} for the bundled model"
            )

    @classmethod
    def parse(cls, text: str) -> ClipSpec:
        """Parse the CLI form `NAME:PRETRAINED`, `tiny`, `local-dir:/folder` or `hf-hub:org/repo`."""
        text = text.strip()
        if not text:
            raise ModelSpecError("empty model spec")
        if text.startswith((LOCAL_DIR_PREFIX, HF_HUB_PREFIX)):
            return cls(text, None)
        name, sep, pretrained = text.partition(":")
        if sep and not pretrained:
            raise ModelSpecError(f"model spec {text!r} ends with ':'; write NAME:PRETRAINED")
        return cls(name, pretrained or None)

    @classmethod
    def tiny(cls) -> ClipSpec:
        """The bundled tiny model."""
        return cls(TINY, None)

    @property
    def has_schema(self) -> bool:
        return self.name.startswith((LOCAL_DIR_PREFIX, HF_HUB_PREFIX))

    def __str__(self) -> str:
        return self.name if self.pretrained is None else f"{self.name}:{self.pretrained}"


@dataclass(frozen=True)
class LoadPlan:
    """How to build a spec: the open_clip architecture name, and the local weights we read ourselves."""

    arch: str  # a name for open_clip.create_model_and_transforms and get_tokenizer
    weights: Path | None  # local file to read here; None: open_clip loads weights (tag or hf-hub)
    tag: str | None = None  # open_clip pretrained tag, when open_clip downloads the weights


def load_plan(spec: ClipSpec) -> LoadPlan:
    name = f"{LOCAL_DIR_PREFIX}{TINY_CLIP_DIR}" if spec.name == TINY else spec.name
    if name.startswith(HF_HUB_PREFIX):
        return LoadPlan(name, None)
    if name.startswith(LOCAL_DIR_PREFIX):
        folder = Path(name[len(LOCAL_DIR_PREFIX):]).expanduser()
        if not (folder / CONFIG_FILE).is_file():
            raise ModelLoadError(f"{spec}: no {CONFIG_FILE} in {folder}; a local-dir: model is a folder "
                                 f"holding {CONFIG_FILE} and its weights")
        name = f"{LOCAL_DIR_PREFIX}{folder}"
        if spec.pretrained:  # tiny:/path/file.pt: the bundled architecture with other weights
            return LoadPlan(name, _checkpoint_file(spec, spec.pretrained))
        return LoadPlan(name, _dir_checkpoint(spec, folder))
    assert spec.pretrained is not None  # ClipSpec guarantees it for plain names
    if _is_path(spec.pretrained):
        return LoadPlan(name, _checkpoint_file(spec, spec.pretrained))
    return LoadPlan(name, None, tag=spec.pretrained)


def _checkpoint_file(spec: ClipSpec, pretrained: str) -> Path:
    path = Path(pretrained).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"{spec}: checkpoint file {path} does not exist")
    return path


def _dir_checkpoint(spec: ClipSpec, folder: Path) -> Path:
    for candidate in _DIR_CHECKPOINTS:
        if (folder / candidate).is_file():
            return folder / candidate
    found = sorted(p for p in folder.iterdir() if p.suffix in CHECKPOINT_SUFFIXES and p.is_file())
    if len(found) == 1:
        return found[0]
    what = "no weights file" if not found else f"several weights files ({', '.join(p.name for p in found)})"
    raise ModelLoadError(f"{spec}: {what} in {folder}; expected {_DIR_CHECKPOINTS[0]}")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file or a `torch.save`d state dict, without running pickled code."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        if path.suffix == ".safetensors":
            state: Any = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is a paragraph; the line naming the refused object is the useful one.
        lines = [ln.strip() for ln in str(e).splitlines() if "WeightsUnpickler error" in ln]
        why = lines[0].split(". ")[0] if lines else type(e).__name__
        raise ModelLoadError(
            f"{path} holds more than plain tensors, so it was not loaded (torch.load weights_only=True: "
            f"{why}); re-save just the model's state_dict, or convert it to .safetensors"
        ) from e
    except (OSError, RuntimeError, ValueError, EOFError, SafetensorError) as e:
        raise ModelLoadError(f"cannot read checkpoint {path}: {' '.join(str(e).split())[:300]}") from e
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # open_clip training checkpoint
        state = state["state_dict"]
    if not (isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise ModelLoadError(f"{path} is not a state dict of tensors")
    if all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
