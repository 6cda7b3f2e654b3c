"""`curate extract`: flags become a frozen ExtractConfig here, at the edge."""

from __future__ import annotations

import argparse

from curate.cliutil import add_spark_options, add_stage, non_negative_int, positive_int, report, spark_engine


def config_from_args(args: argparse.Namespace):
    from curate.errors import CurateError
    from curate.extract.config import ExtractConfig

    try:
        return ExtractConfig(
            input=args.input, source_format=args.source_format, paths_prefix=args.paths_prefix, limit=args.limit,
            crawl=args.crawl, source=args.source, files_per_task=args.files_per_task,
            require_caption=not args.keep_uncaptioned, title_fallback=not args.no_title_fallback,
            max_caption_chars=args.max_caption_chars, max_images_per_page=args.max_images_per_page,
            strict=args.strict)
    except ValueError as exc:
        raise CurateError(f"extract: {exc}") from exc


def cmd_extract(args: argparse.Namespace) -> int:
    from curate.engines.local import LocalEngine
    from curate.extract.inputs import expand
    from curate.extract.run import run_extract
    from curate.io.stagedir import StageDir

    config = config_from_args(args)
    # a finished stage reruns as a no-op, without an engine (an error when its configuration changed)
    stats = StageDir.finished(args.run, "extract", config)
    if stats is None:
        files = expand(config)  # a bad glob, folder or listing is a one-line error before an engine starts
        with LocalEngine() if args.engine == "local" else spark_engine(args) as engine:
            stats = run_extract(engine, args.run, config, files)
    report(stats)
    return 0


def add_parser(sub) -> None:
    from curate.extract.config import FORMATS, ExtractConfig

    d = ExtractConfig(input="")
    p = add_stage(sub, "extract", cmd_extract,
                  "Extract image URLs and alt text from Common Crawl WAT (or WARC) files into a download input.")
    p.add_argument("--input", required=True,
                   help="a file, folder or fsspec glob of WAT/WARC files, or a listing such as wat.paths.gz, e.g. "
                        "'s3://commoncrawl/crawl-data/CC-MAIN-2024-10/segments/*/wat/*.warc.wat.gz'")
    p.add_argument("--source-format", choices=FORMATS, default=d.source_format,
                   help="wat: WAT metadata records (default); warc: WARC HTML responses (full alt text, srcset, "
                        "data-src, width and height, which WAT files do not keep)")
    p.add_argument("--paths-prefix", default=d.paths_prefix,
                   help=f"where a listing's relative paths live (default: {d.paths_prefix}; "
                        "https://data.commoncrawl.org/ over HTTP)")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N input files (a trial run)")
    p.add_argument("--crawl", default=None, help="the crawl id for every row (default: from each file's path)")
    p.add_argument("--source", default=None, help="every row's `source` (default: the crawl id)")
    p.add_argument("--files-per-task", type=non_negative_int, default=d.files_per_task,
                   help="input files per engine task (default 0: one, more when there are over 20,000 files)")
    p.add_argument("--keep-uncaptioned", action="store_true",
                   help="keep images with no alt text (caption null) instead of rejecting them as no_caption")
    p.add_argument("--no-title-fallback", action="store_true",
                   help="an image without alt text gets no caption from its title attribute")
    p.add_argument("--max-caption-chars", type=positive_int, default=d.max_caption_chars,
                   help=f"longer captions are cut at a word boundary (default {d.max_caption_chars}; the raw "
                        "text is kept)")
    p.add_argument("--max-images-per-page", type=positive_int, default=d.max_images_per_page,
                   help=f"further images of a page are rejected as too_many_images (default "
                        f"{d.max_images_per_page})")
    p.add_argument("--strict", action="store_true",
                   help="a damaged input file (bad gzip, cut short, not WARC) fails the stage instead of "
                        "being counted in files_damaged")
    p.add_argument("--engine", choices=("spark", "local"), default="spark",
                   help="spark (default), or local: in this process, for small inputs")
    add_spark_options(p)
