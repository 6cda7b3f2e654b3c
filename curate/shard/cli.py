"""`curate shard`: flags become a frozen ShardConfig here, at the edge."""

from __future__ import annotations

import argparse

from curate.cliutil import add_spark_options, add_stage, positive_int, report, reported_finished, spark_engine


def _count(text: str) -> int:
    """A sample count as trainers write it: 12800000000, 12.8e9 or 12_800_000_000."""
    try:
        value = float(text.replace("_", ""))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if value < 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of samples >= 0")
    return int(value)


def _passes(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def cmd_shard(args: argparse.Namespace) -> int:
    from curate.errors import CurateError
    from curate.shard.run import ShardConfig, run_shard

    config = ShardConfig(samples_per_shard=args.samples_per_shard, max_shard_bytes=args.max_shard_bytes,
                         seed=args.seed, samples_seen=args.samples_seen, passes=args.passes,
                         repetition=args.repetition, uids=args.uids, source_shards=args.source_shards)
    config.check()  # a bad combination is a one-line error before any engine starts
    from curate.io.stagedir import StageDir

    if args.engine == "auto":
        args.engine = _auto_engine(args, config)
    if args.threads is not None and args.engine != "local":
        raise CurateError("shard: --threads is for --engine local; Spark and Ray size their own workers")

    if args.engine != "local":  # before the engine starts: a finished stage needs none; errors are one line
        if reported_finished("shard", args.run, config):
            return 0
        StageDir.check_ready(args.run, "shard", "select" if config.uids is None else None)
    if args.engine == "spark":
        with spark_engine(args) as engine:
            report(run_shard(args.run, config, engine))
    elif args.engine == "ray":
        from curate.engines.ray import RayEngine

        with RayEngine() as engine:
            report(run_shard(args.run, config, engine))
    else:
        report(run_shard(args.run, config, threads=args.threads))
    return 0


AUTO_LOCAL_SAMPLES = 1_000_000  # --engine auto: a selection up to this size on local disk is sharded in-process


def _auto_engine(args: argparse.Namespace, config) -> str:
    """`--engine auto`: this process for a selection of at most AUTO_LOCAL_SAMPLES on local disk with a local
    master (bench/RESULTS.md: in-process resharding copies at 0.5-0.7 of `cp`, a local[2] Spark at 0.1-0.2:
    two Python workers share the cores with the JVM), Spark otherwise (object stores, clusters, big selections;
    the driver then holds shards, never rows). Both write the same bytes."""
    import logging

    from curate.io import fs

    log = logging.getLogger("curate.shard")
    sources = config.source_shards or fs.join(args.run, "download", "shards")
    uids = config.uids or fs.join(args.run, "select", "uids.npy")
    if not (fs.is_local(args.run) and fs.is_local(sources) and args.master.startswith("local")):
        return "spark"
    if not fs.exists(uids):  # a selection of our own is not finished yet: the stage says so on Spark's path
        return "spark"
    from curate.shard.uidset import check_header

    selected = check_header(uids)
    engine = "local" if selected <= AUTO_LOCAL_SAMPLES else "spark"
    log.info("shard: --engine auto: %s (%d selected samples, local disk, master %s)", engine, selected, args.master)
    return engine


MODES = ("auto", "materialised", "streamed")  # curate.shard.run.MODES, without importing the stage here


def add_parser(sub) -> None:
    p = add_stage(sub, "shard", cmd_shard, "Reshard the selection into webdataset shards with a manifest "
                  "and a repetition plan.")
    p.add_argument("--samples-per-shard", type=positive_int, default=10_000, help="samples per output shard")
    p.add_argument("--max-shard-bytes", type=positive_int, default=1 << 30,
                   help="close a shard before it grows past this many bytes of sample files (default 1 GiB)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed")
    plan = p.add_mutually_exclusive_group()
    plan.add_argument("--samples-seen", type=_count, default=None, metavar="S",
                      help="samples-seen budget of the repetition plan, e.g. 12.8e9 (default: one pass)")
    plan.add_argument("--passes", type=_passes, default=None, metavar="K",
                      help="the budget as passes over the selection: S = round(K x unique samples)")
    p.add_argument("--repetition", choices=MODES, default="auto",
                   help="materialised: write each sample as often as planned; streamed: write once, "
                        "curate.shard.loader replays the plan; auto: the one storing fewer bytes, streamed as "
                        "soon as a sample repeats (default: auto; plan.json reports both sizes)")
    p.add_argument("--uids", default=None, metavar="FILE",
                   help="a DataComp-format u8,u8 .npy selection instead of RUN/select/uids.npy")
    p.add_argument("--source-shards", default=None, metavar="DIR",
                   help="img2dataset/DataComp shards (NNNNN.tar + NNNNN.parquet) instead of RUN/download/shards")
    p.add_argument("--engine", choices=("auto", "local", "spark", "ray"), default="auto",
                   help="where the table work runs: plan passes, shuffle, tar writers. auto (default): this "
                        f"process for up to {AUTO_LOCAL_SAMPLES:,} selected samples on local disk with a local "
                        "master, else Spark (local[*] or spark-submit's master); the same bytes either way")
    p.add_argument("--threads", type=positive_int, default=None, metavar="N",
                   help="threads copying each shard with --engine local (default: one per core, at most 16)")
    add_spark_options(p)
