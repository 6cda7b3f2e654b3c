"""DataComp "text-based" filtering (arXiv 2304.14108; mlfoundations/datacomp baselines/apply_filter.py,
`load_uids_with_text_entity_helper`): an English caption that names an ImageNet-21k class.

Two ways to decide "names a class":
- `wordnet` (DataComp's rule, exactly): `does_contain_text_entity` — for each word of `caption.split()`
  (case kept; nltk lowercases and lemmatises it), take the *first* WordNet synset nltk returns, and keep
  the caption if that synset's offset is one of the ImageNet-21k ids' offsets (the POS letter is dropped
  there too, `int(x[1:])`). Needs nltk and its `wordnet` corpus (WordNet 3.0, as DataComp's
  `nltk.download("wordnet")`).
- lemmas (the default; offline, an approximation): the caption contains, as whole words, a lemma of an
  ImageNet-21k synset (timm's lemma list), or that lemma with a plural `s`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curate.errors import CurateError
from curate.select.datacomp import strings
from curate.select.policy import StepResult, register
from curate.select.text import LemmaMatcher, imagenet21k_lemmas

NLTK = "nltk"


def imagenet21k_synsets() -> str:
    """timm's copy of Google's ImageNet-21k WordNet id list (21,843 ids, `n01440764` per line), the list
    DataComp downloads as `imagenet21k_wordnet_ids.txt`."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise CurateError("datacomp_text: timm is not installed; give `synsets:` a file of WordNet ids")
    return str(Path(next(iter(spec.submodule_search_locations))) / "data" / "_info" / "imagenet21k_goog_synsets.txt")


@cache
def synset_offsets(path: str) -> frozenset[int]:
    """DataComp: `[int(x.strip()[1:]) for x in open(ids).readlines()]`: offsets, the POS letter dropped."""
    p = Path(path)
    if not p.is_file():
        raise CurateError(f"datacomp_text: no synset id list {path}")
    try:
        return frozenset(int(line.strip()[1:]) for line in p.read_text().splitlines() if line.strip())
    except ValueError as exc:
        raise CurateError(f"datacomp_text: {path} is not a list of WordNet ids like n01440764 ({exc})") from exc


@cache
def first_synset(wordnet: str) -> Callable[[str], int | None]:
    """word -> offset of nltk's `wordnet.synsets(word)[0]`, or None, memoised per process. `wordnet` is
    `nltk` (nltk's data paths) or an nltk data folder that holds `corpora/wordnet`."""
    try:
        import nltk
    except ImportError as exc:
        raise CurateError("datacomp_text: `wordnet:` needs nltk (pip install nltk) and its wordnet corpus") from exc
    if wordnet != NLTK and wordnet not in nltk.data.path:
        if not Path(wordnet).is_dir():
            raise CurateError(f"datacomp_text: wordnet {wordnet!r} is neither `nltk` nor an nltk data folder")
        nltk.data.path.append(wordnet)
    try:
        from nltk.corpus import wordnet as reader

        reader.ensure_loaded()
    except LookupError as exc:
        raise CurateError("datacomp_text: nltk has no wordnet corpus: run `python -m nltk.downloader wordnet` "
                          "(or give `wordnet:` an nltk data folder holding corpora/wordnet)") from exc

    @lru_cache(maxsize=1 << 20)
    def lookup(word: str) -> int | None:
        synsets = reader.synsets(word)
        return synsets[0].offset() if synsets else None

    return lookup


def contains_entity(text: str, lookup: Callable[[str], int | None], offsets: frozenset[int]) -> bool:
    """DataComp's `does_contain_text_entity`."""
    return any(lookup(word) in offsets for word in text.split())


@register
@dataclass(frozen=True)
class DataCompText:
    name: ClassVar[str] = "datacomp_text"
    columns: ClassVar[tuple[str, ...]] = ("caption", "language")

    language: str = "en"  # fasttext English, as in load_uids_with_text_entity_helper
    lemmas: str | None = None  # lemma mode: a file of lemmas, one per line; default timm's ImageNet-21k lemmas
    wordnet: str | None = None  # DataComp's rule: `nltk`, or an nltk data folder holding corpora/wordnet
    synsets: str | None = None  # with `wordnet`: ImageNet-21k WordNet ids; default timm's imagenet21k_goog list

    def evaluate(self, table: pa.Table) -> StepResult:
        captions = strings(table, "caption")
        if self.wordnet is not None:
            lookup, offsets = first_synset(self.wordnet), synset_offsets(self.synsets or imagenet21k_synsets())
            has = np.array([contains_entity(c, lookup, offsets) for c in captions], dtype=bool)
        else:
            matcher = LemmaMatcher.get(self.lemmas or imagenet21k_lemmas(), words=True)
            has = np.array([matcher.matches(c) for c in captions], dtype=bool)
        lang = strings(table, "language")
        return StepResult([("not_english", lang != self.language), ("no_imagenet_lemma", ~has)], self.report())

    def report(self) -> dict:
        if self.wordnet is None:
            return {"language": self.language, "lemmas": self.lemmas}
        return {"language": self.language, "wordnet": self.wordnet, "synsets": self.synsets}
