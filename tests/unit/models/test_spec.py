"""ClipSpec: the `--model NAME:PRETRAINED` forms it parses and the ones it refuses, offline."""

from __future__ import annotations

import pytest

from curate.errors import CurateError
from curate.models.spec import ClipSpec, ModelSpecError


@pytest.mark.parametrize(
    ("text", "name", "pretrained"),
    [
        ("ViT-L-14:openai", "ViT-L-14", "openai"),
        ("ViT-B-32:/ckpt/epoch_3.pt", "ViT-B-32", "/ckpt/epoch_3.pt"),
        ("ViT-B-32:C:/weights/with:colon.pt", "ViT-B-32", "C:/weights/with:colon.pt"),
        ("tiny", "tiny", None),
        ("tiny:./other.safetensors", "tiny", "./other.safetensors"),
        ("local-dir:/models/my-clip", "local-dir:/models/my-clip", None),
        ("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", None),
        ("  ViT-B-16:laion2b_s34b_b88k \n", "ViT-B-16", "laion2b_s34b_b88k"),
    ],
)
def test_spec_parse(text: str, name: str, pretrained: str | None) -> None:
    spec = ClipSpec.parse(text)
    assert (spec.name, spec.pretrained) == (name, pretrained)
    assert ClipSpec.parse(str(spec)) == spec


@pytest.mark.parametrize("text", ["", "   ", "ViT-B-32", "ViT-B-32:", ":openai", "hf-hub:", "local-dir:"])
def test_spec_parse_rejects(text: str) -> None:
    with pytest.raises(ModelSpecError) as info:
        ClipSpec.parse(text)
    assert isinstance(info.value, CurateError) and isinstance(info.value, ValueError)


def test_spec_schema_names_bring_their_own_weights() -> None:
    with pytest.raises(ModelSpecError, match="own weights"):
        ClipSpec("local-dir:/models/my-clip", "/other/weights.pt")
    with pytest.raises(ModelSpecError, match="own weights"):
        ClipSpec("hf-hub:org/repo", "openai")


def test_spec_tiny_default() -> None:
    assert ClipSpec.tiny() == ClipSpec.parse("tiny") == ClipSpec("tiny")
