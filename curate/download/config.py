"""Download configuration: a frozen dataclass, parsed from CLI flags or YAML at the edge."""

from __future__ import annotations

from dataclasses import dataclass, field

# Statuses worth fetching again with --retry-failed: the server or the network may answer differently
# next time. An http_error is retried only for a 5xx or 429 answer (RETRYABLE_HTTP). Refusals
# (blocked_address, opted_out, invalid_url, denylisted, robots_disallowed, tdm_reserved, safety_hash_list) and
# content verdicts (not_image, decode_error, too_large) are final.
RETRYABLE_STATUSES: tuple[str, ...] = ("timeout", "network_error", "redirect_error", "download_error",
                                       "host_gave_up")
RETRYABLE_HTTP = r"^HTTP Error (5\d\d|429)\b"  # matched against the error of an http_error row


@dataclass(frozen=True)
class DownloadConfig:
    input: str
    input_format: str = "auto"  # auto (from the file name), parquet, csv or jsonl
    preset: str = "plain"  # column mapping: plain, datacomp or laion (curate/download/presets.py)
    url_col: str | None = None  # None: the preset's column
    caption_col: str | None = None
    uid_col: str | None = None  # used when the input has it; otherwise derived from url and caption
    # names each row's source dataset (samples' `source`, what select's `mix` groups); None: the preset's
    # (`source`), null where the input has no such column
    source_col: str | None = None
    shard_size: int = 10_000  # samples per shard (img2dataset's number_sample_per_shard)
    # Fields with metadata {"fingerprint": False} are left out of the stage's _fingerprint.json
    # (curate.io.fingerprint): they change how fast it runs, not what a finished download holds.
    threads: int = field(default=64, metadata={"fingerprint": False})  # download threads per worker process
    timeout: float = 10.0  # seconds per socket operation
    deadline: float = 60.0  # seconds per request in all: connect, redirects, headers and body
    max_body_bytes: int = 32 * 1024 * 1024  # a larger body is `too_large` (checked while reading)
    # decoded pixels above this are `too_large`, checked from the image header before decoding; the
    # figure is Pillow's DecompressionBombError threshold (2 x Image.MAX_IMAGE_PIXELS)
    max_pixels: int = 178_956_970
    retries: int = 0  # extra attempts per sample after a 5xx, 429, timeout or dropped connection
    retry_backoff: float = 0.5  # seconds before the first extra attempt, doubled each time
    retry_backoff_max: float = 8.0  # the longest wait between attempts
    # on a finished download, fetch again the rows with a RETRYABLE_STATUSES status: an action on a finished
    # download, not a setting of it (a plain rerun after a retry stays a no-op), so not fingerprinted
    retry_failed: bool = field(default=False, metadata={"fingerprint": False})
    allow_addresses: tuple[str, ...] = ()  # opens private/loopback hosts, host:port or CIDRs
    user_agent: str | None = None  # the User-Agent header sent; None: img2dataset's
    user_agent_token: str | None = None  # a token added to img2dataset's user agent, matched in X-Robots-Tag
    # X-Robots-Tag directives that opt an image out (img2dataset's defaults)
    disallowed_header_directives: tuple[str, ...] = ("noai", "noimageai", "noindex", "noimageindex")
    # consent (curate.download.consent): robots.txt per host and TDMRep (tdm-reservation header and
    # /.well-known/tdmrep.json) are honoured unless turned off; the run records both settings
    robots: bool = True
    tdmrep: bool = True
    # URL, canonical URL, domain and uid lists (curate.download.denylist); safety hash lists checked before
    # anything is written (curate.download.safety); both fingerprinted with their content
    denylists: tuple[str, ...] = field(default=(), metadata={"files": True})
    hash_lists: tuple[str, ...] = field(default=(), metadata={"files": True})
    hash_list_distance: int = 3  # pHash bits a listed pHash may differ in (as `curate dedup --hash-list-distance`)
    # PDQ bits a listed PDQ hash may differ in: facebook/ThreatExchange pdq/README.md recommends <= 31
    hash_list_pdq_distance: int = 31
    blur_faces: bool | None = None  # blur the input's face boxes; None: the preset's (on for datacomp, as DataComp)
    # politeness per host and worker process (curate.download.polite)
    host_concurrency: int = field(default=16, metadata={"fingerprint": False})  # requests in flight to one host
    # request starts per second to one host; 0 = no cap (pace only: not fingerprinted)
    host_rate: float = field(default=0.0, metadata={"fingerprint": False})
    host_give_up: int = 8  # failures in a row (429, 5xx, timeouts, dropped connections) that give a host up
    retry_after_max: float = 120.0  # a longer Retry-After gives the host up instead of waiting
    resize_mode: str = "no"  # keep the original bytes; img2dataset's other modes resize to image_size
    image_size: int = 512
    encode_format: str = "jpg"
