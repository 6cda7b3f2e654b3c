"""MetaCLIP's curation (Xu et al. 2023, arXiv 2309.16671; facebookresearch/MetaCLIP): substring-match
each caption against a metadata entry list (curate/select/metadata.py), count matches per entry over
the pool, and balance: an entry keeps each of its matches with probability t / max(count, t)
(metaclip/balancing.py: `entry_count[entry_count < t] = t; entry_prob = t / entry_count`), and a pair
survives if any of its entries keeps it (`balance_sampling`). t = 20,000 at the 400M scale (170,000 for
2.5B). MetaCLIP 2 (arXiv 2507.22062, metaclip/curation/curate.py) does this per language: one list per
language, t given for English, and for every other language the t whose tail holds the same share of
that language's matches (`t_to_p`, then `p_to_t`).

Matching runs per batch on the engine (an annotation column of matched entry ids); the counts are one
pool-wide question (`value_counts` of that column: O(entries) on the driver, never O(rows)); balancing
is row-local again. Sampling is a hash, not a global RNG: the draw for (seed, uid, entry) is blake2b of
the three, read as a uniform number, so it is the same in any process, on any engine, in any batch order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import CurateError
from curate.select.metadata import MODES, Vocabulary, matcher, read_metadata
from curate.select.policy import PoolView, StepResult, register
from curate.select.text import METACLIP_ENTRIES

MATCHES = "_metaclip_entries"


def uniform(seed: int, uid: str, salt: str | int) -> float:
    """A deterministic uniform number in [0, 1) for (seed, uid, salt)."""
    digest = hashlib.blake2b(f"{seed}:{uid}:{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def count_to_prob(counts: np.ndarray, t: float) -> np.ndarray:
    """MetaCLIP's `count_to_prob`: t / max(count, t) (1 for an entry matched at most t times)."""
    c = np.maximum(counts.astype(np.float64), t)
    return np.divide(t, c, out=np.ones(len(c)), where=c > 0)


def t_to_p(counts: np.ndarray, t: float) -> float:
    """MetaCLIP 2's `t_to_p`: the share of all matches that fall on entries matched fewer than t times."""
    return float(counts[counts < t].sum() / counts.sum())


def p_to_t(counts: np.ndarray, p: float) -> float:
    """MetaCLIP 2's `p_to_t`: the count at which the sorted counts' cumulative share is nearest p."""
    ordered = np.sort(counts)
    portion = np.cumsum(ordered) / ordered.sum()
    return float(ordered[int(np.abs(portion - p).argmin())])


