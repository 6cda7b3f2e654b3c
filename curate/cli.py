"""`curate`: one subcommand per stage, plus demo and audit. Flags become frozen configs here, at the edge."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence

from curate.compare.cli import add_parser as add_compare
from curate.errors import CurateError

log = logging.getLogger("curate")


def _positive_int(text: str) -> int:
    try:
        value = int(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not in (0, 1]")
    return value


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
        _report(run_download(engine, args.run, config))
    return 0


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
        _report(run_dedup(engine, args.run, config))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from curate.engines.ray import RayEngine
    from curate.score.run import ScoreConfig, run_score
    from curate.score.stages import ClipConfig, LangIdConfig

    config = ScoreConfig(clip=ClipConfig(model=args.model, device=args.device),
                         langid=LangIdConfig(model=args.langid_model), clip_batch_size=args.batch_size,
                         clip_actors=args.actors)
    with RayEngine(address=args.address, progress=not args.quiet) as engine:
        _report(run_score(engine, args.run, config))
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from curate.select.run import SelectConfig, run_select

    config = SelectConfig(basic_filter=not args.no_basic_filter,
                          clip_fraction=None if args.clip_threshold is not None else args.clip_fraction,
                          clip_threshold=args.clip_threshold)
    _report(run_select(args.run, config))
    return 0


def cmd_shard(args: argparse.Namespace) -> int:
    from curate.shard.run import ShardConfig, run_shard

    _report(run_shard(args.run, ShardConfig(samples_per_shard=args.samples_per_shard, seed=args.seed)))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from curate.audit import audit
    from curate.pipeline import format_funnel

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

    out = os.path.abspath(args.out)
    result = run_demo(out, PoolConfig(n=args.n, seed=args.seed))
    print(format_funnel(result))
    print(f"\noutputs in {out}/: pool (generated input), download (tar shards + samples status), dedup,"
          f" score (scores + embeddings), select (uids.npy, decisions), shard (training shards, sizes.json,"
          f" manifest.parquet)")
    return 0 if result.ok else 1


def _report(stats: dict) -> None:
    print(json.dumps(stats, sort_keys=True))


def _add(sub, name: str, func: Callable, help_: str, run: bool = True) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=help_)
    if run:
        p.add_argument("run", help="the run directory (local path or fsspec URL); the stage writes RUN/" + name)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curate", description="Curate web-scale image-text pools into "
                                     "CLIP training sets: download, dedup, score, select, shard, audit.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _add(sub, "download", cmd_download, "Download a URL+caption parquet with img2dataset under Spark.")
    p.add_argument("--input", required=True, help="parquet file or folder with url, caption and optional uid")
    p.add_argument("--url-col", default="url", help="column holding the URL (default: url)")
    p.add_argument("--caption-col", default="caption", help="column holding the caption (default: caption)")
    p.add_argument("--uid-col", default="uid", help="column holding 32-hex uids, if any (default: uid)")
    p.add_argument("--shard-size", type=_positive_int, default=10_000, help="samples per shard")
    p.add_argument("--threads", type=_positive_int, default=64, help="download threads per worker process")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per socket operation")
    p.add_argument("--retries", type=int, default=0, help="extra attempts per failed sample")
    p.add_argument("--allow-address", action="append", default=[], metavar="HOST|HOST:PORT|CIDR",
                   help="allow a private/loopback/link-local address (repeatable); refused by default")
    p.add_argument("--user-agent-token", default=None, help="token added to the user agent")
    p.add_argument("--master", default="local[2]", help="Spark master for a session we create")

    p = _add(sub, "dedup", cmd_dedup, "Reject exact duplicates by canonical URL and by image sha256.")
    p.add_argument("--no-url", action="store_true", help="skip URL deduplication")
    p.add_argument("--no-image", action="store_true", help="skip image-hash deduplication")
    p.add_argument("--engine", choices=("spark", "local"), default="spark", help="where to run (default spark)")
    p.add_argument("--master", default="local[2]", help="Spark master for a session we create")

    p = _add(sub, "score", cmd_score, "CLIP similarity, embeddings and language ID with Ray.")
    p.add_argument("--model", default="tiny", help="NAME:PRETRAINED (tag, file or local-dir:PATH), or tiny")
    p.add_argument("--langid-model", default="bundled", help="fasttext model file (default: bundled lid.176.ftz)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="images per CLIP batch")
    p.add_argument("--actors", type=_positive_int, default=1, help="CLIP actors")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray)")

    p = _add(sub, "select", cmd_select, "Apply the DataComp policy: basic filter and CLIP score.")
    p.add_argument("--clip-fraction", type=_fraction, default=0.3, help="keep the top fraction (default 0.3)")
    p.add_argument("--clip-threshold", type=float, default=None, help="keep similarity >= this instead")
    p.add_argument("--no-basic-filter", action="store_true", help="skip DataComp's basic filter")

    p = _add(sub, "shard", cmd_shard, "Reshard the selection into webdataset shards with a manifest.")
    p.add_argument("--samples-per-shard", type=_positive_int, default=10_000, help="samples per output shard")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed")

    p = _add(sub, "audit", cmd_audit, "Check that every input row is kept or rejected exactly once.")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")

    p = _add(sub, "demo", cmd_demo, "Generate the sample pool, serve it on loopback, run every stage.", run=False)
    p.add_argument("--out", default="demo-out", help="run directory (default: ./demo-out)")
    p.add_argument("--n", type=_positive_int, default=2000, help="pool size (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="pool seed")

    add_compare(sub)
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


def main(argv: Sequence[str] | None = None) -> int:
    for key, value in (("SPARK_LOCAL_IP", "127.0.0.1"), ("RAY_USAGE_STATS_ENABLED", "0"),
                       ("NO_ALBUMENTATIONS_UPDATE", "1")):
        os.environ.setdefault(key, value)
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    try:
        return args.func(args)
    except CurateError as exc:
        print(f"curate: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("curate: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: one line, the traceback only with -v
        if args.verbose:
            log.exception("unexpected error")
        print(f"curate: internal error: {type(exc).__name__}: {exc} (rerun with -v for details)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
