"""Model aliases and the score config's checks."""

from __future__ import annotations

import pytest

from curate.errors import CurateError
from curate.score.config import ClipConfig, parse_models


def _aliases(*texts: str) -> list[str]:
    return [e.alias for e in parse_models(texts)]


def test_default_aliases_are_slugs_of_the_name():
    assert _aliases("tiny", "ViT-L-14:openai", "local-dir:/models/DFN_filter/") == ["tiny", "vit_l_14", "dfn_filter"]
    assert parse_models(("ViT-B-32:openai",))[0].column == "clip_vit_b_32"


def test_models_sharing_a_name_get_their_pretrained_slug():
    assert _aliases("ViT-B-32:openai", "ViT-B-32:laion2b_s34b_b79k") == ["vit_b_32_openai",
                                                                         "vit_b_32_laion2b_s34b_b79k"]
    assert _aliases("tiny", "tiny:/ckpt/other.pt") == ["tiny", "tiny_other_pt"]


def test_explicit_aliases_and_duplicates():
    entries = parse_models(("dc=ViT-L-14:openai", "laion=ViT-B-32:/w/b32.pt"))
    assert [(e.alias, str(e.spec)) for e in entries] == [("dc", "ViT-L-14:openai"), ("laion", "ViT-B-32:/w/b32.pt")]
    with pytest.raises(CurateError, match="share the alias"):
        parse_models(("a=tiny", "a=ViT-B-32:openai"))
    with pytest.raises(CurateError, match="needs weights"):
        parse_models(("ViT-B-32",))


def test_embedding_aliases_always_include_the_first_model():
    cfg = ClipConfig(model="tiny", extra_models=("b=tiny:/x.pt", "c=tiny:/y.pt"))
    assert cfg.embedding_aliases() == ("tiny",)
    assert ClipConfig(model="tiny", extra_models=("b=tiny:/x.pt",), embeddings=("b",)).embedding_aliases() == (
        "tiny", "b")
    assert cfg.__class__(**{**cfg.__dict__, "embeddings": ("all",)}).embedding_aliases() == ("tiny", "b", "c")
    with pytest.raises(CurateError, match="--embeddings names"):
        ClipConfig(embeddings=("nope",)).validate()
    with pytest.raises(CurateError, match="device"):
        ClipConfig(device="tpu").validate()
