"""The whole pipeline on the bundled sample pool: real Spark, real Ray, a real loopback server.
Stage decisions are checked against the pool's planted, labelled defects."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from curate.audit import audit
from curate.cli import main
from curate.demo.run import demo_config, run_demo
from curate.io import dataset
from curate.score.run import run_score
from curate.select.run import run_select
from curate.shard.run import run_shard

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.ray]


@pytest.fixture(scope="module")
def run(demo_run) -> Path:
    """The session's demo run (tests/integration/conftest.py)."""
    return demo_run


def _labels(run: Path):
    return pq.read_table(run / "pool" / "labels.parquet").to_pandas().set_index("uid")


def _manifest_parts(run: Path) -> list[Path]:
    parts = sorted((run / "shard" / "manifest").glob("part-*.parquet"))
    assert parts, f"no manifest parts in {run}/shard/manifest"
    return parts


def _manifest(run: Path, columns: list[str] | None = None) -> pa.Table:
    """The whole manifest: its parts (one per block of the planned stream) in order."""
    return pa.concat_tables([pq.read_table(p, columns=columns) for p in _manifest_parts(run)])


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_audit_identity_holds(run):
    result = audit(str(run))
    labels = _labels(run)
    assert result.ok, result.problems
    assert result.input_rows == len(labels)
    assert result.kept + sum(result.rejected.values()) == len(labels)
    assert result.kept > 0


def test_download_statuses_match_planted_labels(run):
    labels = _labels(run)
    samples = pq.read_table(run / "download" / "samples").to_pandas().set_index("uid")
    joined = labels.join(samples[["status", "error"]])
    mismatch = joined[joined.status != joined.expected_status]
    assert mismatch.empty, mismatch[["defect", "expected_status", "status", "error"]].head()
    assert (joined[joined.defect == "http_404"].error.str.contains("404")).all()


def test_every_duplicate_group_keeps_exactly_one(run):
    labels = _labels(run)
    dedup = pq.read_table(run / "dedup" / "decisions").to_pandas().set_index("uid")
    groups = labels[labels.group.notna()].join(dedup[["reason"]])
    for gid, rows in groups.groupby("group"):
        assert rows.reason.isna().sum() == 1, (gid, rows[["defect", "reason"]])
    planted = labels[labels.defect.isin(["duplicate_image", "duplicate_url"])].join(dedup[["reason"]])
    # a planted copy may be the survivor of its group (smallest uid wins), never a third outcome; an image
    # copy whose caption happens to equal its original's is a duplicate_pair
    assert set(planted.reason.dropna()) <= {"duplicate_image", "duplicate_url", "duplicate_pair"}
    near = labels[labels.defect == "near_duplicate"].join(dedup[["reason"]])
    assert len(near) > 0 and set(near.reason.dropna()) == {"near_duplicate"}
    clean_singletons = labels[(labels.defect == "clean") & labels.group.isna()].join(dedup[["reason"]])
    assert clean_singletons.reason.isna().all()


def test_safety_eval_and_placeholder_rows_are_rejected_as_planted(run):
    from curate.demo.defects import EXPECTED_DEDUP

    labels = _labels(run)
    dedup = pq.read_table(run / "dedup" / "decisions").to_pandas().set_index("uid")
    for defect in ("placeholder", "eval_contaminated", "hash_listed"):
        rows = labels[labels.defect == defect].join(dedup[["reason"]])
        assert len(rows) > 0, defect
        assert (rows.reason == EXPECTED_DEDUP[defect]).all(), (defect, rows.reason.value_counts().to_dict())
    stats = json.loads((run / "dedup" / "_stats.json").read_text())
    assert stats["safety_hash_list_removed"] == (labels.defect == "hash_listed").sum()
    listed = set(labels[labels.defect == "hash_listed"].index)
    manifest = _manifest(run, ["uid"]).column("uid").to_pylist()
    assert listed.isdisjoint(manifest)  # never written to the training shards


def test_select_decisions_match_planted_labels(run):
    labels = _labels(run)
    dec = pq.read_table(run / "select" / "decisions").to_pandas().set_index("uid")
    joined = labels.join(dec, how="inner")
    expect = {"non_english": "not_english", "short_caption": "too_few_words", "small": "image_too_small",
              "aspect": "aspect_ratio", "mismatched": "low_clip_score"}
    for defect, reason in expect.items():
        rows = joined[joined.defect == defect]
        assert len(rows) > 0, defect
        assert (rows.reason == reason).all(), (defect, rows.reason.value_counts().to_dict())
    clean = joined[joined.defect == "clean"]
    assert clean.kept.mean() > 0.97, clean.reason.value_counts().to_dict()


