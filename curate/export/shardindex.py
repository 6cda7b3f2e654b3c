"""`shard/shardindex.json`: webdataset's `wids` shard index, so `wids.ShardListDataset` opens the shards
for random access by sample index. Written from `sizes.json` (samples per tar), never by reading tars.
wids resolves each `url` against the folder of the index, so the names stay relative."""

from __future__ import annotations

from collections.abc import Mapping

from curate.io import fs

NAME = "shardindex.json"
KIND = "wids-shard-index-v1"


def shard_index(sizes: Mapping[str, int], name: str | None = None) -> dict:
    """The index of the tars in `sizes` (tar name -> samples), in name order (the stream order)."""
    index: dict = {"__kind__": KIND, "wids_version": 1,
                   "shardlist": [{"url": tar, "nsamples": int(sizes[tar])} for tar in sorted(sizes)]}
    if name is not None:
        index["name"] = name
    return index


def write_shard_index(shard_dir: str, sizes: Mapping[str, int]) -> str:
    """Write `shard_dir/shardindex.json` (temporary name, then rename) and return its path."""
    path = fs.join(shard_dir, NAME)
    fs.write_json(path, shard_index(sizes))
    return path
