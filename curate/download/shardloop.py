"""One shard's rows through curate's own fetch: img2dataset's Downloader with its shard loop replaced.

img2dataset 1.47 fetches inside `download_shard` with a module function that calls urllib's global `urlopen`;
it has no argument for a fetch function, and its development branch passes `context=` to `urlopen`, which
makes CPython build a fresh opener that ignores an installed one. So `CuratedDownloader` keeps img2dataset's
constructor, resizer and sample writer (its stable parts) and runs the shard loop itself, where every request
goes through `curate.download.fetch` and nothing calls `urlopen`.

Per row, in this order (the first that applies gives the row its status):
  opted_out (no request)   the input's `opt_out` column (`curate extract`: the page said noai/noimageai)
  denylisted (no request)  the uid, canonical URL or domain is on a `--denylist`
  host_gave_up, robots_disallowed, tdm_reserved, opted_out (X-Robots-Tag before the body), fetch failures:
                           curate.download.fetch
  safety_hash_list         the body's md5, sha1, sha256, pHash or PDQ hash is on a `--hash-list`: nothing of it
                           is written but its sha256 and the status
  pixel cap, face blurring, img2dataset's resizer: too_large, decode_error or not_image, else success.
The writer gets samples in the order they finish; `curate.download.worker.normalise` sorts them.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from dataclasses import dataclass, field
from multiprocessing.pool import ThreadPool
from threading import Semaphore

import pyarrow as pa
from img2dataset.downloader import Downloader, compute_key

from curate.download import denylist, fetch, safety
from curate.download.inputs import FACES, OPT_OUT
from curate.download.status import SUCCESS, classify
from curate.io import fs
from curate.repeats import Repeats

log = logging.getLogger(__name__)

_META_INT = ("width", "height", "original_width", "original_height")


@dataclass(frozen=True)
class RunChecks:
    """What every worker process needs to check a run's rows (picklable; lists are read in the workers)."""

    fetch: fetch.FetchSettings = field(default_factory=fetch.FetchSettings)
    safety: safety.SafetyConfig = field(default_factory=safety.SafetyConfig)
    denylists: tuple[str, ...] = ()
    blur_faces: bool = False


class CuratedDownloader(Downloader):
    """img2dataset's Downloader whose shard loop fetches with curate's fetch and checks (see the module)."""

    def __init__(self, checks: RunChecks, **kwargs) -> None:
        super().__init__(**kwargs)
        self.checks = checks

    def _schema(self) -> pa.Schema:
        strings = [*self.column_list, "key", "status", "error_message"]
        fields = [pa.field(c, pa.string()) for c in strings] + [pa.field(c, pa.int32()) for c in _META_INT]
        return pa.schema([*fields, pa.field(self.compute_hash, pa.string())])

    def download_shard(self, row) -> None:
        """Fetch the rows of `row` = (shard id, table of the urls columns) into the raw tar and parquet."""
        shard_id, inputs = row
        fetcher = fetch.for_run(self.checks.fetch)
        deny = denylist.for_run(self.checks.denylists)
        listed = safety.for_run(self.checks.safety)
        rows = inputs.to_pylist()
        digits = math.ceil(math.log10(self.number_sample_per_shard))
        writer = self.sample_writer_class(shard_id, self.output_folder, self.save_caption, self.oom_shard_count,
                                          self._schema(), self.encode_format)
        ready = Semaphore(self.thread_count * 2)  # at most this many fetched samples wait for the writer
        repeats = Repeats(log, f"shard {shard_id}: sample")  # one traceback per kind of failure, then a count

        def queued():
            for i in range(len(rows)):
                ready.acquire()
                yield i

        def one(i: int) -> tuple[int, bytes | None, dict]:
            key = compute_key(i, shard_id, digits, self.oom_shard_count)
            return (i, *self._sample(rows[i], key, fetcher, deny, listed, repeats))

        try:
            with ThreadPool(self.thread_count) as pool:
                for i, img, meta in pool.imap_unordered(one, queued()):
                    writer.write(img, meta["key"], rows[i].get("caption"), meta)
                    ready.release()
        finally:
            repeats.flush()
            writer.close()

    def _sample(self, row: dict, key: str, fetcher: fetch.Fetcher, deny: denylist.Denylist | None,
                listed: safety.SafetyCheck | None, repeats: Repeats) -> tuple[bytes | None, dict]:
        meta = {c: row.get(c) for c in self.column_list}
        meta.update({"key": key, "status": None, "error_message": None, **dict.fromkeys(_META_INT),
                     self.compute_hash: None})
        try:
            img = self._fetch_one(row, meta, fetcher, deny, listed)
        except OSError as exc:
            if exc.errno in fs.STORAGE_ERRNOS:  # our own storage, not the sample: the shard stops with that one
                raise  # error (the engine retries it, then the user sees it) instead of marking every sample
            repeats.failed(key, exc)
            meta["status"], meta["error_message"], img = "download_error", f"{type(exc).__name__}: {exc}", None
        except Exception as exc:  # noqa: BLE001 - a sample that breaks the loop is a row with a status
            repeats.failed(key, exc)
            meta["status"], meta["error_message"], img = "download_error", f"{type(exc).__name__}: {exc}", None
        return img, meta

    def _fetch_one(self, row: dict, meta: dict, fetcher: fetch.Fetcher, deny: denylist.Denylist | None,
                   listed: safety.SafetyCheck | None) -> bytes | None:
        url = row.get("url") or ""
        if row.get(OPT_OUT):
            meta["status"] = "opted_out"
            meta["error_message"] = "the page that shows the image opted out (noai or noimageai, from curate extract)"
            return None
        why = deny.reason(row["uid"], url) if deny is not None else None
        if why:
            meta["status"], meta["error_message"] = "denylisted", why
            return None
        got = fetcher.fetch(url)
        if got.status != SUCCESS:
            meta["status"], meta["error_message"] = got.status, got.error
            return None
        body = got.body or b""
        if listed is not None:
            digest, why = listed.match(body)
        else:
            digest, why = hashlib.new(self.compute_hash, body).hexdigest(), None
        meta[self.compute_hash] = digest
        if why:  # nothing of the body goes further: not the writer, not a decoder
            meta["status"], meta["error_message"] = "safety_hash_list", why
            return None
        boxes = row.get(FACES) if self.checks.blur_faces else None
        img, width, height, original_width, original_height, error = self.resizer(io.BytesIO(body), boxes)
        if error is not None:
            meta[self.compute_hash] = None
            meta["status"] = classify("failed_to_resize", error, got.content_type)
            meta["error_message"] = error
            return None
        meta.update({"status": SUCCESS, "width": width, "height": height, "original_width": original_width,
                     "original_height": original_height})
        return img
