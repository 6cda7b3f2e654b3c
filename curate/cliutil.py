"""Helpers shared by the per-stage CLI modules: argument types, the stage parser, the stats printer."""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from typing import Any


def positive_int(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not in (0, 1]")
    return value


def spark_conf(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip().startswith("spark."):
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE with a spark.* key")
    return key.strip(), value.strip()


def add_spark_options(p: argparse.ArgumentParser) -> None:
    """--master and --spark-conf, for the stages that run on Spark (a session we create; under
    spark-submit the session it gives wins, with the --conf given there)."""
    p.add_argument("--master", default="local[2]", help="Spark master for a session we create (default local[2])")
    p.add_argument("--spark-conf", type=spark_conf, action="append", default=[], metavar="KEY=VALUE",
                   help="Spark setting for a session we create, repeatable; e.g. spark.driver.memory=16g and "
                        "spark.driver.maxResultSize=0 for pools of tens of millions of rows on one machine")


def spark_engine(args: argparse.Namespace):
    """The SparkEngine the flags of add_spark_options describe."""
    from curate.engines.spark import SparkEngine

    return SparkEngine(master=args.master, conf=dict(args.spark_conf))


def report(stats: dict) -> None:
    """Print a stage's stats as one JSON line on stdout."""
    print(json.dumps(stats, sort_keys=True))


def reported_finished(name: str, run: str, config: Any) -> bool:
    """When stage `name` of `run` finished with this configuration and inputs, print its stats as the stage
    would and return True: a rerun of a finished stage starts no engine (a Spark JVM or a Ray cluster took
    6 s and 36 s of a no-op `curate dedup` and `curate score`). A finished stage with another configuration
    is the `--redo` error, also before any engine starts; False when the stage has work to do."""
    from curate.io.stagedir import StageDir

    stats = StageDir.finished(run, name, config)
    if stats is None:
        return False
    report(stats)
    return True


STAGES = ("extract", "download", "dedup", "score", "select", "shard")  # curate.io.fingerprint.STAGES


def add_stage(sub, name: str, func: Callable, help_: str, run: bool = True) -> argparse.ArgumentParser:
    """Register subcommand `name`; with `run`, its first positional is the run directory. A stage command
    also gets --redo and --force-unlock, applied before its own function runs."""
    p = sub.add_parser(name, help=help_, description=help_)
    if run:
        p.add_argument("run", help="the run directory (local path or fsspec URL); the stage writes RUN/" + name)
    if run and name in STAGES:
        add_redo_options(p, name)
        func = functools.partial(_stage_command, name, func)
    p.set_defaults(func=func)
    return p


def _stage_command(name: str, func: Callable, args: argparse.Namespace) -> int:
    """--force-unlock and --redo, then the stage's own command (which takes the lock when it starts work)."""
    prepare_stage(name, args.run, redo=args.redo, force_unlock=args.force_unlock)
    return func(args)


def add_redo_options(p: argparse.ArgumentParser, name: str) -> None:
    """--redo and --force-unlock for stage `name` (the CLI's stage commands and the jobs/ entry points)."""
    p.add_argument("--redo", action="store_true",
                   help=f"remove RUN/{name} and every later stage's folder (and RUN/report, RUN/export), then "
                        "run it again: what a finished stage with another configuration or changed inputs needs")
    p.add_argument("--force-unlock", action="store_true",
                   help=f"remove RUN/{name}/_LOCK first: another run's lock, when that run is gone (killed, or "
                        "on a machine that is lost)")


def prepare_stage(name: str, run: str, redo: bool = False, force_unlock: bool = False) -> None:
    """--force-unlock, then --redo, then the lock check: a lock another live run holds on an unfinished stage
    fails here, before any engine starts."""
    from curate.io import fingerprint, fs, lock

    path = fs.join(run, name, lock.LOCK)
    if force_unlock:
        lock.force_unlock(path, name)
    if redo:
        fingerprint.redo(run, name, force=force_unlock)
    holder = lock.held_by_other(path)
    if holder is not None and not fs.exists(fs.join(run, name, "_SUCCESS")):
        raise lock.busy(path, name, holder)
