"""`curate verify RUN`: the command line of curate.verify."""

from __future__ import annotations

import argparse
import json

from curate.cliutil import positive_int
from curate.verify import THREADS, verify_run


def cmd_verify(args: argparse.Namespace) -> int:
    report = verify_run(args.run, threads=args.threads)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        print("\n".join(report.lines()))
    return 0 if report.ok else 1


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="Check every part and tar of a run against its checksum sidecar.",
                       description="Check every parquet part and tar of a run's stage folders against its "
                                   "checksum sidecar (_sums/<name>.json); report every mismatch, one line each. "
                                   "Exit 0 when all match, 1 on any mismatch.")
    p.add_argument("run", help="run directory (a local path or s3://, gs://)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--threads", type=positive_int, default=THREADS, help=f"files checked at once (default {THREADS})")
    p.set_defaults(func=cmd_verify)
