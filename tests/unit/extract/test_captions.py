import pytest

from curate.extract import captions


@pytest.mark.parametrize("raw,expected", [
    ("A red bike", "A red bike"),
    ("  A  red\u00a0bike \n", "A red bike"),
    ("tab\tand\r\nnewline", "tab and newline"),
    ("zero\u200bwidth soft\u00adhyphen", "zerowidth softhyphen"),
    ("bell\x07char", "bellchar"),
    ("cafe\u0301", "caf\u00e9"),  # NFC
    ("\u3000全角\u3000スペース", "全角 スペース"),
    ("", None),
    ("   \u00a0 ", None),
    (None, None),
])
def test_normalise(raw, expected):
    assert captions.normalise(raw, 1000) == expected


def test_long_captions_are_cut_at_a_word_boundary():
    text = "word " * 300
    out = captions.normalise(text, 1000)
    assert len(out) <= 1000 and out.endswith("word") and out == " ".join(["word"] * 200)
    assert captions.normalise("x" * 1500, 1000) == "x" * 1000  # no space to cut at


def test_pick_prefers_alt_then_title():
    assert captions.pick(" a cat ", "t", 1000) == ("a cat", " a cat ", "alt")
    assert captions.pick("  ", "a title", 1000) == ("a title", "a title", "title")
    assert captions.pick(None, "a title", 1000, title_fallback=False) == (None, None, None)
    assert captions.pick(None, None, 1000) == (None, None, None)