@register
@dataclass(frozen=True)
class MetaClip:
    name: ClassVar[str] = "metaclip"
    columns: ClassVar[tuple[str, ...]] = ("uid", "caption")
    annotation_columns: ClassVar[tuple[str, ...]] = (MATCHES,)
    annotation_schema: ClassVar[tuple[pa.Field, ...]] = (pa.field(MATCHES, pa.list_(pa.int32())),)

    entries: str | None = None  # MetaCLIP's metadata.json or a text list; default data/metaclip_entries.txt
    match: str = "lower"  # metaclip (MetaCLIP 1's substr_matching), metaclip2, or lower (lowercased substrings)
    t: int = 20_000  # MetaCLIP 400M: 20,000; MetaCLIP 2.5B (and MetaCLIP 2's English): 170,000
    seed: int = 0
    languages: dict | None = None  # MetaCLIP 2: language -> entry list ("other": the rest); replaces entries
    language_column: str = "language"
    t_language: str = "en"  # with languages: `t` is this language's; the others' follow MetaCLIP 2's rule
    t_languages: dict | None = None  # with languages: explicit t per language, instead of the derived one
    _counts: np.ndarray | None = field(default=None, compare=False, repr=False)  # matches per entry, kept rows
    _probs: np.ndarray | None = field(default=None, compare=False, repr=False)  # sampling probability per entry
    _ts: tuple[tuple[str, float], ...] = ()  # t per list, as applied

    def __post_init__(self) -> None:
        if self.match not in MODES:
            raise CurateError(f"{self.name}: match must be one of {MODES}, not {self.match!r}")
        if self.languages is not None and (not isinstance(self.languages, dict) or not self.languages):
            raise CurateError(f"{self.name}: languages must map language codes to entry lists")
        if self.languages is not None and self.entries is not None:
            raise CurateError(f"{self.name}: give entries (one list) or languages (one list each), not both")
        if not isinstance(self.t, int | float) or self.t <= 0:
            raise CurateError(f"{self.name}: t must be a positive number, not {self.t!r}")

    @property
    def path(self) -> str:
        return self.entries or str(METACLIP_ENTRIES)

    @property
    def vocabulary(self) -> Vocabulary:
        lists = sorted(self.languages.items()) if self.languages else [("*", self.path)]
        return Vocabulary(tuple((str(k), str(v)) for k, v in lists), self.match)

    @property
    def needed(self) -> tuple[str, ...]:
        return (*self.columns, self.language_column) if self.languages else self.columns

    def needs_pool(self) -> bool:
        return self._counts is None

    def annotate(self, table: pa.Table) -> pa.Table:
        langs = table.column(self.language_column).to_pylist() if self.languages else None
        found = self.vocabulary.find(table.column("caption").to_pylist(), langs)
        return table.append_column(self.annotation_schema[0], pa.array(found, pa.list_(pa.int32())))

    def resolve(self, pool: PoolView) -> MetaClip:
        if self._counts is not None:
            return self
        vocab = self.vocabulary
        counts = np.zeros(vocab.size, dtype=np.int64)
        for entry, c in pool.value_counts(MATCHES, kept_only=True).items():
            if entry is not None:
                counts[int(entry)] = c
        ranges = vocab.ranges()
        ts = self._thresholds({lang: counts[lo:hi] for lang, (lo, hi) in ranges.items()})
        probs = np.ones(len(counts))
        for lang, (lo, hi) in ranges.items():
            probs[lo:hi] = count_to_prob(counts[lo:hi], ts[lang])
        return replace(self, _counts=counts, _probs=probs, _ts=tuple(sorted(ts.items())))

    def _thresholds(self, counts: dict[str, np.ndarray]) -> dict[str, float]:
        if not self.languages:
            return {"*": float(self.t)}
        explicit = {str(k): float(v) for k, v in (self.t_languages or {}).items()}
        explicit.setdefault(self.t_language, float(self.t))
        derived = [lang for lang in counts if lang not in explicit]
        if derived and self.t_language not in counts:
            raise CurateError(f"{self.name}: t is for {self.t_language!r}, which has no entry list; give "
                              f"t_languages for {derived}")
        if derived and counts[self.t_language].sum() == 0:
            raise CurateError(f"{self.name}: no kept caption matches a {self.t_language!r} entry, so the other "
                              f"languages' t cannot be derived; give t_languages for {derived}")
        p = t_to_p(counts[self.t_language], explicit[self.t_language]) if derived else 0.0
        out = {}
        for lang, c in counts.items():
            out[lang] = explicit.get(lang, p_to_t(c, p) if c.sum() else float(self.t))
        return out

    def evaluate(self, table: pa.Table) -> StepResult:
        col = table.column(MATCHES)
        n = table.num_rows
        no_match = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False) == 0
        parent = pc.list_parent_indices(col).to_numpy(zero_copy_only=False)
        entry = pc.list_flatten(col).to_numpy(zero_copy_only=False).astype(np.int64)
        prob = self._probs[entry] if len(entry) else np.zeros(0)
        kept = np.zeros(n, dtype=bool)
        kept[parent[prob >= 1]] = True  # an entry under t keeps every match: no draw needed
        draw = ~kept[parent]
        if draw.any():
            uids = table.column("uid").to_pylist()
            hits = [uniform(self.seed, uids[r], e) < p
                    for r, e, p in zip(parent[draw].tolist(), entry[draw].tolist(), prob[draw].tolist(), strict=True)]
            kept[parent[draw][np.array(hits, dtype=bool)]] = True
        return StepResult([("metaclip_no_match", no_match), ("metaclip_not_sampled", ~no_match & ~kept)],
                          self.summary())

    def summary(self) -> dict:
        counts = self._counts if self._counts is not None else np.zeros(0, dtype=np.int64)
        probs = self._probs if self._probs is not None else np.zeros(0)
        out = {"entries": self.path if not self.languages else dict(self.languages), "match": self.match,
               "t": self.t, "seed": self.seed, "n_entries": len(counts), "entries_matched": int((counts > 0).sum()),
               "entries_over_t": int((probs < 1).sum())}
        if self.languages:
            out["t_per_language"] = dict(self._ts)
        return out

    def report(self) -> dict:
        """The summary, and the per-entry counts as a table (select writes it beside selection.json)."""
        return {**self.summary(), "entry_counts": self.counts_table()}

    def counts_table(self) -> pa.Table:
        rows_lang, rows_entry = [], []
        for lang, path in self.vocabulary.lists:
            entries = read_metadata(path) if self.match != "lower" else matcher(path, "lower").entries
            rows_lang += [None if lang == "*" else lang] * len(entries)
            rows_entry += entries
        counts = self._counts if self._counts is not None else np.zeros(len(rows_entry), dtype=np.int64)
        probs = self._probs if self._probs is not None else np.ones(len(rows_entry))
        return pa.table({"entry_id": pa.array(np.arange(len(rows_entry)), pa.int32()),
                         "language": pa.array(rows_lang, pa.string()), "entry": pa.array(rows_entry, pa.string()),
                         "count": pa.array(counts, pa.int64()), "probability": pa.array(probs, pa.float64())})
