"""The download stage: split the input into shards, fetch them on an engine, retry failed shards,
and finish with a status for every input row."""

from __future__ import annotations

import logging
import math

import pyarrow as pa
from img2dataset.downloader import Downloader
from img2dataset.resizer import Resizer
from img2dataset.writer import WebDatasetSampleWriter

from curate import schemas
from curate.download import retry
from curate.download.config import DownloadConfig
from curate.download.guard import AddressPolicy
from curate.download.inputs import URLS_VERSION, read_input
from curate.download.limits import FetchLimits, PixelCap
from curate.download.status import SUCCESS
from curate.download.worker import COLUMNS, SAMPLES_VERSION, SHARD_DIGITS, Layout, ShardWorker, samples_version
from curate.engines.base import Engine
from curate.errors import CurateError
from curate.io import fs
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


def _write_input_shards(layout: Layout, urls: pa.Table, shard_size: int, shard_ids: list[int]) -> None:
    for sid in shard_ids:
        retry.write_arrow(layout.input_arrow(sid), urls.slice(sid * shard_size, shard_size))


def _run_shards(engine: Engine, worker: ShardWorker, pending: list[int], config: DownloadConfig) -> None:
    """Run `worker` on every shard, again on those that failed, up to config.max_shard_retry times."""
    failures: list = []
    for attempt in range(1 + config.max_shard_retry):
        if not pending:
            return
        if attempt:
            log.warning("download: retrying %d failed shards (attempt %d)", len(pending), attempt + 1)
        failures = [r for r in engine.run_tasks(worker, pending) if not r.ok]
        pending = [r.shard_id for r in failures]
    if pending:
        raise CurateError(f"download: {len(pending)} shard(s) failed after {config.max_shard_retry + 1} "
                          f"attempts (first: {failures[0].error}); rerun to resume")


def run_download(engine: Engine, run_dir: str, config: DownloadConfig) -> dict:
    """Download `config.input` into RUN/download; a finished stage is a no-op (unless `retry_failed`), an
    unfinished one resumes."""
    sd = StageDir(run_dir, NAME)
    if sd.done() and not config.retry_failed:
        log.info("download: already complete in %s", sd.path)
        return sd.stats()
    policy = AddressPolicy(config.allow_addresses)
    fetch = fetch_limits(config)
    urls = read_input(config)
    sd.begin()
    layout = Layout(sd.path)
    if not fs.exists(sd.file("urls.parquet")):
        fs.write_table(schemas.conform(urls, "urls", URLS_VERSION), sd.file("urls.parquet"))
    elif not fs.read_table(sd.file("urls.parquet"), columns=["uid"]).column("uid").equals(urls.column("uid")):
        raise CurateError(f"download: {sd.path} holds a download of another input; use another run directory")
    n_shards = math.ceil(urls.num_rows / config.shard_size)
    if sd.done():  # --retry-failed on a finished download: it is unfinished again until the retry ends
        ffs, marker = fs.url_to_fs(sd.file(DONE_MARKER))
        ffs.rm(marker)
    pending = [s for s in range(n_shards) if not fs.exists(layout.samples(s))]
    log.info("download: %d rows in %d shards, %d to fetch", urls.num_rows, n_shards, len(pending))
    _write_input_shards(layout, urls, config.shard_size, pending)
    fs.makedirs(layout.raw)
    version = samples_version(layout)
    if version != SAMPLES_VERSION:
        log.warning("download: %s holds samples.v%d shards from an older curate; the new ones keep that version "
                    "(samples.v%d's columns, `source` among them, need a new run)", sd.path, version, SAMPLES_VERSION)
    downloader = make_downloader(config, layout.raw)
    _run_shards(engine, ShardWorker(downloader, policy, layout, fetch, version=version), pending, config)
    if config.retry_failed:
        again = retry.plan(layout, urls, n_shards, config.shard_size)
        _run_shards(engine, ShardWorker(downloader, policy, layout, fetch, retry=True, version=version), again,
                    config)
    return _finish(sd, layout, urls, n_shards)


def _finish(sd: StageDir, layout: Layout, urls: pa.Table, n_shards: int) -> dict:
    for folder in (layout.inputs, layout.raw):
        ffs, p = fs.url_to_fs(folder)
        if ffs.exists(p):
            ffs.rm(p, recursive=True)
    samples = fs.read_table(sd.file("samples"), schema="samples")
    stats = StageStats.from_table(samples.append_column(
        "reason", pa.array([None if s == SUCCESS else s for s in samples.column("status").to_pylist()],
                           pa.string())))
    if stats.rows_in != urls.num_rows:
        raise CurateError(f"download: {urls.num_rows} input rows but {stats.rows_in} status rows; "
                          "remove RUN/download and rerun")
    blocked = stats.rejected.get("blocked_address", 0)
    if blocked:
        log.warning("download: %d URLs were refused as private, loopback, link-local or non-HTTP addresses; "
                    "if you trust them, allow them with --allow-address HOST|HOST:PORT|CIDR", blocked)
    result = {"stage": NAME, "shards": n_shards, **stats.to_dict()}
    sd.finish(result)
    return result