def test_tiny_model_separates_matched_from_mismatched(run):
    labels = _labels(run)
    scores = pq.read_table(run / "score" / "scores").to_pandas().set_index("uid")
    joined = labels.join(scores[["clip_similarity"]], how="inner")
    matched = joined[joined.defect == "clean"].clip_similarity
    mismatched = joined[joined.defect == "mismatched"].clip_similarity
    assert matched.median() - mismatched.median() > 0.4
    assert (matched.quantile(0.05)) > mismatched.quantile(0.95)


def test_embeddings_are_float16_unit_vectors(run):
    table = pq.read_table(run / "score" / "embeddings")
    for col in ("image_embedding", "text_embedding"):
        assert table.schema.field(col).type.value_type == pa.float16()
    import numpy as np

    emb = np.array(table.column("image_embedding")[0].as_py(), dtype=np.float32)
    assert abs(float(np.linalg.norm(emb)) - 1.0) < 0.01


def test_shards_read_back_with_webdataset(run):
    shard_dir = run / "shard"
    sizes = json.loads((shard_dir / "sizes.json").read_text())
    manifest = _manifest(run).to_pandas()
    tars = sorted(str(p) for p in shard_dir.glob("*.tar"))
    assert sorted(Path(t).name for t in tars) == sorted(sizes)
    seen = []
    for sample in wds.WebDataset(tars, shardshuffle=False).decode("pil"):
        img, caption, meta = sample["jpg"], sample["txt"], sample["json"]
        assert img.size[0] > 0 and caption
        seen.append((sample["__key__"], meta["uid"]))
    assert len(seen) == sum(sizes.values()) == len(manifest)
    assert len({k for k, _ in seen}) == len(seen)  # keys unique across the dataset
    assert sorted(seen) == sorted(zip(manifest.key, manifest.uid, strict=True))


def test_rerun_of_finished_run_is_a_no_op(run):
    before = _digest(run)
    result = run_demo(str(run))
    assert result.ok
    assert _digest(run) == before


def _rerun(stage: str, run: Path) -> None:
    config = demo_config(str(run / "pool"), 0)
    if stage == "score":
        from curate.engines.ray import RayEngine

        with RayEngine() as engine:
            run_score(engine, str(run), config.score)
    elif stage == "select":
        run_select(str(run), config.select)
    else:  # on Spark, as the pipeline shards
        from curate.engines.spark import SparkEngine

        with SparkEngine() as engine:
            run_shard(str(run), config.shard, engine)


@pytest.mark.parametrize("stage", ["score", "select", "shard"])
def test_interrupted_stage_reruns_to_identical_bytes(run, tmp_path, stage):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    before = _digest(copy / stage)
    # simulate a kill: the marker is gone, a temp file is left behind, and the outputs are partial
    (copy / stage / "_SUCCESS").unlink()
    (copy / stage / "_tmp.deadbeef.leftover").write_bytes(b"x")
    if stage == "score":  # killed after shard 1's embeddings, before its scores (written last)
        (copy / stage / "scores" / "00001.parquet").unlink()
    else:  # stages that redo everything: an output from a different run is in the way
        victim = sorted(p for p in (copy / stage).rglob("*") if p.is_file() and p.suffix in (".parquet", ".tar"))[0]
        victim.write_bytes(victim.read_bytes()[:100])
    _rerun(stage, copy)
    assert _digest(copy / stage) == before


def test_audit_cli_json_and_failure(run, tmp_path, capsys):
    assert main(["audit", str(run), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"input_rows", "kept", "rejected"} <= set(summary)
    assert summary["input_rows"] == summary["kept"] + sum(summary["rejected"].values())
    # break the identity: drop one kept sample (every row of its uid) from the manifest
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    parts = _manifest_parts(copy)
    gone = pq.read_table(parts[0], columns=["uid"]).column("uid")[0]
    for part in parts:
        man = pq.read_table(part)
        dataset.write_part(man.filter(pc.not_equal(man.column("uid"), gone)), str(part))  # with its sidecar
    assert main(["audit", str(copy)]) == 1
    assert "neither kept nor rejected" in capsys.readouterr().err


def test_the_demo_runs_croissant_json_validates_and_loads_the_manifest(run):
    """The card's Croissant metadata of the demo run (issue 19): mlcroissant validates it and its `samples`
    record set yields the manifest's uids, keys and captions, in the manifest's order."""
    import mlcroissant as mlc

    ds = mlc.Dataset(str(run / "shard" / "croissant.json"))
    assert not ds.metadata.ctx.issues.errors
    records = list(ds.records("samples"))
    man = _manifest(run, ["uid", "key", "caption"])
    for field in ("uid", "key", "caption"):
        got = [r[f"samples/{field}"] for r in records]
        got = [g.decode() if isinstance(g, bytes) else g for g in got]
        assert got == man.column(field).to_pylist(), field
