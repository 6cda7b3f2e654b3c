"""MetaCLIP metadata: entry lists and substring matching with Aho-Corasick (pyahocorasick).

Lists are MetaCLIP's `metadata.json` (a JSON list of strings; an entry's id is its index) or a text file
(one entry per line), read through fsspec. Three ways to match a caption:
- `metaclip` (MetaCLIP 1, facebookresearch/MetaCLIP metaclip/substr_matching.py, `substr_matching`):
  the caption goes through `spacing` (" text ", the punctuation , . ; : ? ! ` wrapped in spaces, \\t \\n
  \\r made spaces) and an entry matches where " entry " occurs in it; case is kept.
- `metaclip2` (MetaCLIP 2, metaclip/curation/substr_matching.py, `get_spaced_metadata`): the same, but
  an entry gets no space on a side whose character is CJK, Thai, Lao, Burmese, Khmer, Tibetan or
  punctuation, so entries match inside text written without spaces; the caption is stripped first.
- `lower`: curate's earlier rule: the caption and the entries lowercased, any substring matches.
An automaton is built once per process and list (a cache), so each worker pays for it once.
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from functools import cache

import ahocorasick

from curate.errors import CurateError
from curate.io import fs
from curate.select.text import LemmaMatcher

MODES = ("metaclip", "metaclip2", "lower")
_WRAP = (",", ".", ";", ":", "?", "!", "`")
_SPACE = ("\t", "\n", "\r")
# MetaCLIP 2's `additional_punctuation` (full-width and CJK punctuation), besides string.punctuation
_EXTRA_PUNCT = frozenset("，。、；：？！“”‘’（）【】《》〈〉「」『』～—")
_NO_SPACE_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
                    (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF), (0x2CEB0, 0x2EBEF), (0xF900, 0xFAFF),
                    (0x2E80, 0x2EFF), (0x2F00, 0x2FDF), (0x2FF0, 0x2FFF),  # CJK
                    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1000, 0x109F), (0x1780, 0x17FF),
                    (0x0F00, 0x0FFF))  # Thai, Lao, Burmese, Khmer, Tibetan


def spacing(text: str) -> str:
    """MetaCLIP's `spacing`."""
    out = f" {text} "
    for p in _WRAP:
        out = out.replace(p, f" {p} ")
    for c in _SPACE:
        out = out.replace(c, " ")
    return out


def is_cjk_or_similar(char: str) -> bool:
    """MetaCLIP 2's `is_cjk_or_similar`: a script written without spaces, or punctuation."""
    code = ord(char)
    return (any(lo <= code <= hi for lo, hi in _NO_SPACE_RANGES) or char in string.punctuation
            or char in _EXTRA_PUNCT)


def spaced_entry(entry: str, mode: str) -> str:
    if mode == "metaclip":
        return f" {entry} "
    head = entry if is_cjk_or_similar(entry[0]) else f" {entry}"  # MetaCLIP 2's `get_spaced_metadata`
    return head if is_cjk_or_similar(entry[-1]) else f"{head} "


def read_metadata(path: str) -> list[str]:
    """Entries in id order: a JSON list of strings (MetaCLIP's metadata.json), or one per line."""
    fs_, p = fs.url_to_fs(path)
    try:
        with fs_.open(p, "rb") as fh:
            raw = fh.read().decode("utf-8")
    except FileNotFoundError as exc:
        raise CurateError(f"metaclip: no entry list {path}") from exc
    except UnicodeDecodeError as exc:
        raise CurateError(f"metaclip: entry list {path} is not UTF-8 text") from exc
    if path.endswith(".json"):
        try:
            entries = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CurateError(f"metaclip: {path} is not valid JSON ({exc.msg}, line {exc.lineno})") from exc
        if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
            raise CurateError(f"metaclip: {path} must be a JSON list of strings, as MetaCLIP's metadata.json")
    else:
        entries = [line.strip() for line in raw.splitlines()]
        entries = [e for e in entries if e and not e.startswith("#")]
    if not entries or any(not e for e in entries):
        raise CurateError(f"metaclip: entry list {path} is empty or has an empty entry")
    return entries


class EntryMatcher:
    """Ids of the entries of one list found in a caption (MetaCLIP's rules: see the module docstring)."""

    def __init__(self, entries: list[str], mode: str) -> None:
        self.size = len(entries)
        self.strip = mode == "metaclip2"  # MetaCLIP 2's count_per_shard matches `txt.strip()`
        self.automaton = ahocorasick.Automaton()
        for i, entry in enumerate(entries):  # a repeated key keeps its last id, as in MetaCLIP's automaton
            self.automaton.add_word(spaced_entry(entry, mode), i)
        self.automaton.make_automaton()

    def __len__(self) -> int:
        return self.size

    def find(self, text: str) -> list[int]:
        return sorted({i for _, i in self.automaton.iter(spacing(text.strip() if self.strip else text))})


@cache
def matcher(path: str, mode: str) -> EntryMatcher | LemmaMatcher:
    if mode == "lower":
        return LemmaMatcher.get(path, words=False)
    return EntryMatcher(read_metadata(path), mode)


@dataclass(frozen=True)
class Vocabulary:
    """One entry list, or one per language (MetaCLIP 2): entry ids are global, each language's list
    starting where the previous one (in language order) ends."""

    lists: tuple[tuple[str, str], ...]  # (language, path), sorted; language "*" for a single list
    mode: str

    @property
    def bases(self) -> dict[str, int]:
        out, base = {}, 0
        for lang, path in self.lists:
            out[lang] = base
            base += len(matcher(path, self.mode))
        return out

    @property
    def size(self) -> int:
        return sum(len(matcher(path, self.mode)) for _, path in self.lists)

    def ranges(self) -> dict[str, tuple[int, int]]:
        bases = self.bases
        return {lang: (bases[lang], bases[lang] + len(matcher(path, self.mode))) for lang, path in self.lists}

    def find(self, captions: list[str | None], languages: list[str | None] | None) -> list[list[int]]:
        """Global entry ids per caption. Per language, a caption of a language without a list uses the
        `other` list when there is one (MetaCLIP 2's `lid_langcode_to_metadata_langcode`), else none."""
        paths, bases = dict(self.lists), self.bases
        out = []
        for i, caption in enumerate(captions):
            lang = "*" if languages is None else (languages[i] if languages[i] in paths else "other")
            if lang not in paths or not caption:
                out.append([])
                continue
            base = bases[lang]
            out.append([base + e for e in matcher(paths[lang], self.mode).find(caption)])
        return out
