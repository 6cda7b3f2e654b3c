"""`curate select`: flags become a frozen SelectConfig here, at the edge."""

from __future__ import annotations

import argparse

from curate.cliutil import add_stage, fraction, report


def cmd_select(args: argparse.Namespace) -> int:
    from curate.select.run import SelectConfig, run_select

    config = SelectConfig(basic_filter=not args.no_basic_filter,
                          clip_fraction=None if args.clip_threshold is not None else args.clip_fraction,
                          clip_threshold=args.clip_threshold)
    report(run_select(args.run, config))
    return 0


def add_parser(sub) -> None:
    p = add_stage(sub, "select", cmd_select, "Apply the DataComp policy: basic filter and CLIP score.")
    p.add_argument("--clip-fraction", type=fraction, default=0.3, help="keep the top fraction (default 0.3)")
    p.add_argument("--clip-threshold", type=float, default=None, help="keep similarity >= this instead")
    p.add_argument("--no-basic-filter", action="store_true", help="skip DataComp's basic filter")
