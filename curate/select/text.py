"""Caption matching against entry lists (ImageNet lemmas, MetaCLIP metadata) with Aho-Corasick.

Text is lowercased; with `words=True` non-alphanumeric characters become spaces and an entry must match
whole words (DataComp's text filter), otherwise any substring matches (MetaCLIP's `substr_matching`).
An automaton is built once per process and list, so workers pay for it once.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

import ahocorasick

from curate.errors import CurateError
from curate.io.package import package_path

DATA_DIR = package_path("select", "data")
METACLIP_ENTRIES = DATA_DIR / "metaclip_entries.txt"
_NON_WORD = re.compile(r"[^0-9a-z]+")


def imagenet21k_lemmas() -> str:
    """timm's offline ImageNet-21k synset-to-lemma list (found without importing timm)."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise CurateError("datacomp_text: timm is not installed; give `lemmas:` a file of lemmas")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "_info" / "imagenet_synset_to_lemma.txt"
    if not path.is_file():
        raise CurateError(f"datacomp_text: timm has no lemma list at {path}; give `lemmas:` a file")
    return str(path)


def read_entries(path: str) -> list[str]:
    """Entries from a file: one per line (`#` comments skipped), or timm's `synset<TAB>lemma, lemma` format."""
    p = Path(path)
    if not p.is_file():
        raise CurateError(f"no entry list {path}")
    entries: dict[str, None] = {}
    for line in p.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        items = line.split("\t", 1)[1].split(", ") if "\t" in line else [line]
        for item in items:
            item = item.strip().lower()
            if item:
                entries[item] = None
    if not entries:
        raise CurateError(f"entry list {path} is empty")
    return list(entries)


def normalise_words(text: str) -> str:
    return " " + _NON_WORD.sub(" ", text.lower()).strip() + " "


class LemmaMatcher:
    def __init__(self, entries: list[str], words: bool) -> None:
        self.entries = entries
        self.words = words
        self.automaton = ahocorasick.Automaton()
        for i, entry in enumerate(entries):
            if words:
                key = normalise_words(entry)
                if key.strip():
                    self.automaton.add_word(key, i)
                    self.automaton.add_word(key[:-1] + "s ", i)  # a plain plural
            else:
                self.automaton.add_word(entry, i)
        self.automaton.make_automaton()

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    @cache
    def get(cls, path: str, words: bool) -> LemmaMatcher:
        return cls(read_entries(path), words)

    def _text(self, text: str) -> str:
        return normalise_words(text) if self.words else text.lower()

    def matches(self, text: str) -> bool:
        return next(self.automaton.iter(self._text(text)), None) is not None

    def find(self, text: str) -> list[int]:
        """The sorted, distinct entry ids that occur in `text`."""
        return sorted({i for _, i in self.automaton.iter(self._text(text))})
