"""`curate dedup`: flags become a frozen DedupConfig here, at the edge."""

from __future__ import annotations

import argparse

from curate.cliutil import add_spark_options, add_stage, report, reported_finished, spark_engine
from curate.errors import CurateError


def config_from_args(args: argparse.Namespace):
    from curate.dedup.config import DedupConfig

    try:
        return DedupConfig(
            by_url=not args.no_url, by_pair=not args.no_pairs, by_image=not args.no_image, near=not args.no_near,
            near_distance=args.near_distance, eval_images=args.eval_images,
            eval_distance=args.eval_distance, hash_lists=tuple(args.hash_list or ()),
            hash_list_distance=args.hash_list_distance, placeholder_min_urls=args.placeholder_min_urls,
            near_hash=args.near_hash, pdq_distance=args.pdq_distance,
            hash_list_pdq_distance=args.hash_list_pdq_distance)
    except ValueError as exc:
        raise CurateError(f"dedup: {exc}") from exc


def cmd_dedup(args: argparse.Namespace) -> int:
    from curate.dedup.run import run_dedup

    config = config_from_args(args)
    if reported_finished("dedup", args.run, config):
        return 0
    with spark_engine(args) as engine:
        report(run_dedup(engine, args.run, config))
    return 0


def add_parser(sub) -> None:
    from curate.dedup.config import NEAR_HASHES, PDQ_DISTANCE

    p = add_stage(sub, "dedup", cmd_dedup,
                  "Reject safety-listed, eval-contaminated and placeholder images, then exact duplicates "
                  "(canonical URL, caption+image, image sha256) and perceptual near-duplicates.")
    p.add_argument("--no-url", action="store_true", help="skip URL deduplication")
    p.add_argument("--no-pairs", action="store_true", help="skip caption+image pair deduplication")
    p.add_argument("--no-image", action="store_true", help="skip image-sha256 deduplication")
    p.add_argument("--no-near", action="store_true", help="skip perceptual near-duplicate deduplication")
    p.add_argument("--near-distance", type=int, default=3, metavar="BITS",
                   help="pHash bits two near-duplicates may differ in (default 3 of 64)")
    p.add_argument("--near-hash", choices=NEAR_HASHES, default="phash",
                   help="perceptual hash of the near-duplicate and eval checks: phash (64 bits, --near-distance) "
                        "or pdq (Meta's 256-bit PDQ, --pdq-distance); default phash")
    p.add_argument("--pdq-distance", type=int, default=PDQ_DISTANCE, metavar="BITS",
                   help=f"PDQ bits two near-duplicates may differ in with --near-hash pdq (default {PDQ_DISTANCE} "
                        "of 256, Meta's matching threshold)")
    p.add_argument("--eval-images", metavar="DIR", help="folder of evaluation images to decontaminate against")
    p.add_argument("--eval-distance", type=int, default=None, metavar="BITS",
                   help="distance for eval contamination, in bits of --near-hash (default: its near distance)")
    p.add_argument("--hash-list", action="append", metavar="FILE",
                   help="safety hash list (text, CSV or parquet of md5/sha1/sha256/phash/pdq hex); repeatable; "
                        "listed samples' files are removed from the download tars")
    p.add_argument("--hash-list-distance", type=int, default=3, metavar="BITS",
                   help="pHash entries of hash lists match within this many bits (default 3)")
    p.add_argument("--hash-list-pdq-distance", type=int, default=PDQ_DISTANCE, metavar="BITS",
                   help=f"PDQ entries of hash lists match within this many bits (default {PDQ_DISTANCE} of 256)")
    p.add_argument("--placeholder-min-urls", type=int, default=5, metavar="K",
                   help="a hash shared by K distinct canonical URLs is a placeholder image (default 5; 0 = off)")
    add_spark_options(p)
