"""`curate dedup`: flags become a frozen DedupConfig here, at the edge."""

from __future__ import annotations

import argparse

from curate.cliutil import add_stage, report


def cmd_dedup(args: argparse.Namespace) -> int:
    from curate.dedup.run import DedupConfig, run_dedup

    config = DedupConfig(by_url=not args.no_url, by_image=not args.no_image)
    if args.engine == "local":
        from curate.engines.local import LocalEngine as Engine
        engine = Engine()
    else:
        from curate.engines.spark import SparkEngine
        engine = SparkEngine(master=args.master)
    with engine:
        report(run_dedup(engine, args.run, config))
    return 0


def add_parser(sub) -> None:
    p = add_stage(sub, "dedup", cmd_dedup, "Reject exact duplicates by canonical URL and by image sha256.")
    p.add_argument("--no-url", action="store_true", help="skip URL deduplication")
    p.add_argument("--no-image", action="store_true", help="skip image-hash deduplication")
    p.add_argument("--engine", choices=("spark", "local"), default="spark", help="where to run (default spark)")
    p.add_argument("--master", default="local[2]", help="Spark master for a session we create")
