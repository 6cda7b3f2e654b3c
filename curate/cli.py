"""`curate`: one subcommand per stage, plus demo and audit. Flags become frozen configs here, at the edge."""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from curate.cliutil import add_spark_options, add_stage, positive_int
from curate.compare.cli import add_parser as add_compare
from curate.dedup.cli import add_parser as add_dedup
from curate.download.cli import add_parser as add_download
from curate.errors import CurateError, os_error_text
from curate.export.cli import add_parser as add_export
from curate.extract.cli import add_parser as add_extract
from curate.score.cli import add_parser as add_score
from curate.select.cli import add_parser as add_select
from curate.shard.cli import add_parser as add_shard
from curate.verify.cli import add_parser as add_verify

log = logging.getLogger("curate")


def cmd_audit(args: argparse.Namespace) -> int:
    from curate.audit import audit, check_finished
    from curate.pipeline import format_funnel

    check_finished(args.run)  # before any JVM starts: the error is all the user sees
    if args.engine == "spark":
        from curate.cliutil import spark_engine

        with spark_engine(args) as engine:
            result = audit(args.run, engine)
    else:
        result = audit(args.run)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        print(format_funnel(result))
    if not result.ok:
        print(f"curate: audit failed: {'; '.join(result.problems)}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from curate.demo.pool import PoolConfig
    from curate.demo.run import run_demo
    from curate.pipeline import format_funnel

    out = args.out if "://" in args.out else os.path.abspath(args.out)  # s3://, gs://: as given
    result = run_demo(out, PoolConfig(n=args.n, seed=args.seed))
    print(format_funnel(result))
    print(f"\noutputs in {out}/: pool (generated input), download (tar shards + samples status), dedup,"
          f" score (scores + embeddings), select (uids.npy, decisions), shard (training shards, sizes.json,"
          f" manifest/ parts)")
    print(f"report: {out}/report/index.html")
    return 0 if result.ok else 1


def cmd_report(args: argparse.Namespace) -> int:
    from curate.errors import CurateError
    from curate.io import fs
    from curate.report import write_report

    if not fs.exists(args.run):  # before any JVM starts: the error is all the user sees
        raise CurateError(f"report: run directory not found: {args.run}")
    if args.engine == "spark":
        from curate.cliutil import spark_engine

        with spark_engine(args) as engine:
            print(write_report(args.run, args.out, engine))
    else:
        print(write_report(args.run, args.out))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from curate.plan import plan_text

    print(plan_text(args))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curate", description="Curate web-scale image-text pools into "
                                     "CLIP training sets: download, dedup, score, select, shard, audit.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only, no progress")
    parser.add_argument("--json", dest="progress_json", action="store_true",
                        help="progress of long stages as JSON lines on stderr (done, total, rate, eta_s)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for add_stage_parser in (add_extract, add_download, add_dedup, add_score, add_select, add_shard, add_export):
        add_stage_parser(sub)

    p = add_stage(sub, "audit", cmd_audit, "Check that every input row is kept or rejected exactly once.")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--engine", choices=("spark", "local"), default="spark",
                   help="spark (default: joins and counts on a local Spark or the cluster) or local (this process "
                        "reads one download shard at a time; for small runs)")
    add_spark_options(p)

    p = add_stage(sub, "demo", cmd_demo, "Generate the sample pool, serve it on loopback, run every stage.", run=False)
    p.add_argument("--out", default="demo-out", help="run directory (default: ./demo-out)")
    p.add_argument("--n", type=positive_int, default=2000, help="pool size (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="pool seed")

    p = add_stage(sub, "report", cmd_report, "Write a self-contained HTML report about a run.")
    p.add_argument("--out", default=None, help="output file (default: RUN/report/index.html)")
    p.add_argument("--engine", choices=("spark", "local"), default="spark",
                   help="spark (default: counts and histograms per part on a local Spark or the cluster) or local "
                        "(this process reads one part at a time; for small runs)")
    add_spark_options(p)

    from curate.plan import add_arguments as add_plan_arguments

    p = add_stage(sub, "plan", cmd_plan, "Estimate wall time and node-hours per stage for a cluster.", run=False)
    add_plan_arguments(p)

    add_compare(sub)
    add_verify(sub)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in ("py4j", "pyspark", "ray", "urllib3", "PIL", "fsspec", "filelock", "matplotlib"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # Libraries that log on the root logger (open_clip's progress, py4j's closed-gateway tracebacks
    # after Spark stops) are detail, not news: shown only with --verbose.
    if not args.verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(lambda r: r.name != "root" or r.levelno >= logging.WARNING)


def engine_error(exc: BaseException) -> CurateError | None:
    """A Spark (Py4JJavaError, PythonException) or Ray (RayTaskError, ...) failure as one line naming what the
    worker raised (the input and cause where it says them), or None for any other exception."""
    package = type(exc).__module__.partition(".")[0]
    if package in ("py4j", "pyspark"):
        from curate.engines.spark import task_error

        return task_error(exc)
    if package == "ray":
        from curate.engines.ray import user_error

        return user_error(exc)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    for key, value in (("SPARK_LOCAL_IP", "127.0.0.1"), ("RAY_USAGE_STATS_ENABLED", "0"),
                       ("NO_ALBUMENTATIONS_UPDATE", "1")):
        os.environ.setdefault(key, value)
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    from curate import progress
    from curate.engines import scratch

    # the engines this command starts keep their temp folders in RUN/_scratch (or $CURATE_SCRATCH)
    previous = scratch.configure(getattr(args, "run", None) or (args.out if args.command == "demo" else None),
                                 args.command)
    progress.configure("quiet" if args.quiet else "json" if args.progress_json else "human")
    try:
        return _run(args)
    finally:
        scratch.restore(previous)  # for callers in this process (tests)


def _run(args: argparse.Namespace) -> int:
    """`args.func(args)`, with what it raises as one line on stderr and an exit status."""
    try:
        return args.func(args)
    except CurateError as exc:
        if args.verbose:  # what failed where: a worker's traceback, an engine's error, chained
            log.exception("error")
        print(f"curate: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # no space, permission denied, a missing path: what the system said, and where
        if args.verbose:
            log.exception("system error")
        print(f"curate: error: {os_error_text(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("curate: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: one line, the traceback only with -v
        engine = engine_error(exc)
        if engine is not None:  # a Spark or Ray action failed in its workers: the cause they raised
            if args.verbose:
                log.exception("engine error")
            print(f"curate: error: {engine}", file=sys.stderr)
            return 2
        if args.verbose:
            log.exception("unexpected error")
        print(f"curate: internal error: {type(exc).__name__}: {exc} (rerun with -v for details)",
              file=sys.stderr)
        return 1


def entry() -> None:
    """The `curate` command (and `python -m curate.cli`): `main()`, then `leave` with its status."""
    try:
        code = main()
    except SystemExit as exc:  # argparse's usage errors and --help
        code = exc.code
    leave(code)


def leave(code: int | str | None) -> NoReturn:
    """Exit with `code` (as `sys.exit` takes it) after Python's own exit work (non-daemon threads joined, atexit
    handlers: logging flushed, Ray and Spark stopped, temporary folders removed, stdio flushed), by `os._exit`,
    without the C and C++ libraries' exit-time destructors. On a loaded machine those aborted about one exit in
    60 (`terminate called without an active exception`, exit status 134 after a clean `curate: error:` line): a
    native thread pool torn down while one of its threads ran. The `curate` command and the jobs/ entry points
    leave this way."""
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    shutdown = getattr(threading, "_shutdown", None)  # what the interpreter does first at exit
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    entry()
