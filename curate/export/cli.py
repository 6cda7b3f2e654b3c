"""`curate export RUN --format hf-parquet|mds`: flags become a frozen ExportConfig here, at the edge."""

from __future__ import annotations

import argparse

from curate.cliutil import add_spark_options, add_stage, positive_int, report, spark_engine

FORMATS = ("hf-parquet", "mds")  # curate.export.run.FORMATS, without importing the stage here


def cmd_export(args: argparse.Namespace) -> int:
    from curate.export.run import ExportConfig, check_ready, run_export

    config = ExportConfig(format=args.format, mds_size_limit=args.mds_size_limit)
    config.check()
    check_ready(args.run)  # before any engine starts: the one-line error is all the user sees
    if args.engine == "spark":
        with spark_engine(args) as engine:
            report(run_export(args.run, config, engine))
    else:
        report(run_export(args.run, config))
    return 0


def add_parser(sub) -> None:
    p = add_stage(sub, "export", cmd_export, "Convert the shard stage's tars for other trainers: Hugging Face "
                  "parquet (datasets Image layout, ready for the Hub) or MDS (streaming).")
    p.add_argument("--format", choices=FORMATS, required=True,
                   help="hf-parquet: RUN/export/hf-parquet/NNNNN.parquet; mds: RUN/export/mds/NNNNN/ and a merged "
                        "index.json")
    p.add_argument("--mds-size-limit", type=positive_int, default=1 << 26, metavar="BYTES",
                   help="bytes per MDS shard file (default 64 MiB, streaming's default)")
    p.add_argument("--engine", choices=("local", "spark"), default="spark",
                   help="where the one-task-per-tar conversion runs (default: Spark, local[*] or spark-submit's "
                        "master; local: this process)")
    add_spark_options(p)
