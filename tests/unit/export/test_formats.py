"""Every format read back by its own library gives the manifest's uids and captions and the tars' bytes."""

import numpy as np

from curate.export.run import ExportConfig, export_dir, run_export


def test_datasets_reads_the_shards_as_they_are(shard_run, ref, tmp_path):
    import datasets

    tars = sorted(str(p) for p in (shard_run / "shard").glob("*.tar"))
    ds = datasets.load_dataset("webdataset", data_files={"train": tars}, split="train", cache_dir=str(tmp_path / "c"))
    ds = ds.cast_column("jpg", datasets.Image(decode=False))
    assert ds["__key__"] == ref.keys and ds["txt"] == ref.captions
    assert [j["uid"] for j in ds["json"]] == ref.uids
    assert [im["bytes"] for im in ds["jpg"]] == [ref.images[k] for k in ref.keys]


def test_hf_parquet_export_loads_as_an_image_dataset(shard_run, ref, tmp_path):
    import datasets

    stats = run_export(str(shard_run), ExportConfig("hf-parquet"))
    assert stats["samples"] == stats["samples_written"] == 60 and stats["tars_written"] == 3
    files = sorted(str(p) for p in (shard_run / "export" / "hf-parquet").glob("*.parquet"))
    assert [f.rsplit("/", 1)[1] for f in files] == ["00000.parquet", "00001.parquet", "00002.parquet"]
    ds = datasets.load_dataset("parquet", data_files={"train": files}, split="train", cache_dir=str(tmp_path / "c"))
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds["uid"] == ref.uids and ds["caption"] == ref.captions and ds["key"] == ref.keys
    raw = ds.cast_column("image", datasets.Image(decode=False))
    assert [im["bytes"] for im in raw["image"]] == [ref.images[k] for k in ref.keys]
    assert ds[0]["image"].size == (32, 32)  # decodes as a PIL image
    # the folder as a Hub repository: its README.md's config names the parquet files
    folder = datasets.load_dataset(str(shard_run / "export" / "hf-parquet"), split="train",
                                   cache_dir=str(tmp_path / "c2"))
    assert folder["uid"] == ref.uids and isinstance(folder.features["image"], datasets.Image)


def test_wids_opens_the_shard_index_for_random_access(shard_run, ref, tmp_path):
    import wids

    ds = wids.ShardListDataset(str(shard_run / "shard" / "shardindex.json"), cache_dir=str(tmp_path / "wids"),
                               transformations=[])
    assert len(ds) == len(ref.uids)
    for i in np.random.default_rng(0).choice(len(ds), 12, replace=False).tolist():
        s = ds[i]
        assert s["__key__"] == ref.keys[i] and s[".txt"].getvalue().decode() == ref.captions[i]
        assert s[".jpg"].getvalue() == ref.images[ref.keys[i]]


def test_mds_export_streams_every_sample(shard_run, ref):
    from streaming import StreamingDataset

    stats = run_export(str(shard_run), ExportConfig("mds"))
    assert stats["samples_written"] == 60 and stats["mds_shards"] == 3
    ds = StreamingDataset(local=export_dir(str(shard_run), "mds"), batch_size=1, shuffle=False)
    got = [ds[i] for i in range(len(ds))]
    assert [s["uid"] for s in got] == ref.uids and [s["caption"] for s in got] == ref.captions
    assert [s["image"] for s in got] == [ref.images[k] for k in ref.keys]
