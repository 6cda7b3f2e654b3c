"""`curate score`: flags become a frozen ScoreConfig here, at the edge."""

from __future__ import annotations

import argparse

from curate.cliutil import add_stage, positive_int, report


def cmd_score(args: argparse.Namespace) -> int:
    from curate.engines.ray import RayEngine
    from curate.score.run import ScoreConfig, run_score
    from curate.score.stages import ClipConfig, LangIdConfig

    config = ScoreConfig(clip=ClipConfig(model=args.model, device=args.device),
                         langid=LangIdConfig(model=args.langid_model), clip_batch_size=args.batch_size,
                         clip_actors=args.actors)
    with RayEngine(address=args.address, progress=not args.quiet) as engine:
        report(run_score(engine, args.run, config))
    return 0


def add_parser(sub) -> None:
    p = add_stage(sub, "score", cmd_score, "CLIP similarity, embeddings and language ID with Ray.")
    p.add_argument("--model", default="tiny", help="NAME:PRETRAINED (tag, file or local-dir:PATH), or tiny")
    p.add_argument("--langid-model", default="bundled", help="fasttext model file (default: bundled lid.176.ftz)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per CLIP batch")
    p.add_argument("--actors", type=positive_int, default=1, help="CLIP actors")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
