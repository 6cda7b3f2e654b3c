"""The download stage: the engine cuts the input into shards (`curate.download.plan`), fetches each shard in a
task of its own (failed tasks are retried by the engine) with curate's own fetch and checks
(`curate.download.shardloop`), and the stage finishes with a status for every input row, counted by the engine
from the samples parts, with why fetches failed (`curate.download.failures`). `_stats.json` records the
consent, safety and politeness settings the run used (`checks`)."""

from __future__ import annotations

import logging
import math

from img2dataset.resizer import Resizer

from curate.download import failures
from curate.download.config import RETRYABLE_STATUSES, DownloadConfig
from curate.download.consent import clear_claims
from curate.download.faces import FaceBlur
from curate.download.fetch import FetchSettings
from curate.download.guard import AddressPolicy
from curate.download.limits import FetchLimits, PixelCap
from curate.download.plan import UrlPlan, plan_urls
from curate.download.polite import PoliteConfig
from curate.download.presets import resolve
from curate.download.rawwriter import RawShardWriter
from curate.download.safety import SafetyConfig
from curate.download.shardloop import CuratedDownloader, RunChecks
from curate.download.status import SUCCESS
from curate.download.worker import COLUMNS, SAMPLES_VERSION, SHARD_DIGITS, Layout, ShardWorker, samples_version
from curate.engines.base import Engine
from curate.errors import CurateError
from curate.io import dataset, fs
from curate.io.stagedir import SUCCESS as DONE_MARKER
from curate.io.stagedir import StageDir
from curate.stage import StageStats

log = logging.getLogger(__name__)

NAME = "download"
CONSENT_DIR = "_consent"  # robots.txt and tdmrep.json answers, one file per host (curate.download.consent)


def run_checks(config: DownloadConfig, root: str) -> RunChecks:
    """The consent, safety and politeness settings every worker process applies (its lists read there)."""
    try:
        polite = PoliteConfig(concurrency=config.host_concurrency, rate=config.host_rate, backoff=config.retry_backoff,
                              backoff_max=config.retry_backoff_max, retry_after_max=config.retry_after_max,
                              give_up_after=config.host_give_up)
    except ValueError as exc:
        raise CurateError(f"download: {exc}") from exc
    settings = FetchSettings(allow=config.allow_addresses, limits=fetch_limits(config), timeout=config.timeout,
                             user_agent_token=config.user_agent_token,
                             directives=tuple(config.disallowed_header_directives), robots=config.robots,
                             tdmrep=config.tdmrep, polite=polite, consent_dir=fs.join(root, CONSENT_DIR))
    return RunChecks(fetch=settings, safety=SafetyConfig(config.hash_lists, config.hash_list_distance,
                                                         config.hash_list_pdq_distance),
                     denylists=config.denylists, blur_faces=resolve(config).blur_faces)


def make_downloader(config: DownloadConfig, raw_dir: str, checks: RunChecks | None = None) -> CuratedDownloader:
    resizer = Resizer(image_size=config.image_size, resize_mode=config.resize_mode,
                      resize_only_if_bigger=True, encode_format=config.encode_format, skip_reencode=True,
                      # img2dataset reads png's "quality" as the zlib level (0-9); 6 is zlib's default
                      encode_quality=6 if config.encode_format == "png" else 95)
    checks = checks or RunChecks()
    inner = FaceBlur(resizer, config.encode_format) if checks.blur_faces else resizer
    return CuratedDownloader(
        checks, sample_writer_class=RawShardWriter, resizer=PixelCap(inner, config.max_pixels),
        thread_count=config.threads, save_caption=True, extract_exif=False, output_folder=raw_dir,
        column_list=COLUMNS, timeout=config.timeout, number_sample_per_shard=config.shard_size,
        oom_shard_count=SHARD_DIGITS, compute_hash="sha256", verify_hash_type=None,
        encode_format=config.encode_format,
        retries=0,  # ours retry transient failures per host, with backoff (curate.download.polite)
        user_agent_token=config.user_agent_token,
        disallowed_header_directives=list(config.disallowed_header_directives) or None)


def fetch_limits(config: DownloadConfig) -> FetchLimits:
    if config.deadline <= 0 or config.max_body_bytes <= 0 or config.max_pixels <= 0 or config.retries < 0:
        raise CurateError("download: deadline, max_body_bytes and max_pixels must be positive, retries >= 0")
    return FetchLimits(deadline=config.deadline, max_body_bytes=config.max_body_bytes, user_agent=config.user_agent,
                       retries=config.retries, backoff=config.retry_backoff, backoff_max=config.retry_backoff_max)


