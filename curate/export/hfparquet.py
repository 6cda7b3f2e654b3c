"""Hugging Face parquet: one parquet file per tar, with the image in the `datasets` Image layout
(struct{bytes: binary, path: string}) and the `datasets` features in the schema metadata, so
`load_dataset("parquet", data_files=...)` gives an `Image` feature and the Hub's viewer shows the images.
Needs pyarrow only."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from curate.export.tars import samples
from curate.io import fs, sums

SUFFIX = ".parquet"
ROWS_PER_GROUP = 100  # small row groups: the Hub's viewer reads images a row group at a time
IMAGE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])
SCHEMA = pa.schema([pa.field("image", IMAGE), pa.field("uid", pa.string(), nullable=False),
                    pa.field("caption", pa.string()), pa.field("key", pa.string(), nullable=False)])
FEATURES = {"image": {"_type": "Image"}, "uid": {"dtype": "string", "_type": "Value"},
            "caption": {"dtype": "string", "_type": "Value"}, "key": {"dtype": "string", "_type": "Value"}}
# JPEGs do not compress: stored as they are; the text columns with zstd
COMPRESSION = {"image.bytes": "none", "image.path": "zstd", "uid": "zstd", "caption": "zstd", "key": "zstd"}


def schema() -> pa.Schema:
    return SCHEMA.with_metadata({"huggingface": json.dumps({"info": {"features": FEATURES}}, sort_keys=True)})


def table_of(tar: str) -> pa.Table:
    rows = list(samples(tar))
    image = pa.array([{"bytes": s.image, "path": f"{s.key}.{s.image_ext}"} for s in rows], IMAGE)
    return pa.table([image, pa.array([s.uid for s in rows], pa.string()), pa.array([s.caption for s in rows]),
                     pa.array([s.key for s in rows], pa.string())], schema=schema())


def write_shard(tar: str, out_dir: str, stem: str) -> dict:
    """`out_dir/STEM.parquet` from `tar` (temporary name, then rename); its stats."""
    table = table_of(tar)
    path = fs.join(out_dir, stem + SUFFIX)
    with sums.open_part(path) as fh:  # hashed as written: _sums/STEM.parquet.json follows (curate verify)
        pq.write_table(table, fh, row_group_size=ROWS_PER_GROUP, compression=COMPRESSION, write_page_checksum=True)
    return {"samples": table.num_rows}


def done(names: set[str]) -> set[str]:
    """Stems already written, from one listing of the output folder."""
    return {n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX) and not n.startswith(fs.TMP_PREFIX)}
