"""ExtractConfig: what to read and how to turn image references into pairs (frozen; built at the CLI edge)."""

from __future__ import annotations

from dataclasses import dataclass, field

FORMATS = ("wat", "warc")


@dataclass(frozen=True)
class ExtractConfig:
    input: str  # a file, a folder, an fsspec glob, or a listing such as Common Crawl's wat.paths.gz
    source_format: str = "wat"  # wat: WAT metadata records (HTML links as JSON); warc: WARC HTML responses
    # a listing's relative lines (crawl-data/...) are read from here; Common Crawl's bucket by default
    paths_prefix: str = "s3://commoncrawl/"
    limit: int | None = None  # only the first N input files (a trial run)
    crawl: str | None = None  # the crawl id (CC-MAIN-2024-10); None: from each file's path
    source: str | None = None  # every row's `source`; None: the crawl id
    # input files per engine task; 0: one, or more when there are over MAX_TASKS files. Not fingerprinted
    # (curate.io.fingerprint): parts are named by input file, so grouping changes how it runs, not what it writes
    files_per_task: int = field(default=0, metadata={"fingerprint": False})
    # <img> attributes read for the image URL, in order of preference: lazy-loading pages put the real URL in
    # data-src and a placeholder in src; srcset gives the largest candidate. WAT files hold only src.
    url_attributes: tuple[str, ...] = ("data-src", "src", "srcset", "data-srcset")
    title_fallback: bool = True  # no alt text: the img's title attribute is the caption (caption_source=title)
    require_caption: bool = True  # an image with no caption is rejected as no_caption
    # ours: longer alt text is cut at a word boundary (the raw text is kept whole in caption_raw, up to
    # max_raw_caption_chars); real alt text is far shorter, this only bounds keyword-stuffed pages
    max_caption_chars: int = 1000
    max_raw_caption_chars: int = 8192
    # ours: common practical URL limit (browsers and CDNs accept more; longer ones are mostly tracking junk)
    max_url_chars: int = 2048
    max_images_per_page: int = 2000  # further images of a page are rejected as too_many_images
    # HTML bytes parsed per WARC page; Common Crawl truncates payloads at 1 MiB, so this only bounds other WARCs
    max_html_bytes: int = 4 << 20
    robots_names: tuple[str, ...] = ("robots",)  # <meta name=...> whose content is read for opt-out directives
    opt_out_directives: tuple[str, ...] = ("noai", "noimageai")  # any of them sets the pair's opt_out
    strict: bool = False  # a damaged input file (bad gzip, truncated, not WARC) fails the stage; else it is counted

    def __post_init__(self) -> None:
        if self.source_format not in FORMATS:
            raise ValueError(f"source_format must be one of {', '.join(FORMATS)}, got {self.source_format!r}")
        for name in ("max_caption_chars", "max_raw_caption_chars", "max_url_chars", "max_images_per_page",
                     "max_html_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.files_per_task < 0 or (self.limit is not None and self.limit <= 0):
            raise ValueError("files_per_task must be >= 0 and limit positive")
        if not self.url_attributes:
            raise ValueError("url_attributes must name at least one attribute")

    def shaping(self) -> dict:
        """The settings that decide the rows (not where the input lives): a rerun must use the same ones."""
        keep = ("source_format", "crawl", "source", "url_attributes", "title_fallback", "require_caption",
                "max_caption_chars", "max_raw_caption_chars", "max_url_chars", "max_images_per_page",
                "max_html_bytes", "robots_names", "opt_out_directives")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in ((k, getattr(self, k)) for k in keep)}