def check_lists(config: DownloadConfig) -> None:
    """A denylist or hash list that is not there is a one-line error before any work (they are read in the
    workers, once per process)."""
    for flag, paths in (("--denylist", config.denylists), ("--hash-list", config.hash_lists)):
        for path in paths:
            if not fs.exists(path):
                raise CurateError(f"download: {flag} {path}: no such file")


def checks_record(config: DownloadConfig, checks: RunChecks) -> dict:
    """What the run checked, for `_stats.json`: consent switches, lists, distances, blurring, politeness."""
    polite = checks.fetch.polite
    return {"robots": config.robots, "tdmrep": config.tdmrep, "x_robots_tag": sorted(checks.fetch.directives),
            "denylists": list(config.denylists), "hash_lists": list(config.hash_lists),
            "hash_list_distance": config.hash_list_distance, "hash_list_pdq_distance": config.hash_list_pdq_distance,
            "blur_faces": checks.blur_faces,
            "politeness": {"host_concurrency": polite.concurrency, "host_rate": polite.rate,
                           "host_give_up": polite.give_up_after, "retry_after_max": polite.retry_after_max,
                           "backoff": polite.backoff, "backoff_max": polite.backoff_max}}


def tasks_group(n: int, max_tasks: int = 20_000) -> int:
    """Items per engine task for `n` items: one each up to `max_tasks`, then grouped (DATAPLANE: 1.28M
    shards run as ~20,000 tasks, so the driver's task list stays bounded)."""
    return max(1, math.ceil(n / max_tasks))


def run_download(engine: Engine, run_dir: str, config: DownloadConfig) -> dict:
    """Download `config.input` into RUN/download; a finished stage is a no-op (unless `retry_failed`), an
    unfinished one resumes: one listing finds the shards still to fetch."""
    # a finished download with another configuration is an error; --retry-failed is an action on a finished
    # download, checked by the stage itself (the same input), and it records the configuration it retried with
    finished = None if config.retry_failed else StageDir.finished(run_dir, NAME, config)
    if finished is not None:
        return finished
    AddressPolicy(config.allow_addresses)  # a bad --allow-address is a one-line error before any work
    check_lists(config)
    checks = run_checks(config, StageDir(run_dir, NAME).path)
    with StageDir.open(run_dir, NAME, config, again=config.retry_failed) as sd:  # the lock goes however it ends
        if sd.done() and not config.retry_failed:  # another run finished it while we waited for the lock
            return StageDir.finished(run_dir, NAME, config)  # its stats, or the error when its options differ
        return _download(engine, sd, config, checks)


def _download(engine: Engine, sd: StageDir, config: DownloadConfig, checks: RunChecks) -> dict:
    layout = Layout(sd.path)
    plan = plan_urls(engine, config, layout.urls_dir)
    if sd.done():  # --retry-failed on a finished download: it is unfinished again until the retry ends
        ffs, marker = fs.url_to_fs(sd.file(DONE_MARKER))
        ffs.rm(marker)
    done = dataset.finished_parts(layout.samples_dir)
    pending = [s for s in range(plan.shards) if dataset.shard_part_name(s) not in done]
    log.info("download: %d rows in %d shards, %d to fetch", plan.rows, plan.shards, len(pending))
    fs.makedirs(layout.raw)
    version = samples_version(layout)
    if version != SAMPLES_VERSION:
        log.warning("download: %s holds samples.v%d shards from an older curate; the new ones keep that version "
                    "(samples.v%d's columns, `source` among them, need a new run)", sd.path, version, SAMPLES_VERSION)
    downloader = make_downloader(config, layout.raw, checks)
    engine.for_each(ShardWorker(downloader, layout, version=version), pending, tasks_group(len(pending)))
    if config.retry_failed:
        got = engine.for_each(ShardWorker(downloader, layout, retry=True, version=version),
                              range(plan.shards), tasks_group(plan.shards))
        log.info("download: retried %d rows in %d shards (statuses %s, and http_error for 5xx/429)",
                 got.get("rows", 0), got.get("shards", 0), ", ".join(RETRYABLE_STATUSES))
    return _finish(engine, sd, layout, plan, checks_record(config, checks))


def _finish(engine: Engine, sd: StageDir, layout: Layout, plan: UrlPlan, checks: dict) -> dict:
    ffs, p = fs.url_to_fs(layout.raw)
    if ffs.exists(p):
        ffs.rm(p, recursive=True)
    clear_claims(fs.join(layout.root, CONSENT_DIR))
    parts = dataset.part_paths(layout.samples_dir)
    counted = engine.for_each(failures.count_part, parts, tasks_group(len(parts)))
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
    result = {"stage": NAME, "shards": plan.shards, **stats.to_dict(), "checks": checks,
              "failures": failures.summary(counted)}
    sd.finish(result)
    return result
