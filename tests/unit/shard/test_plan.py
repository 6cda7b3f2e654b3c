import hashlib
from collections import Counter

import numpy as np
import pytest

from curate.errors import CurateError
from curate.shard import plan

UIDS = [f"{i:032x}" for i in range(50)]


@pytest.mark.parametrize("samples_seen", [0, 1, 49, 50, 51, 137, 1000])
def test_counts_sum_to_budget_and_stay_within_one_of_the_weighted_share(samples_seen):
    w = np.random.default_rng(samples_seen).uniform(0.1, 5.0, len(UIDS))
    c = plan.counts(UIDS, w, samples_seen)
    assert c.dtype == np.int64 and c.sum() == samples_seen
    share = samples_seen * w / w.sum()
    assert np.all(np.abs(c - share) < 1)
    # weights respected: a heavier sample never gets fewer copies than a lighter one
    order = np.argsort(w)
    assert np.all(np.diff(c[order]) >= 0)


def test_equal_weights_give_whole_passes_and_ties_go_to_the_smaller_uid():
    c = plan.counts(UIDS, np.ones(50), 9 * 50 + 3)
    assert Counter(c.tolist()) == {9: 47, 10: 3}
    assert np.flatnonzero(c == 10).tolist() == [0, 1, 2]


def test_trainer_terms_passes_and_samples_seen():
    assert plan.PlanRequest().budget(1400) == 1400
    assert plan.PlanRequest(passes=9.142857).budget(1400) == 12800
    assert plan.PlanRequest(samples_seen=int(12.8e9)).budget(int(1.4e9)) == 12_800_000_000
    with pytest.raises(CurateError, match="not both"):
        plan.PlanRequest(samples_seen=5, passes=1.0).budget(5)


def test_counts_refuse_bad_weights():
    with pytest.raises(CurateError, match="finite"):
        plan.counts(UIDS[:2], np.array([1.0, -1.0]), 3)
    with pytest.raises(CurateError, match="zero"):
        plan.counts(UIDS[:2], np.zeros(2), 3)
    with pytest.raises(CurateError, match="empty"):
        plan.counts([], np.zeros(0), 3)


def test_a_huge_budget_is_exact():
    w = np.random.default_rng(0).uniform(0.5, 2.0, 1000)
    c = plan.counts([f"{i:032x}" for i in range(1000)], w, 12_800_000_000)
    assert c.sum() == 12_800_000_000


def test_stream_holds_each_sample_its_count_with_copies_in_different_passes():
    c = plan.counts(UIDS, np.arange(1, 51, dtype=float), 300)
    idx, copy = plan.stream(UIDS, c, seed=3)
    assert len(idx) == 300
    assert Counter(idx.tolist()) == {i: int(n) for i, n in enumerate(c) if n}
    for i in range(len(UIDS)):
        assert sorted(copy[idx == i].tolist()) == list(range(c[i]))
    # passes are contiguous stretches, each a permutation of its members
    assert np.all(np.diff(copy) >= 0)
    first_pass = idx[copy == 0]
    assert sorted(first_pass.tolist()) == np.flatnonzero(c > 0).tolist()


def test_pass_zero_keeps_the_one_pass_order_and_later_passes_reshuffle():
    legacy = sorted(range(len(UIDS)), key=lambda i: hashlib.sha256(f"7:{UIDS[i]}".encode()).digest())
    assert plan.pass_order(UIDS, 7, 0).tolist() == legacy
    assert plan.pass_order(UIDS, 7, 1).tolist() != legacy
    assert plan.pass_order(UIDS, 8, 0).tolist() != legacy
    assert plan.histogram(np.array([1, 1, 2])) == {"1": 2, "2": 1}
