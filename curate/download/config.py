"""Download configuration: a frozen dataclass, parsed from CLI flags or YAML at the edge."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DownloadConfig:
    input: str
    url_col: str = "url"
    caption_col: str = "caption"
    uid_col: str = "uid"  # used when the input has it; otherwise derived from url and caption
    shard_size: int = 10_000  # samples per shard (img2dataset's number_sample_per_shard)
    threads: int = 64  # download threads per worker process
    timeout: float = 10.0  # seconds per socket operation
    retries: int = 0  # extra attempts per failed sample
    max_shard_retry: int = 1  # extra attempts per failed shard
    allow_addresses: tuple[str, ...] = ()  # opens private/loopback hosts, host:port or CIDRs
    user_agent_token: str | None = None
    # X-Robots-Tag directives that opt an image out (img2dataset's defaults)
    disallowed_header_directives: tuple[str, ...] = ("noai", "noimageai", "noindex", "noimageindex")
    resize_mode: str = "no"  # keep the original bytes; img2dataset's other modes resize to image_size
    image_size: int = 512
    encode_format: str = "jpg"
