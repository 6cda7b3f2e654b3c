"""`curate score`: flags become a frozen ScoreConfig here, at the edge."""

from __future__ import annotations

import argparse

from curate.cliutil import add_stage, positive_int, report, reported_finished


def config_from_args(args: argparse.Namespace):
    from curate.score.config import ClipConfig, LangIdConfig, ScoreConfig

    models = args.model or ["tiny"]
    clip = ClipConfig(model=models[0], extra_models=tuple(models[1:]), embeddings=tuple(args.embeddings or ()),
                      probes=tuple(args.probe or ()), device=args.device, precision=args.precision,
                      threads=args.threads, decoder="exact" if args.exact_decode else args.decoder,
                      decode_on_device=not args.exact_decode)
    return ScoreConfig(clip=clip, langid=LangIdConfig(model=args.langid_model), clip_batch_size=args.batch_size,
                       clip_actors=args.actors, clip_num_gpus=args.gpus_per_actor,
                       decode_batch_size=args.decode_batch_size)


def cmd_score(args: argparse.Namespace) -> int:
    from curate.engines.ray import RayEngine
    from curate.score.run import run_score

    config = config_from_args(args)
    if reported_finished("score", args.run, config):
        return 0
    with RayEngine(address=args.address, progress=not args.quiet) as engine:
        report(run_score(engine, args.run, config))
    return 0


def add_parser(sub) -> None:
    p = add_stage(sub, "score", cmd_score, "CLIP similarities, probes, embeddings and language ID with Ray.")
    p.add_argument("--model", action="append", metavar="[ALIAS=]NAME:PRETRAINED",
                   help="repeatable; PRETRAINED is a tag, a local file, or use local-dir:PATH; 'tiny' is the "
                        "bundled model (the default). The first model gives clip_similarity; each gives clip_ALIAS")
    p.add_argument("--embeddings", action="append", metavar="ALIAS",
                   help="also write this model's embeddings (repeatable, or 'all'); the first model's always are")
    p.add_argument("--probe", action="append", metavar="SPEC.json",
                   help="a probe's JSON spec (or a bundled probe's name, e.g. is_red); repeatable")
    p.add_argument("--langid-model", default="bundled", metavar="PATH|URL",
                   help="fasttext language-ID model, lid.176.bin (DataComp's) or .ftz: a file, or a URL fetched "
                        "once into ~/.cache/curate (default: the bundled lid.176.ftz)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto: bf16 autocast on cuda, fp32 on cpu")
    p.add_argument("--decoder", default="exact", choices=("exact", "simplejpeg", "pil-draft"),
                   help="CPU decoder: exact (in full, as each model's own transform: the default), or simplejpeg / "
                        "pil-draft (JPEGs at the smallest DCT scale covering the model's input: faster, scores move; "
                        "bench/RESULTS.md)")
    p.add_argument("--exact-decode", action="store_true",
                   help="bit-exact scores: the exact CPU decoder, also on cuda (no nvjpeg)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads per CLIP actor")
    p.add_argument("--batch-size", type=positive_int, default=64, help="images per CLIP batch")
    p.add_argument("--decode-batch-size", type=positive_int, default=64, help="images per decode task")
    p.add_argument("--actors", type=positive_int, default=1, help="CLIP actors")
    p.add_argument("--gpus-per-actor", type=float, default=0.0,
                   help="GPUs each CLIP actor reserves (default: 1 with --device cuda, else 0)")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")
