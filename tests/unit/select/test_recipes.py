"""MetaCLIP balancing, DataComp's image-based filter, language rebalancing and mixing."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.engines.local import LocalEngine
from curate.errors import CurateError
from curate.select.execute import select_frame
from curate.select.metaclip import uniform
from curate.select.policy import policy_from_dict
from curate.select.rebalance import raise_to_shares


def decide(table, data):
    return select_frame(LocalEngine(), table, policy_from_dict(data))


def test_metaclip_balances_by_entry_counts(pool, tmp_path):
    entries = tmp_path / "entries.txt"
    entries.write_text("circle\ndog\ncat\nbanana\n")
    frame, resolved = decide(pool, {"steps": [{"step": "metaclip", "entries": str(entries), "t": 10, "seed": 3}]})
    caps = pool.column("caption").to_pylist()
    reasons = frame.column("_reason").to_pylist()
    uids = pool.column("uid").to_pylist()
    counts = {e: sum(e in c for c in caps) for e in ["circle", "dog", "cat", "banana"]}
    assert resolved["metaclip"]["entries_over_t"] == sum(c > 10 for c in counts.values())
    for cap, r, uid in zip(caps, reasons, uids, strict=True):
        hits = [i for i, e in enumerate(counts) if e in cap]
        if not hits:
            assert r == "metaclip_no_match"
            continue
        survives = any(uniform(3, uid, i) < min(1, 10 / list(counts.values())[i]) for i in hits)
        assert (r is None) == survives
    kept_dog = sum(r is None and "dog" in c for c, r in zip(caps, reasons, strict=True))
    assert 0 < kept_dog < counts["dog"]  # about t of the matches survive


def test_image_filter_keeps_samples_near_reference_centroids(pool, tmp_path):
    emb = np.array(pool.column("image_embedding").to_pylist(), dtype=np.float32)
    np.save(tmp_path / "ref.npy", emb[:3])  # three pool images as the reference set
    frame, resolved = decide(pool, {"steps": [{"step": "datacomp_image", "reference": str(tmp_path / "ref.npy"),
                                               "k": 8, "train_rows": 200}]})
    reasons = frame.column("_reason").to_pylist()
    assert 1 <= resolved["datacomp_image"]["target_clusters"] <= 3
    assert "not_near_reference_cluster" in reasons
    langs = pool.column("language").to_pylist()
    assert all(r == "not_english" for r, lang in zip(reasons, langs, strict=True) if lang != "en")
    # a reference image's own nearest centroid is a target: the English reference rows with 2+ words are kept
    assert reasons[0] is None and reasons[1] is None


def test_image_filter_with_precomputed_clusters(pool, tmp_path):
    np.save(tmp_path / "ref.npy", np.array([1, 2]))
    table = pool.append_column("cluster", pa.array(np.arange(pool.num_rows) % 5))
    frame, _ = decide(table, {"steps": [{"step": "datacomp_image", "cluster_column": "cluster",
                                         "reference_clusters": str(tmp_path / "ref.npy")}]})
    reasons = frame.column("_reason").to_pylist()
    for i, r in enumerate(reasons):
        if r not in ("not_english", "too_few_words", "caption_too_short"):
            assert (r is None) == (i % 5 in (1, 2))


def test_raise_to_shares_reaches_the_target_and_only_raises():
    counts = {"en": 970, "sw": 5, "yo": 25}
    w = raise_to_shares(counts, {"sw": 0.01, "yo": 0.01, "mi": 0.01})
    assert set(w) == {"sw"}  # yo is already above 1%, mi has no rows
    total = 970 + 25 + w["sw"] * 5
    assert w["sw"] * 5 / total == pytest.approx(0.01)


def test_language_rebalance_sets_weights_and_drops_nothing(pool):
    frame, resolved = decide(pool, {"steps": [{"step": "language_rebalance", "targets": {"de": 0.2}}]})
    assert frame.column("_reason").null_count == pool.num_rows
    weights = np.array(frame.column("_weight").to_pylist())
    de = np.array(pool.column("language").to_pylist()) == "de"
    assert weights[de].sum() / weights.sum() == pytest.approx(0.2)
    assert (weights[~de] == 1).all() and resolved["language_rebalance"]["weights"]["de"] > 1


def test_mix_gives_each_source_its_probability(pool):
    mix = {"step": "mix", "shares": {"a": 0.8, "b": 0.2}}
    frame, _ = decide(pool, {"steps": [{"step": "dfn", "fraction": 0.5}, mix]})
    kept = np.array([r is None for r in frame.column("_reason").to_pylist()])
    w = np.array(frame.column("_weight").to_pylist())[kept]
    src = np.array(pool.column("source").to_pylist())[kept]
    assert w[src == "b"].sum() / w.sum() == pytest.approx(0.2)
    assert w.sum() == pytest.approx(kept.sum())
    with pytest.raises(CurateError, match="sum"):
        policy_from_dict({"steps": [{"step": "mix", "shares": {"a": 0.5}}]})
