"""Each shipped DataComp policy keeps the uids that DataComp's own code keeps, on hand-made pools where
DataComp's rules and curate's earlier ones differ: n * f integral (and not representable), ties across
the cut, NaN and null scores, non-breaking and ideographic spaces, newlines.

The reference below is written from DataComp's baselines/apply_filter.py (pandas and numpy, fasttext
on the raw captions) and calls nothing of curate; curate gets its `language` column from the score
stage's language ID, as in a run."""

from __future__ import annotations

import fasttext
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from curate.engines.local import LocalEngine
from curate.models.langid import LangId, bundled_model_path
from curate.select import datacomp_text
from curate.select.execute import select_frame
from curate.select.policy import load_policy, policy_from_dict

CAPTIONS = [
    "a photo of a golden retriever dog on the beach", "photo\u00a0of\u00a0a\u00a0red\u00a0car",
    "a\u3000dog\u3000on\u3000grass", "Sale\u00a0!\u00a0cheap\u00a0shoes", "I\u00a0love\u00a0you",
    "blue\u00a0sky\u00a0photo", "my\u00a0dog\u00a0photo", "one\u00a0two\u00a0three",
    "red\u00a0apple\u00a0on\u00a0table",
    "a red\ncar parked outside", "cat\n", "dog\nhouse", "\n\n\nab", "a tabby cat sleeping", "dog. house. cat.",
    "une photo d'un chien sur la plage", "Bild einer roten Katze", "the\u2003big\u2003house", "a b", "ab cd",
    "a\r\tred\tbicycle", "two dogs and a cat in the garden", "Apple pie recipe with cinnamon",
    "a\u00a0cat", "sunset over the sea", "view of the mountains", "the dog", "a DOG running", "x\u00a0y\u00a0z",
    "a kitten playing with a ball of yarn", "breakfast table with coffee", "old red barn in winter",
    "stock photo of business people", "beautiful flower garden", "cat cat cat", "printable calendar 2020",
    "car", "vintage car show", "a map of the city", "the new bike",
]
N = len(CAPTIONS)  # 40: int(40 * 0.3) = 12, integral
# L/14 scores: descending indexes 11-13 (0-based) are all 0.27, so the cut at 12 splits a tie; NaN and null too
L14 = [0.40, 0.31, 0.33, 0.25, 0.30, 0.25, 0.29, 0.25, 0.31, 0.22, 0.25, np.nan, 0.28, 0.18, None, 0.25, 0.32,
       0.27, 0.35, 0.25, 0.20, 0.27, 0.24, 0.25, 0.19, 0.21, None, 0.34, 0.23, 0.25, 0.17, 0.27, np.nan, 0.16,
       0.25, 0.15, 0.29, 0.14, 0.25, 0.13]
B32 = [round(0.2 + 0.01 * ((7 * i) % 11), 2) for i in range(N)]
B32[5] = np.nan
WIDTH = [300, 300, 640, 199, 200, 600, 601, 300, 300, 300] * 4
HEIGHT = [300, 200, 480, 400, 600, 200, 200, 300, 300, 300] * 4
WORDS = {"dog": 2084071, "cat": 2121620, "car": 2958343, "Apple": 7739125, "house": 3544360, "kitten": 2122725,
         "bike": 2834778, "DOG": 2084071, "flower": 11939491, "barn": 2793495, "map": 6631404}
IN21K = [f"n{o:08d}" for o in (2084071, 2121620, 2958343, 3544360, 2122725, 2793495)] + ["v11939491"]


def make_pool() -> pa.Table:
    rng = np.random.default_rng(16)
    uids = [f"{int(u):016x}{i:016x}" for i, u in enumerate(rng.integers(0, 2**62, N))]
    emb = rng.normal(size=(N, 8)).astype(np.float16)
    language, _ = LangId().load().predict(CAPTIONS)  # the score stage's language column
    return pa.table({
        "uid": uids, "caption": CAPTIONS, "language": language,
        "original_width": WIDTH, "original_height": HEIGHT,
        "clip_vit_l_14": pa.array([None if v is None else v for v in L14], pa.float32()),
        "clip_vit_b_32": pa.array(B32, pa.float32()),
        "image_embedding": pa.array(list(emb.astype(np.float32)), pa.list_(pa.float32())),
    })


# ---- DataComp's rules, from baselines/apply_filter.py -------------------------------------------------

def get_threshold(df: pd.DataFrame, key: str, fraction: float) -> float:
    n = int(len(df) * fraction)
    return -np.sort(-df[key].values)[n]


