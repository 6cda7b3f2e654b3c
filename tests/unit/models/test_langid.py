import hashlib

import pytest

from curate.errors import CurateError
from curate.models.langid import LangId, bundled_model_path, lid_text


def test_bundled_model_is_the_lid176_file():
    path = bundled_model_path()
    assert path.name == "lid.176.ftz" and path.stat().st_size > 900_000


def test_predicts_languages_and_handles_newlines_and_empty():
    labels, probs = LangId().load().predict(["a photo of a red circle on a plain background",
                                             "une photo d'un cercle rouge\nsur un fond uni", "", None])
    assert labels[:2] == ["en", "fr"] and labels[2:] == [None, None]
    assert probs[0] > 0.5 and probs[1] > 0.5 and probs[2] == 0


def test_captions_reach_the_model_as_datacomp_gives_them():
    """DataComp's get_fasttext_language replaces only "\\n": other whitespace stays as written."""
    import fasttext

    model = fasttext.load_model(str(bundled_model_path()))
    captions = ["Küche\u00a0und\u00a0Bad mit Blick", "東京\u3000タワー\u3000夜景", "a red\ncircle\u2003on grey",
                "  two  spaces  "]
    labels, probs = LangId().load().predict(captions)
    for caption, label, prob in zip(captions, labels, probs, strict=True):
        got, p = model.predict(caption.replace("\n", " "))
        assert label == got[0].removeprefix("__label__") and prob == pytest.approx(float(p[0]), rel=1e-6)
    assert lid_text("a\u00a0b\nc\r\td") == "a\u00a0b c\r\td"


def test_a_model_url_is_fetched_once_into_the_cache(tmp_path, monkeypatch):
    import fsspec

    monkeypatch.setenv("CURATE_CACHE", str(tmp_path / "cache"))
    data = bundled_model_path().read_bytes()
    mem = fsspec.filesystem("memory")
    mem.pipe("/models/lid.176.ftz", data)
    url = "memory://models/lid.176.ftz"
    first = LangId(url)
    assert first.path.name == "lid.176.ftz" and first.path.is_relative_to(tmp_path / "cache")
    assert first.info.sha256 == hashlib.sha256(data).hexdigest()
    mem.rm("/models/lid.176.ftz")  # the cached copy is used from now on
    labels, _ = LangId(url).load().predict(["une photo d'un chat noir sur le canapé"])
    assert labels == ["fr"]


def test_bad_models_are_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(CurateError, match="does not exist"):
        LangId(str(tmp_path / "lid.176.bin"))
    with pytest.raises(CurateError, match="cannot fetch"):
        LangId("memory://nowhere/lid.176.bin")
    bad = tmp_path / "lid.176.bin"
    bad.write_bytes(b"not a model")
    with pytest.raises(CurateError, match="not a fasttext model"):
        LangId(str(bad)).load()
