"""Every shipped policy loads, and each recipe decides hand-checkable rows as its paper says."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from curate import schemas
from curate.engines.local import LocalEngine
from curate.errors import CurateError
from curate.select.execute import select_frame
from curate.select.policy import load_policy, policy_from_dict, policy_names


def decide(table: pa.Table, data: dict):
    frame, resolved = select_frame(LocalEngine(), table, policy_from_dict(data))
    return frame, resolved


def kept(frame: pa.Table) -> np.ndarray:
    return np.array([r is None for r in frame.column("_reason").to_pylist()])


def test_every_shipped_policy_loads_with_known_steps_and_reasons():
    names = policy_names()
    assert {"datacomp-basic", "datacomp-clip-score", "datacomp-1b", "dfn", "laion", "relaion-research",
            "relaion-research-safe", "metaclip"} <= set(names)
    for name in names:
        policy = load_policy(name)
        assert policy.steps and policy.name == name
    assert "low_dfn_score" in schemas.reasons("select") and "metaclip_not_sampled" in schemas.reasons("select")


def test_bad_policies_are_one_line_errors(tmp_path):
    with pytest.raises(CurateError, match="no policy"):
        load_policy("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [{step: clip_score, fraction: 2}]")
    with pytest.raises(CurateError, match="not in"):
        load_policy(str(bad))
    bad.write_text("steps: [{step: laion_clip, bogus: 1}]")
    with pytest.raises(CurateError, match="no parameter"):
        load_policy(str(bad))
    bad.write_text("steps: {")
    with pytest.raises(CurateError, match="YAML"):
        load_policy(str(bad))


def test_dfn_keeps_exactly_the_top_fifteen_percent(pool):
    frame, resolved = decide(pool, {"steps": [{"step": "dfn"}]})
    k = math.ceil(0.15 * pool.num_rows)
    mask = kept(frame)
    assert mask.sum() == k
    dfn = pool.column("clip_dfn").to_numpy()
    assert dfn[mask].min() >= dfn[~mask].max()
    assert set(frame.column("_reason").to_pylist()) == {None, "low_dfn_score"}
    assert resolved["dfn"]["threshold"] == pytest.approx(float(dfn[mask].min()))


def test_target_size_is_exact_with_ties_broken_by_uid(pool):
    basic, _ = decide(pool, {"steps": ["datacomp_basic"]})
    sims = pool.column("clip_similarity").to_numpy().astype(float)
    ranked = np.sort(sims[kept(basic)])[::-1]
    k = next(i for i in range(5, len(ranked)) if ranked[i - 1] == ranked[i])  # the cut falls inside a tie
    frame, resolved = decide(pool, {"target_size": k, "steps": ["datacomp_basic", {"step": "clip_score"}]})
    mask = kept(frame)
    assert mask.sum() == k
    cut = resolved["clip_score"]["threshold"]
    uids = np.array(pool.column("uid").to_pylist())
    at_cut = kept(basic) & (sims == cut)
    assert 0 < (at_cut & mask).sum() < at_cut.sum()
    assert max(uids[at_cut & mask]) < min(uids[at_cut & ~mask])
    assert (sims[kept(basic) & ~mask] <= cut).all()
    with pytest.raises(CurateError, match="unreachable"):
        decide(pool, {"target_size": 10_000, "steps": ["datacomp_basic", "clip_score"]})


def test_target_size_without_a_ranking_step_samples_by_seeded_hash(pool):
    frame, _ = decide(pool, {"target_size": 20, "steps": ["datacomp_basic"]})
    assert kept(frame).sum() == 20
    assert "below_target_size" in frame.column("_reason").to_pylist()
    again, _ = decide(pool, {"target_size": 20, "steps": ["datacomp_basic"]})
    assert again.column("_reason").to_pylist() == frame.column("_reason").to_pylist()


def test_laion_thresholds_by_language(pool):
    frame, _ = decide(pool, {"steps": [{"step": "laion_clip"}]})
    mask = kept(frame)
    en = np.array(pool.column("language").to_pylist()) == "en"
    b32 = pool.column("clip_vit_b_32").to_numpy().astype(float)  # scores compare as float64 everywhere
    multi = pool.column("clip_multilingual").to_numpy().astype(float)
    assert (mask[en] == (b32[en] >= 0.28)).all()
    assert (mask[~en] == (multi[~en] >= 0.26)).all()


def test_relaion_research_safe_adds_the_nsfw_probe(pool):
    frame, _ = select_frame(LocalEngine(), pool, load_policy("relaion-research-safe"))
    research, _ = select_frame(LocalEngine(), pool, load_policy("relaion-research"))
    nsfw = pool.column("nsfw").to_numpy()
    safe, plain = kept(frame), kept(research)
    assert (safe == (plain & (nsfw <= 0.5))).all()
    assert "nsfw_probe" in frame.column("_reason").to_pylist()


def test_reason_is_the_first_failing_step_in_policy_order(pool):
    frame, _ = decide(pool, {"target_size": 30, "steps": [{"step": "clip_score"}, "datacomp_basic"]})
    # worked out here: basic's rules (English, > 2 words, > 5 chars, short side >= 200, aspect <= 3), then
    # the target's cut, chosen among the rows basic keeps: the 30th by (clip_similarity desc, uid asc)
    caps = pool.column("caption").to_pylist()
    w, h = pool.column("original_width").to_numpy(), pool.column("original_height").to_numpy()
    basic_ok = ((np.array(pool.column("language").to_pylist()) == "en")
                & np.array([len(c.split()) > 2 and len(c) > 5 for c in caps])
                & (np.minimum(w, h) >= 200) & (np.maximum(w, h) <= 3 * np.minimum(w, h)))
    sim, uids = pool.column("clip_similarity").to_numpy(), pool.column("uid").to_pylist()
    ranked = sorted((-float(sim[i]), uids[i]) for i in np.flatnonzero(basic_ok))
    cut = ranked[29]
    below = np.array([(-float(s), u) > cut for s, u in zip(sim, uids, strict=True)])
    steps = np.array(frame.column("_step").to_pylist(), dtype=object)
    reasons = np.array(frame.column("_reason").to_pylist(), dtype=object)
    both = below & ~basic_ok  # rejected by both steps: clip_score comes first in the policy, so it names them
    assert both.sum() > 10
    assert (steps[both] == "clip_score").all() and (reasons[both] == "low_clip_score").all()
    assert (steps[~below & ~basic_ok] == "datacomp_basic").all()
    assert (kept(frame) == (~below & basic_ok)).all() and kept(frame).sum() == 30


def test_datacomp_text_filter_needs_an_imagenet_lemma(pool):
    frame, resolved = decide(pool, {"steps": [{"step": "datacomp_text"}]})
    rows = zip(pool.column("caption").to_pylist(), pool.column("language").to_pylist(),
               frame.column("_reason").to_pylist(), strict=True)
    by_caption = {c: r for c, lang, r in rows if lang != "de"}
    assert by_caption["a photo of a golden retriever dog"] is None
    assert by_caption["two tabby cats sleeping"] is None  # "tabby" is a lemma; "cats" a plural
    assert by_caption["zqx vbnm qwerty"] == "no_imagenet_lemma"
    assert by_caption["un chien sur la plage"] == "not_english"
    assert resolved["datacomp_text"] == {"language": "en", "lemmas": None}


def test_probe_bounds_any_column_and_a_missing_score_fails_only_a_minimum():
    table = pa.table({"uid": [f"{i:032x}" for i in range(6)],
                      "aesthetic": pa.array([4.9, 5.0, 6.2, None, 7.5, float("nan")], pa.float32())})
    frame, resolved = decide(table, {"steps": [{"step": "probe", "column": "aesthetic", "min_value": 5.0}]})
    assert frame.column("_reason").to_pylist() == ["probe_score", None, None, "probe_score", None, "probe_score"]
    assert resolved["probe"] == {"column": "aesthetic", "max_value": None, "min_value": 5.0}
    frame, _ = decide(table, {"steps": [{"step": "probe", "column": "aesthetic", "min_value": 5, "max_value": 7}]})
    assert kept(frame).tolist() == [False, True, True, False, False, False]
    frame, _ = decide(table, {"steps": [{"step": "probe", "column": "aesthetic", "max_value": 6}]})
    assert kept(frame).tolist() == [True, True, False, True, False, True]  # nothing flagged a missing score
    with pytest.raises(CurateError, match="min_value or max_value"):
        policy_from_dict({"steps": [{"step": "probe", "column": "aesthetic"}]})
    with pytest.raises(CurateError, match="needs columns"):
        decide(table, {"steps": [{"step": "probe", "column": "sharpness", "min_value": 1}]})


def test_laion_aesthetics_is_laion_then_an_aesthetic_minimum(pool):
    frame, _ = select_frame(LocalEngine(), pool, load_policy("laion-aesthetics"))
    laion, _ = decide(pool, {"steps": [{"step": "laion_clip"}]})
    aesthetic = pool.column("aesthetic").to_numpy().astype(float)
    assert (kept(frame) == (kept(laion) & (aesthetic >= 5))).all()
    assert "probe_score" in frame.column("_reason").to_pylist()
    assert "probe_score" in schemas.reasons("select") and "semantic_duplicate" in schemas.reasons("select")
