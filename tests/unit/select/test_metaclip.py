"""MetaCLIP at full size: its metadata.json, its matching rules, balancing, per-entry counts, MetaCLIP 2's
per-language lists. The expected values come from small reimplementations of MetaCLIP's code here."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.engines.local import LocalEngine
from curate.errors import CurateError
from curate.select.execute import select_frame
from curate.select.metaclip import MATCHES, uniform
from curate.select.policy import policy_from_dict
from curate.select.run import SelectConfig, run_select

from .test_run import make_run

CAPTIONS = ["A Dog, on the beach.", "dogs at the park", "a dog\tand a cat", "New York at night", "new york",
            "a cat", "hot dog!", "cat? dog? both", "Dogecoin", "東京タワーの夜景", "東京 tower", "", None]
ENTRIES = ["dog", "cat", "New York", "hot dog", "東京", "tower", "dog"]  # "dog" twice: the last id wins


def spacing(text: str) -> str:  # MetaCLIP's substr_matching.spacing
    text = f" {text} "
    for p in [",", ".", ";", ":", "?", "!", "`"]:
        text = text.replace(p, f" {p} ")
    for c in ["\t", "\n", "\r"]:
        text = text.replace(c, " ")
    return text


def metaclip_matches(text: str, entries: list[str]) -> list[int]:
    """MetaCLIP 1's substr_matching without an automaton; a repeated entry answers with its last id."""
    last = {e: i for i, e in enumerate(entries)}
    return sorted({last[e] for e in entries if f" {e} " in spacing(text)})


def pool(captions=CAPTIONS, languages=None) -> pa.Table:
    n = len(captions)
    return pa.table({"uid": [f"{i:032x}" for i in range(n)], "caption": pa.array(captions, pa.string()),
                     "language": languages or ["en"] * n})


def decide(table, step):
    frame, resolved = select_frame(LocalEngine(), table, policy_from_dict({"steps": [{"step": "metaclip", **step}]}))
    return frame, resolved["metaclip"]


def test_metadata_json_matched_as_metaclip_does(tmp_path):
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(ENTRIES))
    frame, resolved = decide(pool(), {"entries": str(path), "match": "metaclip", "t": 1000})
    got = frame.column(MATCHES).to_pylist()
    assert got == [metaclip_matches(c or "", ENTRIES) for c in CAPTIONS]
    assert got[0] == [] and got[1] == [] and got[2] == [1, 6]  # case kept; "dogs" is not " dog "; \t a space
    assert got[3] == [2] and got[6] == [3, 6] and got[7] == [1, 6] and got[9] == []  # "?" and "!" wrapped
    counts = np.zeros(len(ENTRIES), dtype=int)
    for ids in got:
        counts[ids] += 1
    table = resolved["entry_counts"]
    assert table.column("count").to_pylist() == counts.tolist() and table.column("entry").to_pylist() == ENTRIES
    assert resolved["n_entries"] == 7 and resolved["entries_matched"] == int((counts > 0).sum())


def test_metaclip2_spacing_matches_inside_unspaced_scripts(tmp_path):
    path = tmp_path / "entries.txt"
    path.write_text("\n".join(ENTRIES[:6]) + "\n")
    frame, _ = decide(pool(), {"entries": str(path), "match": "metaclip2", "t": 1000})
    got = frame.column(MATCHES).to_pylist()
    assert got[9] == [4] and got[10] == [4, 5]  # 東京 needs no spaces around it; "tower" still does
    assert got[8] == []  # Dogecoin: "dog" keeps its spaces (and case)