def fasttext_language(text: str, model) -> str:  # get_fasttext_language
    return model.predict(text.replace("\n", " "))[0][0].split("__label__")[1]


def basic_filter(df: pd.DataFrame, model) -> set[str]:  # load_uids_with_basic_filter_helper
    english = df.text.apply(lambda x: fasttext_language(x, model)) == "en"
    caption = (df.text.apply(lambda x: len(x.split())) > 2) & (df.text.apply(len) > 5)
    lo = np.minimum(df.original_width, df.original_height)
    hi = np.maximum(df.original_width, df.original_height)
    image = (lo >= 200) & (hi / lo <= 3.0)
    return set(df.uid[english & caption & image])


def clip_filter(df: pd.DataFrame, key: str, fraction: float) -> set[str]:  # load_uids_with_clip_score
    threshold = get_threshold(df, key, fraction)
    return set(df[df[key] >= threshold].uid)


def text_filter(df: pd.DataFrame, model, first_synset: dict, entity_ids: list[str]) -> set[str]:
    entity_set = [int(x.strip()[1:]) for x in entity_ids]

    def contains(text: str) -> bool:  # does_contain_text_entity, with a fixed first-synset table
        return any(word in first_synset and first_synset[word] in entity_set for word in text.split())

    english = df.text.apply(lambda x: fasttext_language(x, model)) == "en"
    return set(df.uid[english & df.text.apply(contains)])


def image_filter(df: pd.DataFrame, model, emb: np.ndarray, centroids: np.ndarray, target: np.ndarray,
                 threshold: float | None = None, key: str | None = None) -> set[str]:
    if threshold is not None:  # image_filter_helper with arch: the clip threshold first
        index = (df[key] >= threshold).to_numpy()
        df, emb = df[index], emb[index]
    words = df.text.apply(lambda x: len(fasttext.tokenize(x)))  # caption_filter
    chars = df.text.apply(len)
    preds, _ = model.predict([x.replace("\n", " ") for x in df.text.values], k=1)
    english = np.array([p[0].replace("__label__", "") == "en" for p in preds])
    mask = (english & (words > 1) & (chars > 5)).to_numpy()
    targets = np.unique(np.argmax(np.einsum("ik,jk->ij", target, centroids), axis=1))
    labels = np.argmax(np.einsum("ik,jk->ij", emb[mask].astype(np.float32), centroids), axis=1)
    return set(df.uid[mask][np.isin(labels, targets)])


# ---- the comparison ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pool() -> pa.Table:
    return make_pool()


@pytest.fixture(scope="module")
def reference(pool):
    df = pd.DataFrame({"uid": pool.column("uid").to_pylist(), "text": CAPTIONS, "original_width": WIDTH,
                       "original_height": HEIGHT, "clip_l14_similarity_score": pool.column("clip_vit_l_14").to_numpy(),
                       "clip_b32_similarity_score": pool.column("clip_vit_b_32").to_numpy()})
    return df, fasttext.load_model(str(bundled_model_path()))


@pytest.fixture()
def files(tmp_path, pool, monkeypatch):
    rng = np.random.default_rng(3)
    centroids = rng.normal(size=(6, 8)).astype(np.float32)
    target = rng.normal(size=(4, 8)).astype(np.float32) * 3  # not unit length, as DataComp's may not be
    np.save(tmp_path / "centroids.npy", centroids)
    np.save(tmp_path / "reference.npy", target)
    (tmp_path / "in21k.txt").write_text("\n".join(IN21K) + "\n")
    monkeypatch.setattr(datacomp_text, "first_synset", lambda wordnet: WORDS.get)
    return {"centroids": centroids, "target": target, "dir": tmp_path}


def curate_kept(pool: pa.Table, name: str, overrides: dict | None = None) -> set[str]:
    policy = load_policy(name).describe()
    steps = [{"step": s["name"], **{k: v for k, v in s["params"].items() if v is not None},
              **(overrides or {}).get(s["name"], {})} for s in policy["steps"]]
    frame, _ = select_frame(LocalEngine(), pool, policy_from_dict({"steps": steps}))
    return {u for u, r in zip(frame.column("uid").to_pylist(), frame.column("_reason").to_pylist(), strict=True)
            if r is None}


