"""The descriptions every shard stage writes: README.md (dataset card), croissant.json, shardindex.json."""

import json

import yaml

from curate.export.card import size_category


def _header(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_card_header_and_body_come_from_the_runs_records(shard_run):
    text = (shard_run / "shard" / "README.md").read_text()
    head = _header(text)
    assert head["license"] == "other" and "TODO" in text.split("license:")[0]  # left for the user to set
    assert head["size_categories"] == ["n<1K"] and "zero-shot-image-classification" in head["task_categories"]
    assert head["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "*.tar"}]}]
    # funnel: every stage that ran, the shard stage's counts; the policy with its threshold; models and revisions
    for stage in ("download", "dedup", "score", "select"):
        assert f"| {stage} |" in text
    assert "| shard | 60 | 60 |" in text
    assert "Policy `datacomp`" in text and "| clip_score | column | `clip_similarity` |" in text
    assert "| threshold | 0.3 |" in text
    assert "sha256:" + "ab" * 32 in text and "lid.176.ftz" in text
    assert "| unique_samples | 60 |" in text and "| histogram | 1×: 60 |" in text
    assert "## Known limits" in text


def test_descriptions_are_the_same_bytes_for_the_same_run_anywhere(tmp_path, make_shard_run, shard_run):
    other = make_shard_run(tmp_path)
    for name in ("README.md", "croissant.json", "shardindex.json"):
        data = (other / "shard" / name).read_bytes()
        assert data == (shard_run / "shard" / name).read_bytes(), name
        assert str(tmp_path).encode() not in data and str(shard_run).encode() not in data  # relative paths only


def test_streamed_plan_is_described_and_indexed_once_per_stored_sample(tmp_path, make_shard_run):
    run = make_shard_run(tmp_path, passes=2, repetition="streamed")
    text = (run / "shard" / "README.md").read_text()
    assert "Streamed repetition plan" in text and "| samples_seen | 120 |" in text
    index = json.loads((run / "shard" / "shardindex.json").read_text())
    assert sum(s["nsamples"] for s in index["shardlist"]) == 60


def test_shard_index_follows_sizes_json(shard_run):
    index = json.loads((shard_run / "shard" / "shardindex.json").read_text())
    sizes = json.loads((shard_run / "shard" / "sizes.json").read_text())
    assert index["__kind__"] == "wids-shard-index-v1" and index["wids_version"] == 1
    assert index["shardlist"] == [{"url": name, "nsamples": n} for name, n in sorted(sizes.items())]


def test_size_categories_follow_the_hubs_bins():
    assert [size_category(n) for n in (0, 999, 1000, 12_800_000, 1_400_000_000, 10 ** 13)] == \
        ["n<1K", "n<1K", "1K<n<10K", "10M<n<100M", "1B<n<10B", "n>1T"]


def test_croissant_validates_and_loads_the_manifest_records(shard_run, ref):
    import mlcroissant as mlc

    ds = mlc.Dataset(str(shard_run / "shard" / "croissant.json"))  # validation: raises on an error
    assert not ds.metadata.ctx.issues.errors
    records = list(ds.records("samples"))
    text = {k: [r[f"samples/{k}"].decode() for r in records] for k in ("uid", "key", "caption")}
    assert text["uid"] == ref.uids and text["key"] == ref.keys and text["caption"] == ref.captions
    doc = json.loads((shard_run / "shard" / "croissant.json").read_text())
    assert {d["includes"] for d in doc["distribution"]} == {"*.tar", "manifest/*.parquet"}


def test_a_plan_only_shard_folder_is_described_without_tars(tmp_path, make_shard_run):
    import mlcroissant as mlc

    run = make_shard_run(tmp_path, write_tars=False)
    out = run / "shard"
    assert not list(out.glob("*.tar")) and not (out / "shardindex.json").exists()
    assert "configs" not in _header((out / "README.md").read_text())
    doc = json.loads((out / "croissant.json").read_text())
    assert [d["includes"] for d in doc["distribution"]] == ["manifest/*.parquet"]
    assert len(list(mlc.Dataset(str(out / "croissant.json")).records("samples"))) == 60
