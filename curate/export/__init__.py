"""Descriptions and exports of a shard run: the dataset card, Croissant metadata, the wids shard index
(written by every shard stage), and `curate export` to Hugging Face parquet and MDS."""
