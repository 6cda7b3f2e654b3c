"""The writer of a shard's raw files (`download/_raw/NNNNN.tar` and `.parquet`): img2dataset's webdataset
writer, made to fail as a user can act on when storage fails (a full disk, a quota, a read-only mount).

img2dataset's writer lets a storage error out with no file name (`[Errno 28] No space left on device`), and
its close stops at the first failure: the tar stream and pyarrow's writer stay open, and their finalizers
try the write again at exit, each printing an `Exception ignored in ...` traceback. Here every write and
close names the file it was writing, and close releases every handle even after a failure.
"""

from __future__ import annotations

import contextlib
from typing import Any

from img2dataset.writer import WebDatasetSampleWriter

from curate.io import fs


class _Named:
    """`inner`'s write and close, whose storage errors name `path` (fs.naming)."""

    def __init__(self, inner: Any, path: str) -> None:
        self.inner = inner
        self.path = path

    def write(self, *args: Any) -> Any:
        with fs.naming(self.path):
            return self.inner.write(*args)

    def close(self) -> None:
        with fs.naming(self.path):
            self.inner.close()


class RawShardWriter(WebDatasetSampleWriter):
    """img2dataset's WebDatasetSampleWriter (same files, same bytes) with named storage errors and a close
    that leaves nothing open."""

    def __init__(self, shard_id: int, output_folder: str, save_caption: bool, oom_shard_count: int,
                 schema: Any, encode_format: str) -> None:
        super().__init__(shard_id, output_folder, save_caption, oom_shard_count, schema, encode_format)
        stem = f"{output_folder}/{shard_id:0{oom_shard_count}d}"
        self.parquet = self.buffered_parquet_writer  # img2dataset's BufferedParquetWriter
        self.buffered_parquet_writer = _Named(self.parquet, f"{stem}.parquet")
        self.tarwriter = _Named(self.tarwriter, f"{stem}.tar")
        self.tar_fd = _Named(self.tar_fd, f"{stem}.tar")

    def _release_parquet(self) -> None:
        """After a failed close: pyarrow's writer marked closed (its finalizer would write the footer again)
        and its file closed, each failure ignored (the first one is being raised)."""
        writer = self.parquet.parquet_writer
        if writer is None:
            return
        self.parquet.parquet_writer = None
        with contextlib.suppress(Exception):
            writer.close()
        writer.is_open = False
        with contextlib.suppress(Exception):
            self.parquet.output_fd.close()

    def close(self) -> None:
        """Close the parquet, the tar stream and the tar file, each even when an earlier one failed; the first
        failure is raised. A closed tar stream is not written again by tarfile's finalizer."""
        first: BaseException | None = None
        for step in (self.buffered_parquet_writer.close, self._release_parquet, self.tarwriter.close,
                     self.tar_fd.close):
            try:
                step()
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first
