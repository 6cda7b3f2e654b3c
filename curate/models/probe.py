"""Probes: small linear or MLP heads scored on CLIP embeddings, loaded from local files.

This is how LAION tagged its 5B pool: an NSFW and a watermark classifier, and the aesthetic predictor,
are small heads on CLIP image embeddings (LAION-AI/CLIP-based-NSFW-Detector,
LAION-AI/aesthetic-predictor). A probe is two files side by side:

- `NAME.json`: `{"name": "is_red", "model": "tiny", "input": "image", "layers": [64, 1],
  "hidden_activation": "relu", "activation": "sigmoid", "weights": "is_red.safetensors"}`.
  `model` is the alias of the configured CLIP model whose embeddings it reads; `input` is `image`, `text`
  or `both` (image and text embeddings concatenated, in that order); `layers` are the widths from the
  input to the single output; `hidden_activation` (`relu` or `none`) sits between linear layers and
  `activation` (`sigmoid` or `none`) on the output.
- the weights: safetensors, or a `torch.save`d state dict (read with `weights_only=True`). The linear
  layers' `weight`/`bias` are taken in the order of the last integer in their key (`0.weight`,
  `layers.2.weight`, ...), so a plain `nn.Sequential` with dropouts between its layers loads as is.

Inputs are the unit-norm float32 embeddings the score stage computes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from curate.errors import CurateError
from curate.io.package import package_path
from curate.models.spec import file_sha256, read_state_dict

INPUTS = ("image", "text", "both")
ACTIVATIONS = ("sigmoid", "none")
HIDDEN_ACTIVATIONS = ("relu", "none")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
PROBE_DIR = package_path("assets", "probes")


class ProbeError(CurateError):
    """A probe file that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class ProbeSpec:
    name: str
    model: str  # alias of the CLIP model whose embeddings the probe reads
    input: str
    layers: tuple[int, ...]
    weights: str  # absolute path of the weights file
    activation: str = "sigmoid"
    hidden_activation: str = "relu"

    @classmethod
    def read(cls, path: str | Path) -> ProbeSpec:
        """Read a probe's JSON spec (a bare name means a probe bundled in curate/assets/probes)."""
        p = Path(path).expanduser()
        if not p.suffix and not p.exists() and (PROBE_DIR / f"{p}.json").is_file():
            p = PROBE_DIR / f"{p}.json"
        try:
            raw = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            raise ProbeError(f"cannot read probe spec {p}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ProbeError(f"probe spec {p} is not a JSON object")
        missing = [k for k in ("name", "model", "input", "layers", "weights") if k not in raw]
        if missing:
            raise ProbeError(f"probe spec {p} lacks {missing}")
        try:
            spec = cls(name=str(raw["name"]), model=str(raw["model"]), input=str(raw["input"]),
                       layers=tuple(int(w) for w in raw["layers"]),
                       weights=str((p.parent / str(raw["weights"])).resolve()),
                       activation=str(raw.get("activation", "sigmoid")),
                       hidden_activation=str(raw.get("hidden_activation", "relu")))
        except (TypeError, ValueError) as exc:
            raise ProbeError(f"probe spec {p}: {exc}") from exc
        spec.validate(str(p))
        return spec

    def validate(self, where: str) -> None:
        if not NAME_RE.fullmatch(self.name) or self.name.startswith("clip_"):
            raise ProbeError(f"{where}: probe name {self.name!r} must match [a-z][a-z0-9_]* and not start with clip_")
        if self.input not in INPUTS:
            raise ProbeError(f"{where}: input {self.input!r} is not one of {INPUTS}")
        if self.activation not in ACTIVATIONS or self.hidden_activation not in HIDDEN_ACTIVATIONS:
            raise ProbeError(f"{where}: activation must be one of {ACTIVATIONS}, hidden_activation one of "
                             f"{HIDDEN_ACTIVATIONS}")
        if len(self.layers) < 2 or self.layers[-1] != 1 or min(self.layers) < 1:
            raise ProbeError(f"{where}: layers {list(self.layers)} must go from the input width to 1 output")
        if not Path(self.weights).is_file():
            raise ProbeError(f"{where}: weights file {self.weights} does not exist")

    def input_dim(self, embed_dim: int) -> int:
        return 2 * embed_dim if self.input == "both" else embed_dim

    def metadata(self) -> dict:
        return {"name": self.name, "model": self.model, "input": self.input, "layers": list(self.layers),
                "activation": self.activation, "hidden_activation": self.hidden_activation,
                "weights": Path(self.weights).name, "revision": f"sha256:{file_sha256(Path(self.weights))}"}


def _linear_order(key: str) -> int:
    found = re.findall(r"(\d+)", key)
    return int(found[-1]) if found else 0


class Probe:
    """A loaded probe: `score(image_emb, text_emb)` gives one float32 per row."""

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        state = read_state_dict(Path(spec.weights))
        weights = sorted((k for k in state if k.endswith("weight")), key=_linear_order)
        self.layers: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        for key in weights:
            bias = state.get(key[: -len("weight")] + "bias")
            self.layers.append((state[key].float(), None if bias is None else bias.float()))
        shapes = [spec.layers[0]] + [w.shape[0] for w, _ in self.layers]
        fits = all(w.ndim == 2 and w.shape[1] == width for (w, _), width in zip(self.layers, shapes, strict=False))
        if not self.layers or not fits or tuple(shapes) != spec.layers:
            got = [tuple(w.shape) for w, _ in self.layers]
            raise ProbeError(f"probe {spec.name}: weights {got} in {spec.weights} do not fit layers "
                             f"{list(spec.layers)}")

    def score(self, image_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        x = {"image": image_emb, "text": text_emb}.get(self.spec.input)
        if x is None:
            x = np.concatenate([image_emb, text_emb], axis=1)
        if x.shape[1] != self.spec.layers[0]:
            raise ProbeError(f"probe {self.spec.name}: input width {x.shape[1]} but the probe takes "
                             f"{self.spec.layers[0]} (is model {self.spec.model!r} the one it was trained on?)")
        # row by row in float64 with einsum's own loops (no BLAS): a row's score does not depend on which
        # rows share its batch, so a stage that batches across shards writes the bytes a per-shard one does
        h = np.ascontiguousarray(x, dtype=np.float64)
        for i, (w, b) in enumerate(self.layers):
            h = np.einsum("ij,kj->ik", h, w.double().numpy(), optimize=False)
            if b is not None:
                h += b.double().numpy()
            if i < len(self.layers) - 1 and self.spec.hidden_activation == "relu":
                h = np.maximum(h, 0.0)
        if self.spec.activation == "sigmoid":
            with np.errstate(over="ignore"):  # exp(-h) = inf for h < -709: the score is 0, as it should be
                h = 1.0 / (1.0 + np.exp(-h))
        return h[:, 0].astype(np.float32)