def test_every_datacomp_baseline_keeps_datacomps_uids(pool, reference, files):
    df, model = reference
    emb = np.array(pool.column("image_embedding").to_pylist(), dtype=np.float32)
    image = {"reference": str(files["dir"] / "reference.npy"), "centroids": str(files["dir"] / "centroids.npy")}
    text = {"wordnet": "fake", "synsets": str(files["dir"] / "in21k.txt")}
    l14 = "clip_l14_similarity_score"
    expected = {
        "datacomp-basic": basic_filter(df, model),
        "datacomp-clip-score": clip_filter(df, l14, 0.3),
        "datacomp-clip-score-b32": clip_filter(df, "clip_b32_similarity_score", 0.3),
        "datacomp-text": text_filter(df, model, WORDS, IN21K),
        "datacomp-image": image_filter(df, model, emb, files["centroids"], files["target"]),
        "datacomp-1b": image_filter(df, model, emb, files["centroids"], files["target"],
                                    get_threshold(df, l14, 0.3), l14),
    }
    overrides = {"datacomp_image": image, "datacomp_text": text}
    differing = {name: len(curate_kept(pool, name, overrides) ^ uids) for name, uids in expected.items()}
    assert differing == dict.fromkeys(expected, 0)
    assert all(expected.values())  # no baseline is trivially empty on this pool


def test_the_pools_tell_the_rules_apart(pool, reference):
    """Where curate's earlier rules would have kept other uids: the cut and the caption normalisation."""
    df, model = reference
    exact = curate_kept(pool, "datacomp-clip-score", {"clip_score": {"cut": "exact"}})
    datacomp = clip_filter(df, "clip_l14_similarity_score", 0.3)
    assert len(exact) == 12 and len(datacomp) == 14 and exact < datacomp  # the three 0.27s all kept
    collapsed = [model.predict(" ".join(c.split()))[0][0] for c in CAPTIONS]
    as_written = [model.predict(c.replace("\n", " "))[0][0] for c in CAPTIONS]
    assert sum(a != b for a, b in zip(collapsed, as_written, strict=True)) >= 5


@pytest.mark.parametrize(("n", "fraction", "nan"), [(100, 0.29, 0), (40, 0.3, 0), (10, 0.9, 3), (10, 1.0, 2),
                                                     (7, 0.5, 7)])
def test_threshold_arithmetic_and_missing_scores(n, fraction, nan):
    """int(100 * 0.29) is 28, not 29; an index among the NaNs keeps nothing; fraction 1 (an IndexError in
    DataComp) keeps every numeric score; null and NaN are never kept."""
    rng = np.random.default_rng(n)
    values = np.round(rng.uniform(0, 1, n), 1)
    values[:nan] = np.nan
    table = pa.table({"uid": [f"{i:032x}" for i in range(n)],
                      "s": pa.array([None if i == 0 and nan else v for i, v in enumerate(values)], pa.float64())})
    frame, _ = select_frame(LocalEngine(), table, policy_from_dict(
        {"steps": [{"step": "clip_score", "column": "s", "fraction": fraction}]}))
    kept = {u for u, r in zip(frame.column("uid").to_pylist(), frame.column("_reason").to_pylist(), strict=True)
            if r is None}
    df = pd.DataFrame({"uid": table.column("uid").to_pylist(), "s": values})
    if int(n * fraction) < n:
        expected = set(df[df.s >= get_threshold(df, "s", fraction)].uid)
    else:
        expected = set(df[df.s.notna()].uid)
    assert kept == expected


def test_fasttext_token_count_is_fasttexts():
    from curate.select.datacomp import fasttext_token_count

    for text in CAPTIONS + ["a\x00b", "\n", "", "  ", "x\n\ny", "\va\fb"]:
        assert fasttext_token_count(text) == len(fasttext.tokenize(text)), repr(text)


def test_wordnet_mode_asks_nltk_for_each_words_first_synset():
    """Where nltk and its wordnet corpus are installed: the lookup against nltk's own answers, word by
    word, as does_contain_text_entity asks them."""
    pytest.importorskip("nltk")
    from nltk.corpus import wordnet

    try:
        wordnet.ensure_loaded()
    except LookupError:
        pytest.skip("nltk has no wordnet corpus here")
    lookup = datacomp_text.first_synset.__wrapped__("nltk")
    for word in ["dog", "Dogs", "cats", "running", "New", "qwzx", "dog."]:
        synsets = wordnet.synsets(word)
        assert lookup(word) == (synsets[0].offset() if synsets else None)


def test_wordnet_mode_without_its_data_is_a_one_line_error(tmp_path):
    from curate.errors import CurateError

    with pytest.raises(CurateError, match="nltk"):
        datacomp_text.first_synset.__wrapped__(str(tmp_path / "missing"))
