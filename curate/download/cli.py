"""`curate download`: flags become a frozen DownloadConfig here, at the edge."""

from __future__ import annotations

import argparse

from curate.cliutil import add_stage, positive_int, report


def cmd_download(args: argparse.Namespace) -> int:
    from curate.download.config import DownloadConfig
    from curate.download.inputs import check_input
    from curate.download.run import run_download
    from curate.engines.spark import SparkEngine

    config = DownloadConfig(input=args.input, url_col=args.url_col, caption_col=args.caption_col,
                            uid_col=args.uid_col, shard_size=args.shard_size, threads=args.threads,
                            timeout=args.timeout, retries=args.retries, allow_addresses=tuple(args.allow_address),
                            user_agent_token=args.user_agent_token)
    check_input(config)  # a bad input is a one-line error before Spark starts
    with SparkEngine(master=args.master) as engine:
        report(run_download(engine, args.run, config))
    return 0


def add_parser(sub) -> None:
    p = add_stage(sub, "download", cmd_download, "Download a URL+caption parquet with img2dataset under Spark.")
    p.add_argument("--input", required=True, help="parquet file or folder with url, caption and optional uid")
    p.add_argument("--url-col", default="url", help="column holding the URL (default: url)")
    p.add_argument("--caption-col", default="caption", help="column holding the caption (default: caption)")
    p.add_argument("--uid-col", default="uid", help="column holding 32-hex uids, if any (default: uid)")
    p.add_argument("--shard-size", type=positive_int, default=10_000, help="samples per shard")
    p.add_argument("--threads", type=positive_int, default=64, help="download threads per worker process")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per socket operation")
    p.add_argument("--retries", type=int, default=0, help="extra attempts per failed sample")
    p.add_argument("--allow-address", action="append", default=[], metavar="HOST|HOST:PORT|CIDR",
                   help="allow a private/loopback/link-local address (repeatable); refused by default")
    p.add_argument("--user-agent-token", default=None, help="token added to the user agent")
    p.add_argument("--master", default="local[2]", help="Spark master for a session we create")
