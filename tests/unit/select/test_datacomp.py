"""DataComp's policy on hand-checkable rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.errors import CurateError
from curate.select.policy import apply, make_step
from curate.select.run import u8u8_to_uids, uids_to_u8u8


def _pool(rows):
    cols = ("uid", "caption", "language", "original_width", "original_height", "clip_similarity")
    return pa.table({c: [r[i] for r in rows] for i, c in enumerate(cols)})


POOL = _pool([
    ("a" * 32, "a red circle on grey", "en", 300, 300, 0.9),  # kept
    ("b" * 32, "un cercle rouge sur fond gris", "fr", 300, 300, 0.9),  # not English
    ("c" * 32, "red circle", "en", 300, 300, 0.9),  # 2 words
    ("d" * 32, "a b c", "en", 300, 300, 0.9),  # 5 characters
    ("e" * 32, "a red circle on grey", "en", 199, 400, 0.9),  # shorter side 199
    ("f" * 32, "a red circle on grey", "en", 601, 200, 0.9),  # aspect 3.005
    ("0" * 32, "a red circle on grey", "en", 600, 200, 0.1),  # aspect exactly 3 passes; low score
    ("1" * 32, "un cercle", "fr", 10, 10, 0.0),  # fails everything: the first check names it
])


def test_basic_filter_reasons_in_order():
    d = apply([make_step("datacomp_basic"), make_step("clip_score", fraction=None, threshold=0.5)], POOL)
    assert d.reason.tolist() == [None, "not_english", "too_few_words", "caption_too_short", "image_too_small",
                                 "aspect_ratio", "low_clip_score", "not_english"]
    assert d.step.tolist()[6] == "clip_score"


def test_top_fraction_keeps_every_tie_at_datacomps_threshold():
    """DataComp's get_threshold: index int(5 * 0.5) = 2 of [0.9, 0.5, 0.5, 0.5, 0.1] is 0.5; every 0.5 kept."""
    table = _pool([(f"{i:032x}", "a b c d", "en", 300, 300, s) for i, s in enumerate([0.5, 0.9, 0.5, 0.1, 0.5])])
    d = apply([make_step("clip_score", fraction=0.5)], table)
    assert [i for i, r in enumerate(d.reason) if r is None] == [0, 1, 2, 4]
    assert d.resolved["clip_score"]["threshold"] == 0.5


def test_exact_cut_keeps_exactly_ceil_and_breaks_ties_by_uid():
    table = _pool([(f"{i:032x}", "a b c d", "en", 300, 300, s) for i, s in enumerate([0.5, 0.9, 0.5, 0.1, 0.5])])
    d = apply([make_step("clip_score", fraction=0.5, cut="exact")], table)
    kept = [i for i, r in enumerate(d.reason) if r is None]
    assert kept == [0, 1, 2]  # ceil(2.5) = 3: 0.9, then the two smallest uids at 0.5
    assert d.resolved["clip_score"]["threshold"] == 0.5


def test_bad_policy_config_is_a_clear_error():
    with pytest.raises(CurateError, match="exactly one of fraction and threshold"):
        make_step("clip_score", fraction=0.3, threshold=0.3)
    with pytest.raises(CurateError, match="unknown policy step"):
        make_step("nope")
    with pytest.raises(CurateError, match="no parameter"):
        make_step("datacomp_basic", min_pixels=3)


def test_u8u8_roundtrip_matches_datacomp_layout():
    uids = ["ffffffffffffffff0000000000000001", "00000000000000010000000000000002"]
    arr = uids_to_u8u8(uids)
    assert arr.dtype == np.dtype("u8,u8")
    assert arr[0]["f0"] == 1 and arr[0]["f1"] == 2  # sorted, (upper, lower) 64-bit halves
    assert u8u8_to_uids(arr) == sorted(uids)
