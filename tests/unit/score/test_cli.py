"""`curate score` flags become the ScoreConfig the stage runs with."""

from __future__ import annotations

import argparse

from curate.score.cli import add_parser, config_from_args
from curate.score.config import ScoreConfig


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quiet", action="store_true")
    add_parser(parser.add_subparsers())
    return parser.parse_args(["score", "RUN", *argv])


def test_defaults_are_the_default_config():
    assert config_from_args(_parse()) == ScoreConfig()


def test_repeatable_models_probes_and_gpu_flags():
    cfg = config_from_args(_parse("--model", "dc=ViT-L-14:openai", "--model", "ViT-B-32:/w/b32.pt",
                                  "--embeddings", "vit_b_32", "--probe", "is_red", "--device", "cuda",
                                  "--gpus-per-actor", "0.5", "--actors", "4", "--precision", "fp16"))
    assert cfg.clip.model == "dc=ViT-L-14:openai" and cfg.clip.extra_models == ("ViT-B-32:/w/b32.pt",)
    assert [e.alias for e in cfg.clip.entries()] == ["dc", "vit_b_32"]
    assert cfg.clip.embedding_aliases() == ("dc", "vit_b_32") and cfg.clip.probes == ("is_red",)
    assert (cfg.clip.device, cfg.clip.precision, cfg.clip_num_gpus, cfg.clip_actors) == ("cuda", "fp16", 0.5, 4)