def test_balancing_keeps_each_match_with_probability_t_over_count(tmp_path):
    captions = [f"photo of a {w}" for w in ["dog"] * 60 + ["cat"] * 6 + ["dog and cat"] * 4 + ["bird"] * 3]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(["dog", "cat", "and cat"]))
    frame, resolved = decide(pool(captions), {"entries": str(path), "match": "metaclip", "t": 8, "seed": 5})
    counts = [64, 10, 4]  # dog in 64 captions, cat in 10, "and cat" in 4
    prob = [8 / max(c, 8) for c in counts]
    for i, (cap, reason) in enumerate(zip(captions, frame.column("_reason").to_pylist(), strict=True)):
        ids = metaclip_matches(cap, ["dog", "cat", "and cat"])
        if not ids:
            assert reason == "metaclip_no_match"
        else:
            survives = any(uniform(5, f"{i:032x}", e) < prob[e] for e in ids)
            assert (reason is None) == survives
    assert resolved["entries_over_t"] == 2
    assert resolved["entry_counts"].column("probability").to_pylist() == pytest.approx(prob)


def p_to_t(counts, p):  # MetaCLIP 2's curation/curate.py
    counts = np.sort(counts)
    portion = np.cumsum(counts) / counts.sum()
    return counts[(np.abs(portion - p)).argmin()]


def test_per_language_lists_and_thresholds(tmp_path):
    (tmp_path / "en.json").write_text(json.dumps(["dog", "cat", "bird"]))
    (tmp_path / "fr.json").write_text(json.dumps(["chien", "chat"]))
    en = ["a dog"] * 9 + ["a cat"] * 3 + ["a bird"]
    fr = ["un chien"] * 5 + ["un chat"] * 2 + ["a dog"]
    table = pool(en + fr, ["en"] * len(en) + ["fr"] * len(fr))
    frame, resolved = decide(table, {"languages": {"en": str(tmp_path / "en.json"), "fr": str(tmp_path / "fr.json")},
                                     "match": "metaclip", "t": 3})
    got = frame.column(MATCHES).to_pylist()
    assert got[:len(en)] == [[0]] * 9 + [[1]] * 3 + [[2]]
    assert got[len(en):] == [[3]] * 5 + [[4]] * 2 + [[]]  # French captions match the French list only
    en_counts = np.array([9, 3, 1])
    p = en_counts[en_counts < 3].sum() / en_counts.sum()  # MetaCLIP 2's t_to_p
    assert resolved["t_per_language"] == {"en": 3.0, "fr": float(p_to_t(np.array([5, 2]), p))}


def test_per_entry_counts_are_written_beside_selection_json(tmp_path):
    pool_, scored = make_run(tmp_path)
    (tmp_path / "m.json").write_text(json.dumps(["dog", "cat", "circle"]))
    policy = tmp_path / "p.yaml"
    policy.write_text(f"steps:\n  - {{step: metaclip, entries: {tmp_path / 'm.json'}, match: metaclip, t: 5}}\n")
    run_select(str(tmp_path), SelectConfig(policy=str(policy), engine="local"))
    selection = json.loads((tmp_path / "select" / "selection.json").read_text())
    assert selection["steps"][0]["resolved"]["entry_counts"] == "metaclip.entry_counts.parquet"
    counts = pq.read_table(tmp_path / "select" / "metaclip.entry_counts.parquet")
    captions = [c for u, c in zip(pool_.column("uid").to_pylist(), pool_.column("caption").to_pylist(), strict=True)
                if u in scored]
    assert counts.column("count").to_pylist() == [sum(f" {e} " in spacing(c) for c in captions)
                                                  for e in ["dog", "cat", "circle"]]


@pytest.mark.parametrize(("text", "message"), [("[1, 2]", "list of strings"), ("{", "not valid JSON"),
                                               ('{"a": 1}', "list of strings"), ("[]", "empty")])
def test_malformed_metadata_is_a_one_line_error(tmp_path, text, message):
    path = tmp_path / "metadata.json"
    path.write_text(text)
    with pytest.raises(CurateError, match=message):
        decide(pool(), {"entries": str(path), "match": "metaclip"})
    with pytest.raises(CurateError, match="no entry list"):
        decide(pool(), {"entries": str(tmp_path / "missing.json"), "match": "metaclip"})
    with pytest.raises(CurateError, match="match must be"):
        decide(pool(), {"match": "fuzzy"})
