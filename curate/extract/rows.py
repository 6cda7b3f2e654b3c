"""The pages of one input file to two tables: kept pairs and rejected image references (with reasons).

Every image reference of every page ends in exactly one of them. In order, an image is rejected as
- `too_many_images`: past the page's cap;
- its URL's reason (`no_url`, `invalid_url`, `bad_scheme`, `relative_unresolvable`, `blocked_address`,
  curate/extract/urls.py): when none of its URL attributes gives a URL download may fetch;
- `no_caption`: no alt text (nor title, when that fallback is on) after normalisation;
- `duplicate_in_page` / `duplicate_in_file`: the same (url, caption) was kept earlier on this page / on an
  earlier page of this file (the first occurrence is kept).

uid: the first 128 bits of sha256(url, caption, input file key), in hex (DataComp's uid format). Within a
file (url, caption) is unique after the duplicate rules, and two files have different keys, so no two rows
of one extract share a uid; the same pair found in two files is two rows (the dedup stage's duplicate_url
rule keeps one of them). The key is the file's path from `crawl-data/` on (the same wherever a copy of
Common Crawl is read from), or its whole path.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import schemas
from curate.extract import fast, urls
from curate.extract.config import ExtractConfig
from curate.extract.page import Page

PAIRS = "extract"
REJECTS = "extract_rejects"
PAIRS_SCHEMA = schemas.load(PAIRS)
REJECTS_SCHEMA = schemas.load(REJECTS)
COUNTERS = ("files", "records", "records_bad", "pages", "pages_opted_out", "pages_truncated",
            "pages_decoded_fallback", "images", "with_alt", "kept", "files_damaged")
BATCH_IMAGES = 50_000  # images held before their rows are computed column-wise (bounds a task's memory)
_NULL = pa.scalar(None, pa.string())


class FileRows:
    """Accumulates the pages of one input file and turns them into rows, a batch of pages at a time."""

    def __init__(self, config: ExtractConfig, file_key: str, crawl: str | None) -> None:
        self.config = config
        self.salt = ("\x00" + file_key).encode()
        self.crawl = crawl
        self.source = config.source if config.source is not None else crawl
        self.opt_out = frozenset(config.opt_out_directives)
        self.seen: dict[bytes, int] = {}  # (url, caption) digest kept in this file -> its page number
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.counts["files"] = 1
        self.reasons: dict[str, int] = {}
        self.pair_batches: list[pa.Table] = []
        self.reject_batches: list[pa.Table] = []
        self._clear()

    def _clear(self) -> None:
        self.page_no0 = self.counts["pages"]  # the file-wide number of this batch's first page
        self.pages: list[tuple] = []  # (url, base, opt_out, robots, record_id)
        self.page_start: list[int] = []  # index of each page's first image
        self.images: list[tuple] = []  # ImageRef-shaped tuples
        self.image_page: list[int] = []  # batch page index of each image

    def add(self, page: Page) -> None:
        opt_out = not self.opt_out.isdisjoint(page.robots)
        self.counts["pages_opted_out"] += opt_out
        k = len(self.pages)
        self.pages.append((page.url, urls.page_base(page.url, page.base_href), opt_out,
                           ",".join(sorted(page.robots)) or None, page.record_id))
        self.page_start.append(len(self.images))
        self.images.extend(page.images)
        self.image_page.extend([k] * len(page.images))
        self.counts["pages"] += 1
        if len(self.images) >= BATCH_IMAGES:
            self.flush()

    def stats(self) -> dict:
        self.flush()
        return {**self.counts, "rejected": dict(sorted(self.reasons.items())),
                "rejected_total": sum(self.reasons.values())}

    def tables(self) -> tuple[pa.Table, pa.Table]:
        """(pairs, rejects), in the order the pages and their images came."""
        self.flush()
        return (pa.concat_tables([PAIRS_SCHEMA.empty_table(), *self.pair_batches]).combine_chunks(),
                pa.concat_tables([REJECTS_SCHEMA.empty_table(), *self.reject_batches]).combine_chunks())

    def flush(self) -> None:
        """Turn the pages held so far into rows."""
        if self.images:
            self._rows()
        self._clear()

    def _rows(self) -> None:
        c = self.config
        n = len(self.images)
        cands, alts, titles, widths, heights = zip(*self.images, strict=True)
        page_of = np.array(self.image_page, np.int32)
        pos = np.arange(n, dtype=np.int64) - np.array(self.page_start, np.int64)[page_of]
        url, reason, attr, raw_url = self._urls(cands, page_of)
        alt = fast.normalise(pa.array(alts, pa.string()), c.max_caption_chars)
        has_alt = pc.is_valid(alt)
        caption, source, raw_caption = alt, pc.if_else(has_alt, "alt", _NULL), pa.array(alts, pa.string())
        if c.title_fallback and any(titles):
            title = fast.normalise(pa.array(titles, pa.string()), c.max_caption_chars)
            use = pc.and_(pc.invert(has_alt), pc.is_valid(title))
            caption = pc.if_else(use, title, caption)
            source = pc.if_else(use, "title", source)
            raw_caption = pc.if_else(use, pa.array(titles, pa.string()), raw_caption)
        self.counts["with_alt"] += pc.sum(has_alt.cast(pa.int64())).as_py() or 0
        self.counts["images"] += n
        missing = pc.is_null(caption) if c.require_caption else pa.array(np.zeros(n, bool))
        why = pc.case_when(pc.make_struct(pa.array(pos >= c.max_images_per_page), pc.is_null(url), missing),
                           "too_many_images", reason, "no_caption")
        keep, uids, why = self._dedup(url, caption, page_of, why)
        self._pairs(keep, uids, url, caption, raw_caption, source, attr, widths, heights, page_of)
        self._rejects(why, url, raw_url, attr, caption, page_of)

    def _urls(self, cands: tuple, page_of: np.ndarray) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
        """(url, reason, attribute, raw) per image: its first candidate that resolves, else its first one."""
        bases = [p[1] for p in self.pages]
        if all(len(x) == 1 for x in cands):  # WAT: one URL per image
            attr = [x[0][0] for x in cands]
            raw = [urls.srcset_best(x[0][1]) if x[0][0].endswith("srcset") else x[0][1] for x in cands]
            url, reason = fast.resolve(pa.array(raw, pa.string()), page_of, bases, self.config.max_url_chars)
            return url, reason, pa.array(attr, pa.string()), pa.array(raw, pa.string())
        flat = [(i, a, urls.srcset_best(v) if a.endswith("srcset") else v)
                for i, x in enumerate(cands) for a, v in x]
        owner = np.array([f[0] for f in flat], np.int64)
        url_c, reason_c = fast.resolve(pa.array([f[2] for f in flat], pa.string()), page_of[owner] if len(flat)
                                       else page_of[:0], bases, self.config.max_url_chars)
        url_c, reason_c = url_c.to_pylist(), reason_c.to_pylist()
        out: list[list] = [[None, "no_url", None, None] for _ in cands]
        for j, (i, a, v) in enumerate(flat):
            slot = out[i]
            if slot[0] is not None:
                continue
            if url_c[j] is not None:
                out[i] = [url_c[j], None, a, v]
            elif slot[2] is None:
                out[i] = [None, reason_c[j], a, v]
        cols = list(zip(*out, strict=True))
        return tuple(pa.array(col, pa.string()) for col in cols)  # type: ignore[return-value]

    def _dedup(self, url: pa.Array, caption: pa.Array, page_of: np.ndarray, why: pa.Array
               ) -> tuple[np.ndarray, list[str], pa.Array]:
        """(kept image indices, their uids, why): the images still without a reason keep the first of each
        (url, caption); later ones get duplicate_in_page or duplicate_in_file."""
        cand = np.flatnonzero(pc.is_null(why).to_numpy(zero_copy_only=False))
        keys = pc.binary_join_element_wise(url.take(cand), pc.fill_null(caption.take(cand), ""), "\x00")
        seen, salt, sha256 = self.seen, self.salt, hashlib.sha256
        keep, uids, dups, dup_why = [], [], [], []
        pages = (page_of[cand] + self.page_no0).tolist()
        # in the task extracting one input file: one batch of at most BATCH_IMAGES images, never the pool
        for j, key, page in zip(cand.tolist(), keys.cast(pa.binary()).to_pylist(), pages, strict=True):
            digest = sha256(key + salt).digest()[:16]
            earlier = seen.get(digest)
            if earlier is None:
                seen[digest] = page
                keep.append(j)
                uids.append(digest.hex())
            else:
                dups.append(j)
                dup_why.append("duplicate_in_page" if earlier == page else "duplicate_in_file")
        if dups:
            mask = np.zeros(len(why), bool)
            mask[dups] = True
            why = pc.replace_with_mask(why, pa.array(mask), pa.array(dup_why, pa.string()))
        return np.array(keep, np.int64), uids, why

    def _pairs(self, keep: np.ndarray, uids: list[str], url: pa.Array, caption: pa.Array, raw_caption: pa.Array,
               source: pa.Array, attr: pa.Array, widths: tuple, heights: tuple, page_of: np.ndarray) -> None:
        idx = pa.array(keep, pa.int64())
        pages = self._page_columns(page_of[keep])
        n = len(keep)
        self.counts["kept"] += n
        cols = {"uid": pa.array(uids, pa.string()), "url": url.take(idx), "caption": caption.take(idx),
                "caption_raw": pc.utf8_slice_codeunits(raw_caption.take(idx), 0, self.config.max_raw_caption_chars),
                "caption_source": source.take(idx), "url_attr": attr.take(idx),
                "width": _ints(widths, idx), "height": _ints(heights, idx),
                "page_url": pages[0], "opt_out": pages[2], "robots": pages[3],
                "crawl": pa.array([self.crawl] * n, pa.string()), "source": pa.array([self.source] * n, pa.string()),
                "record_id": pages[4]}
        self.pair_batches.append(pa.Table.from_pydict(cols, schema=PAIRS_SCHEMA))

    def _rejects(self, why: pa.Array, url: pa.Array, raw_url: pa.Array, attr: pa.Array, caption: pa.Array,
                 page_of: np.ndarray) -> None:
        rows = np.flatnonzero(pc.is_valid(why).to_numpy(zero_copy_only=False))
        idx = pa.array(rows, pa.int64())
        reasons = why.take(idx)
        for value, count in zip(*np.unique(np.array(reasons.to_pylist(), dtype=object).astype(str),
                                           return_counts=True), strict=True):
            self.reasons[str(value)] = self.reasons.get(str(value), 0) + int(count)
        pages = self._page_columns(page_of[rows])
        cols = {"reason": reasons, "page_url": pages[0], "url": url.take(idx),
                "url_raw": pc.utf8_slice_codeunits(raw_url.take(idx), 0, self.config.max_url_chars),
                "url_attr": attr.take(idx), "caption": caption.take(idx), "record_id": pages[4]}
        self.reject_batches.append(pa.Table.from_pydict(cols, schema=REJECTS_SCHEMA))

    def _page_columns(self, page_of: np.ndarray) -> list[pa.Array]:
        """The page-level columns (url, -, opt_out, robots, record_id) for rows on pages `page_of`."""
        url, _, opt_out, robots, record = zip(*self.pages, strict=True)
        idx = pa.array(page_of, pa.int32())
        return [pa.array(url, pa.string()).take(idx), None, pa.array(opt_out, pa.bool_()).take(idx),
                pa.array(robots, pa.string()).take(idx), pa.array(record, pa.string()).take(idx)]


def _ints(values: tuple, idx: pa.Array) -> pa.Array:
    """`values` (whole pixels or None) at `idx`, as int32; WAT files have none, so that case is free."""
    return pa.array(values, pa.int32()).take(idx) if any(values) else pa.nulls(len(idx), pa.int32())
