"""The download stage: the engine cuts the input into shards (`curate.download.plan`), fetches each shard in a
task of its own (failed tasks are retried by the engine), and the stage finishes with a status for every
input row, counted by the engine from the samples parts."""

from __future__ import annotations

import logging
import math

from img2dataset.downloader import Downloader
from img2dataset.resizer import Resizer
from img2dataset.writer import WebDatasetSampleWriter

from curate.download.config import RETRYABLE_STATUSES, DownloadConfig
from curate.download.guard import AddressPolicy
from curate.download.limits import FetchLimits, PixelCap
from curate.download.plan import UrlPlan, plan_urls
from curate.download.status import SUCCESS
from curate.download.worker import (
    COLUMNS,
    SAMPLES_VERSION,
    SHARD_DIGITS,
    Layout,
    ShardWorker,
    count_statuses,
    samples_version,
)
from curate.engines.base import Engine
from curate.errors import CurateError
from curate.io import dataset, fs
from curate.io.stagedir import SUCCESS as DONE_MARKER
from curate.io.stagedir import StageDir
from curate.stage import StageStats

log = logging.getLogger(__name__)

NAME = "download"


def make_downloader(config: DownloadConfig, raw_dir: str) -> Downloader:
    resizer = Resizer(image_size=config.image_size, resize_mode=config.resize_mode,
                      resize_only_if_bigger=True, encode_format=config.encode_format, skip_reencode=True)
    return Downloader(
        sample_writer_class=WebDatasetSampleWriter, resizer=PixelCap(resizer, config.max_pixels),
        thread_count=config.threads, save_caption=True, extract_exif=False, output_folder=raw_dir,
        column_list=COLUMNS, timeout=config.timeout, number_sample_per_shard=config.shard_size,
        oom_shard_count=SHARD_DIGITS, compute_hash="sha256", verify_hash_type=None,
        encode_format=config.encode_format,
        retries=0,  # ours (FetchLimits) retry transient failures only, with backoff
        user_agent_token=config.user_agent_token,
        disallowed_header_directives=list(config.disallowed_header_directives) or None)


def fetch_limits(config: DownloadConfig) -> FetchLimits:
    if config.deadline <= 0 or config.max_body_bytes <= 0 or config.max_pixels <= 0 or config.retries < 0:
        raise CurateError("download: deadline, max_body_bytes and max_pixels must be positive, retries >= 0")
    return FetchLimits(deadline=config.deadline, max_body_bytes=config.max_body_bytes, user_agent=config.user_agent,
                       retries=config.retries, backoff=config.retry_backoff, backoff_max=config.retry_backoff_max)


def tasks_group(n: int, max_tasks: int = 20_000) -> int:
    """Items per engine task for `n` items: one each up to `max_tasks`, then grouped (DATAPLANE: 1.28M
    shards run as ~20,000 tasks, so the driver's task list stays bounded)."""
    return max(1, math.ceil(n / max_tasks))


def run_download(engine: Engine, run_dir: str, config: DownloadConfig) -> dict:
    """Download `config.input` into RUN/download; a finished stage is a no-op (unless `retry_failed`), an
    unfinished one resumes: one listing finds the shards still to fetch."""
    sd = StageDir(run_dir, NAME)
    if sd.done() and not config.retry_failed:
        log.info("download: already complete in %s", sd.path)
        return sd.stats()
    policy = AddressPolicy(config.allow_addresses)
    fetch = fetch_limits(config)
    sd.begin()
    layout = Layout(sd.path)
    plan = plan_urls(engine, config, layout.urls_dir)
    if sd.done():  # --retry-failed on a finished download: it is unfinished again until the retry ends
        ffs, marker = fs.url_to_fs(sd.file(DONE_MARKER))
        ffs.rm(marker)
    done = dataset.list_parts(layout.samples_dir)
    pending = [s for s in range(plan.shards) if dataset.shard_part_name(s) not in done]
    log.info("download: %d rows in %d shards, %d to fetch", plan.rows, plan.shards, len(pending))
    fs.makedirs(layout.raw)
    version = samples_version(layout)
    if version != SAMPLES_VERSION:
        log.warning("download: %s holds samples.v%d shards from an older curate; the new ones keep that version "
                    "(samples.v%d's columns, `source` among them, need a new run)", sd.path, version, SAMPLES_VERSION)
    downloader = make_downloader(config, layout.raw)
    engine.for_each(ShardWorker(downloader, policy, layout, fetch, version=version), pending,
                    tasks_group(len(pending)))
    if config.retry_failed:
        got = engine.for_each(ShardWorker(downloader, policy, layout, fetch, retry=True, version=version),
                              range(plan.shards), tasks_group(plan.shards))
        log.info("download: retried %d rows in %d shards (statuses %s, and http_error for 5xx/429)",
                 got.get("rows", 0), got.get("shards", 0), ", ".join(RETRYABLE_STATUSES))
    return _finish(engine, sd, layout, plan)


def _finish(engine: Engine, sd: StageDir, layout: Layout, plan: UrlPlan) -> dict:
    ffs, p = fs.url_to_fs(layout.raw)
    if ffs.exists(p):
        ffs.rm(p, recursive=True)
    parts = dataset.part_paths(layout.samples_dir)
    counted = engine.for_each(count_statuses, parts, tasks_group(len(parts)))
    status = counted.get("status", {})
    stats = StageStats(rows_in=counted.get("rows", 0), kept=status.get(SUCCESS, 0))
    stats.rejected.update({k: v for k, v in status.items() if k != SUCCESS})
    if stats.rows_in != plan.rows or len(parts) != plan.shards:
        raise CurateError(f"download: {plan.rows} input rows in {plan.shards} shards but {stats.rows_in} status "
                          f"rows in {len(parts)}; remove RUN/download and rerun")
    blocked = stats.rejected.get("blocked_address", 0)
    if blocked:
        log.warning("download: %d URLs were refused as private, loopback, link-local or non-HTTP addresses; "
                    "if you trust them, allow them with --allow-address HOST|HOST:PORT|CIDR", blocked)
    result = {"stage": NAME, "shards": plan.shards, **stats.to_dict()}
    sd.finish(result)
    return result
