"""`curate download`: flags become a frozen DownloadConfig here, at the edge."""

from __future__ import annotations

import argparse

from curate.cliutil import (
    add_spark_options,
    add_stage,
    non_negative_int,
    positive_float,
    positive_int,
    report,
    spark_engine,
)


def rate(text: str) -> float:
    """A positive number, or 0 for no cap."""
    try:
        return 0.0 if float(text) == 0 else positive_float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc


def config_from_args(args: argparse.Namespace):
    from curate.download.config import DownloadConfig

    return DownloadConfig(
        input=args.input, input_format=args.input_format, preset=args.preset, url_col=args.url_col,
        caption_col=args.caption_col, uid_col=args.uid_col, source_col=args.source_col,
        shard_size=args.shard_size, threads=args.threads, timeout=args.timeout, deadline=args.deadline,
        max_body_bytes=args.max_body_bytes, max_pixels=args.max_pixels,
        retries=args.retries, retry_backoff=args.retry_backoff, retry_failed=args.retry_failed,
        allow_addresses=tuple(args.allow_address), user_agent=args.user_agent,
        user_agent_token=args.user_agent_token, robots=not args.no_robots, tdmrep=not args.no_tdmrep,
        denylists=tuple(args.denylist), hash_lists=tuple(args.hash_list), hash_list_distance=args.hash_list_distance,
        hash_list_pdq_distance=args.hash_list_pdq_distance, blur_faces=args.blur_faces,
        host_concurrency=args.host_concurrency, host_rate=args.host_rate, host_give_up=args.host_give_up,
        retry_after_max=args.retry_after_max)


def cmd_download(args: argparse.Namespace) -> int:
    from curate.io.stagedir import StageDir

    config = config_from_args(args)
    # a rerun after completion: no engine, not even img2dataset (an error when its configuration changed)
    finished = None if config.retry_failed else StageDir.finished(args.run, "download", config)
    if finished is not None:
        report(finished)
        return 0
    from curate.download.inputs import check_input
    from curate.download.run import check_lists, run_checks, run_download

    check_input(config)  # a bad input, list or limit is a one-line error before an engine starts
    check_lists(config)
    run_checks(config, args.run)
    if args.engine == "ray":
        from curate.engines.ray import RayEngine

        engine = RayEngine(address=args.ray_address, num_cpus=None if args.ray_address else args.num_cpus)
    else:
        engine = spark_engine(args)
    with engine:
        report(run_download(engine, args.run, config))
    return 0


