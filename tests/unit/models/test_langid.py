from curate.models.langid import LangId, bundled_model_path


def test_bundled_model_is_the_lid176_file():
    path = bundled_model_path()
    assert path.name == "lid.176.ftz" and path.stat().st_size > 900_000


def test_predicts_languages_and_handles_newlines_and_empty():
    labels, probs = LangId().load().predict(["a photo of a red circle on a plain background",
                                             "une photo d'un cercle rouge\nsur un fond uni", "", None])
    assert labels[:2] == ["en", "fr"] and labels[2:] == [None, None]
    assert probs[0] > 0.5 and probs[1] > 0.5 and probs[2] == 0
