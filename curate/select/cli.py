"""`curate select`: flags become a frozen SelectConfig here, at the edge."""

from __future__ import annotations

import argparse

from curate.cliutil import add_spark_options, add_stage, fraction, report, reported_finished, spark_engine


def config_from_args(args: argparse.Namespace):
    from curate.select.run import SelectConfig

    return SelectConfig(basic_filter=not args.no_basic_filter,
                        clip_fraction=None if args.clip_threshold is not None else args.clip_fraction,
                        clip_threshold=args.clip_threshold, policy=args.policy,
                        target_size=args.target_size, engine=args.engine)


def cmd_select(args: argparse.Namespace) -> int:
    from curate.io.stagedir import StageDir
    from curate.select.run import run_select

    config = config_from_args(args)

    if args.engine == "spark":  # before the JVM: a finished stage needs none; errors are all the user sees
        if reported_finished("select", args.run, config):
            return 0
        StageDir.check_ready(args.run, "select", "score")
        with spark_engine(args) as engine:
            report(run_select(args.run, config, engine))
    else:
        report(run_select(args.run, config))
    return 0


def _size(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def add_parser(sub) -> None:
    p = add_stage(sub, "select", cmd_select, "Select samples by a policy: a shipped recipe or a YAML file.")
    p.add_argument("--policy", default=None,
                   help="a shipped policy (datacomp-basic, datacomp-clip-score[-b32], datacomp-text, datacomp-image, "
                        "datacomp-1b, dfn, laion, laion-aesthetics, relaion-research[-safe], metaclip, "
                        "metaclip-400m, metaclip-2.5b, semdedup) or a policy YAML file (default: the flags below)")
    p.add_argument("--target-size", type=_size, default=None,
                   help="keep exactly N samples: the ranking step's cut (ceil, ties by uid) is chosen to meet it")
    p.add_argument("--engine", choices=("spark", "local"), default="spark",
                   help="spark (default: a local Spark, or the cluster --master names) or local (in this process, "
                        "for small runs)")
    add_spark_options(p)
    p.add_argument("--clip-fraction", type=fraction, default=0.3, help="keep the top fraction (default 0.3)")
    p.add_argument("--clip-threshold", type=float, default=None, help="keep similarity >= this instead")
    p.add_argument("--no-basic-filter", action="store_true", help="skip DataComp's basic filter")