def add_parser(sub) -> None:
    from curate.download.config import DownloadConfig
    from curate.download.inputs import FORMATS
    from curate.download.presets import PRESETS

    d = DownloadConfig(input="")
    p = add_stage(sub, "download", cmd_download,
                  "Download a URL+caption list (parquet, CSV or JSONL) with img2dataset under Spark or Ray.")
    p.add_argument("--input", required=True, help="a file or folder: parquet, CSV or JSONL, with url, caption, uid")
    p.add_argument("--input-format", choices=("auto", *FORMATS), default="auto",
                   help="input format (default: from the file name; parquet for a folder)")
    p.add_argument("--preset", choices=tuple(PRESETS), default="plain",
                   help="column mapping: plain (url, caption, uid), datacomp (url, text, uid, original_width, ...), "
                        "laion (URL, TEXT, WIDTH, HEIGHT, similarity); the flags below override it")
    p.add_argument("--url-col", default=None, help="column holding the URL (default: the preset's)")
    p.add_argument("--caption-col", default=None, help="column holding the caption (default: the preset's)")
    p.add_argument("--uid-col", default=None, help="column holding 32-hex uids; without it uids are derived "
                                                   "from url and caption (default: the preset's)")
    p.add_argument("--source-col", default=None,
                   help="column naming each row's source dataset, carried to download/samples as `source` for the "
                        "select stage's `mix` step (default: source; rows get null when the input has none)")
    p.add_argument("--shard-size", type=positive_int, default=d.shard_size, help="samples per shard")
    p.add_argument("--threads", type=positive_int, default=d.threads, help="download threads per worker process")
    p.add_argument("--timeout", type=positive_float, default=d.timeout, help="seconds per socket operation")
    p.add_argument("--deadline", type=positive_float, default=d.deadline,
                   help=f"seconds per request in all, redirects and body included (default: {d.deadline:g})")
    p.add_argument("--max-body-bytes", type=positive_int, default=d.max_body_bytes,
                   help=f"larger bodies are too_large (default: {d.max_body_bytes})")
    p.add_argument("--max-pixels", type=positive_int, default=d.max_pixels,
                   help=f"images announcing more pixels are too_large, before decoding (default: {d.max_pixels})")
    p.add_argument("--retries", type=non_negative_int, default=d.retries,
                   help="extra attempts per sample after a 5xx, 429, timeout or dropped connection")
    p.add_argument("--retry-backoff", type=positive_float, default=d.retry_backoff,
                   help="seconds before the first extra attempt, doubled each time")
    p.add_argument("--retry-failed", action="store_true",
                   help="on a finished download: fetch again the rows that failed with a retryable status "
                        "(timeout, network_error, redirect_error, download_error, http_error 5xx/429)")
    p.add_argument("--allow-address", action="append", default=[], metavar="HOST|HOST:PORT|CIDR",
                   help="allow a private/loopback/link-local address (repeatable); refused by default")
    p.add_argument("--user-agent", default=None, help="the User-Agent header to send (default: img2dataset's)")
    p.add_argument("--user-agent-token", default=None,
                   help="token added to img2dataset's user agent and matched in X-Robots-Tag")
    add_consent_options(p, d)
    p.add_argument("--engine", choices=("spark", "ray"), default="spark", help="where shards run (default: spark)")
    add_spark_options(p)
    p.add_argument("--ray-address", default=None, help="Ray cluster to join (default: start a local Ray)")
    p.add_argument("--num-cpus", type=positive_int, default=2, help="CPUs of a local Ray (default: 2)")


def add_consent_options(p, d) -> None:
    """Consent, safety, face blurring and politeness flags (issue 17)."""
    p.add_argument("--denylist", action="append", default=[], metavar="FILE",
                   help="URL, canonical URL, domain or uid list (text, CSV or parquet; local or object store): "
                        "its rows get status denylisted before any request (repeatable)")
    p.add_argument("--hash-list", action="append", default=[], metavar="FILE",
                   help="safety hash list (md5/sha1/sha256/phash/pdq, as `curate dedup --hash-list`): a listed "
                        "body is never written, only its sha256 and status safety_hash_list (repeatable)")
    p.add_argument("--hash-list-distance", type=non_negative_int, default=d.hash_list_distance, metavar="BITS",
                   help=f"pHash bits a listed pHash may differ in (default {d.hash_list_distance} of 64)")
    p.add_argument("--hash-list-pdq-distance", type=non_negative_int, default=d.hash_list_pdq_distance,
                   metavar="BITS", help=f"PDQ bits a listed PDQ hash may differ in (default "
                                        f"{d.hash_list_pdq_distance} of 256, Meta's recommendation)")
    p.add_argument("--no-robots", action="store_true", help="do not fetch or honour robots.txt (recorded in the run)")
    p.add_argument("--no-tdmrep", action="store_true",
                   help="do not honour TDMRep (tdm-reservation header, /.well-known/tdmrep.json; recorded in the run)")
    p.add_argument("--blur-faces", action=argparse.BooleanOptionalAction, default=None,
                   help="blur the boxes of the input's face_bboxes column before writing (default: on with "
                        "--preset datacomp, as DataComp's downloader, off otherwise)")
    p.add_argument("--host-concurrency", type=positive_int, default=d.host_concurrency,
                   help=f"requests in flight per host and worker process (default {d.host_concurrency})")
    p.add_argument("--host-rate", type=rate, default=d.host_rate,
                   help="request starts per second per host and worker process (default: no cap)")
    p.add_argument("--host-give-up", type=non_negative_int, default=d.host_give_up,
                   help=f"failures in a row (429, 5xx, timeouts) that give a host up: its other rows get "
                        f"host_gave_up (default {d.host_give_up}; 0 = never)")
    p.add_argument("--retry-after-max", type=positive_float, default=d.retry_after_max,
                   help=f"a longer Retry-After gives the host up (default {d.retry_after_max:g} s)")
