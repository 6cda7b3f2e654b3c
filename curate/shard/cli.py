"""`curate shard`: flags become a frozen ShardConfig here, at the edge."""

from __future__ import annotations

import argparse

from curate.cliutil import add_stage, positive_int, report


def cmd_shard(args: argparse.Namespace) -> int:
    from curate.shard.run import ShardConfig, run_shard

    report(run_shard(args.run, ShardConfig(samples_per_shard=args.samples_per_shard, seed=args.seed)))
    return 0


def add_parser(sub) -> None:
    p = add_stage(sub, "shard", cmd_shard, "Reshard the selection into webdataset shards with a manifest.")
    p.add_argument("--samples-per-shard", type=positive_int, default=10_000, help="samples per output shard")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed")
