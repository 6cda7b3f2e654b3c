"""`run_select` on a run directory: every shipped policy writes uids.npy, decisions.v2 and selection.json,
and every scored sample is kept or rejected exactly once with a reason from the closed set."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from curate import schemas
from curate.cli import main as cli_main
from curate.errors import CurateError
from curate.select.policy import policy_names
from curate.select.pool import table as pool_table
from curate.select.run import SelectConfig, run_select, u8u8_to_uids, uids_to_u8u8

from .conftest import make_pool


def make_run(root, n: int = 120):
    pool = make_pool(n, seed=5)
    (root / "download" / "samples").mkdir(parents=True)
    (root / "score" / "scores").mkdir(parents=True)
    (root / "score" / "embeddings").mkdir(parents=True)
    status = ["ok" if i % 17 else "decode_error" for i in range(n)]  # scoring failures never reach select
    samples = pa.table({"uid": pool.column("uid"), "url": [f"http://x/{i}" for i in range(n)],
                        "caption": pool.column("caption"), "status": ["success"] * n, "error": pa.nulls(n, pa.string()),
                        "sha256": [f"{i:064x}" for i in range(n)], "width": pa.array([224] * n, pa.int32()),
                        "height": pa.array([224] * n, pa.int32()),
                        "original_width": pool.column("original_width").cast(pa.int32()),
                        "original_height": pool.column("original_height").cast(pa.int32()),
                        "shard": ["00000"] * n, "key": [f"{i:09d}" for i in range(n)]})
    pq.write_table(samples, root / "download" / "samples" / "00000.parquet")
    scores = pool.drop_columns(["caption", "original_width", "original_height", "image_embedding"])
    scores = scores.append_column("status", pa.array(status)).append_column("shard", pa.array(["00000"] * n))
    pq.write_table(scores.append_column("key", samples.column("key")), root / "score" / "scores" / "00000.parquet")
    emb = pool.select(["uid", "image_embedding"])
    pq.write_table(emb.append_column("text_embedding", emb.column("image_embedding")),
                   root / "score" / "embeddings" / "00000.parquet")
    for stage in ("download", "score"):
        (root / stage / "_SUCCESS").write_bytes(b"")
    return pool, set(pc.filter(pool.column("uid"), pa.array([s == "ok" for s in status])).to_pylist())


NEEDS_USER_FILES = {"datacomp-1b", "datacomp-image", "datacomp-text", "metaclip-400m", "metaclip-2.5b"}


@pytest.mark.parametrize("name", [p for p in policy_names() if p not in NEEDS_USER_FILES])
def test_every_policy_accounts_for_every_scored_sample(tmp_path, name):
    pool, scored = make_run(tmp_path)
    stats = run_select(str(tmp_path), SelectConfig(policy=name, engine="local"))
    dec = pq.read_table(tmp_path / "select" / "decisions")
    assert dec.schema.metadata[b"curate.schema"] == b"decisions.v2"
    uids = dec.column("uid").to_pylist()
    assert sorted(uids) == uids and set(uids) == scored and len(uids) == len(scored)
    kept = dec.filter(dec.column("kept"))
    rejected = dec.filter(pc.invert(dec.column("kept")))
    assert stats["kept"] + sum(stats["rejected"].values()) == stats["rows_in"] == len(scored)
    assert set(rejected.column("reason").to_pylist()) <= schemas.reasons("select")
    assert kept.column("reason").null_count == kept.num_rows and rejected.column("reason").null_count == 0
    assert (kept.column("weight").to_numpy() > 0).all() and (rejected.column("weight").to_numpy() == 0).all()
    arr = np.load(tmp_path / "select" / "uids.npy")
    assert arr.dtype == np.dtype("u8,u8") and u8u8_to_uids(arr) == kept.column("uid").to_pylist()
    selection = json.loads((tmp_path / "select" / "selection.json").read_text())
    assert selection["policy"]["name"] == name and selection["kept"] == kept.num_rows
    assert sum(s["rejected"] for s in selection["steps"]) == rejected.num_rows


def test_target_size_from_the_cli_and_rerun_is_a_no_op(tmp_path, capsys):
    make_run(tmp_path)
    assert cli_main(["select", str(tmp_path), "--policy", "dfn", "--target-size", "9", "--engine", "local"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kept"] == 9
    selection = json.loads((tmp_path / "select" / "selection.json").read_text())
    assert selection["steps"][0]["resolved"]["target_size"] == 9 and "cut_uid" in selection["steps"][0]["resolved"]
    before = (tmp_path / "select" / "decisions" / "00000.parquet").read_bytes()
    assert cli_main(["select", str(tmp_path), "--policy", "dfn", "--target-size", "9"]) == 0
    assert (tmp_path / "select" / "decisions" / "00000.parquet").read_bytes() == before


def test_legacy_flags_and_image_policy_file(tmp_path):
    pool, scored = make_run(tmp_path)
    emb = np.array(pool.column("image_embedding").to_pylist(), dtype=np.float32)
    ref, centroids = tmp_path / "ref.npy", tmp_path / "centroids.npy"
    np.save(ref, emb[:2])
    np.save(centroids, emb[[3, 10, 20, 40]] / np.linalg.norm(emb[[3, 10, 20, 40]], axis=1, keepdims=True))
    policy = tmp_path / "one-b.yaml"
    policy.write_text(f"name: tiny-1b\nsteps:\n  - {{step: clip_score, column: clip_vit_l_14, fraction: 0.3}}\n"
                      f"  - {{step: datacomp_image, reference: {ref}, centroids: {centroids}}}\n")
    run_select(str(tmp_path), SelectConfig(policy=str(policy), engine="local"))
    # worked out here, as DataComp's code does it: the L/14 threshold at index int(n * 0.3) of the scored
    # pool's descending scores; English captions of more than one fasttext word and five characters; the
    # nearest centroid (argmax of the dot product with the normalised embedding) among the reference's
    rows = [r for r in pool.to_pylist() if r["uid"] in scored]
    score = np.sort(np.array([r["clip_vit_l_14"] for r in rows], dtype=np.float64))[::-1]
    threshold = score[int(len(rows) * 0.3)]
    c = np.load(centroids)
    targets = set(np.argmax(np.load(ref) @ c.T, axis=1).tolist())
    import fasttext

    want = set()
    for r in rows:
        x = np.array(r["image_embedding"], dtype=np.float32)
        near = int(np.argmax((x / np.linalg.norm(x)) @ c.T))
        if (r["clip_vit_l_14"] >= threshold and r["language"] == "en" and len(fasttext.tokenize(r["caption"])) > 1
                and len(r["caption"]) > 5 and near in targets):
            want.add(r["uid"])
    dec = pq.read_table(tmp_path / "select" / "decisions")
    assert set(dec.filter(dec.column("kept")).column("uid").to_pylist()) == want and want
    with pytest.raises(CurateError, match="no policy"):
        SelectConfig(policy="missing").resolve_policy()


def _with_samples_version(root, version: int):
    """make_run's run, its `source` where a download writes it: in samples.v3, or nowhere (samples.v2)."""
    pool, _ = make_run(root)
    scores = root / "score" / "scores" / "00000.parquet"
    pq.write_table(pq.read_table(scores).drop_columns(["source"]), scores)
    path = root / "download" / "samples" / "00000.parquet"
    samples = pq.read_table(path)
    for name in ("input_width", "input_height", "input_sha256", "similarity"):
        samples = samples.append_column(name, pa.nulls(samples.num_rows, schemas.load("samples", 2).field(name).type))
    if version >= 3:
        samples = samples.append_column("source", pool.column("source"))
    pq.write_table(schemas.conform(samples, "samples", version), path)
    return pool


def test_pool_takes_source_from_samples_v3_and_a_v2_run_has_none(tmp_path):
    mix = tmp_path / "mix.yaml"
    mix.write_text("name: mix\nsteps:\n  - {step: mix, shares: {a: 0.8, b: 0.2}}\n")
    pool = _with_samples_version(tmp_path / "v3", 3)
    table = pool_table(str(tmp_path / "v3"))
    source = dict(zip(pool.column("uid").to_pylist(), pool.column("source").to_pylist(), strict=True))
    assert table.column("source").to_pylist() == [source[u] for u in table.column("uid").to_pylist()]
    run_select(str(tmp_path / "v3"), SelectConfig(policy=str(mix), engine="local"))
    kept = pq.read_table(tmp_path / "v3" / "select" / "decisions").filter(pc.field("kept"))
    weights = np.array(kept.column("weight").to_pylist())
    b = np.array([source[u] == "b" for u in kept.column("uid").to_pylist()])
    assert weights[b].sum() / weights.sum() == pytest.approx(0.2)

    _with_samples_version(tmp_path / "v2", 2)
    assert "source" not in pool_table(str(tmp_path / "v2")).column_names
    with pytest.raises(CurateError, match="no such column.*--source-col"):
        run_select(str(tmp_path / "v2"), SelectConfig(policy=str(mix), engine="local"))


def test_u8u8_vectorised_matches_datacomp_arithmetic():
    rng = np.random.default_rng(0)
    uids = [f"{int(rng.integers(0, 2**63)):016x}{int(rng.integers(0, 2**63)):016X}" for _ in range(50)]
    arr = uids_to_u8u8(uids)
    expect = sorted((int(u, 16) // 2**64, int(u, 16) % 2**64) for u in uids)
    assert [tuple(map(int, x)) for x in arr.tolist()] == expect
    with pytest.raises(CurateError, match="32 hex"):
        uids_to_u8u8(["xyz"])


def test_u8u8_from_arrow_reads_the_value_buffer_in_chunks(monkeypatch):
    """An Arrow string column (also a slice, whose buffers start before its first value) converts to the same
    array as the Python strings, across several conversion chunks; a wrong length or digit is refused."""
    import curate.select.run as select_run

    monkeypatch.setattr(select_run, "_CHUNK", 7)
    rng = np.random.default_rng(1)
    uids = [f"{int(rng.integers(0, 2**63)):016x}{int(rng.integers(0, 2**63)):016x}" for _ in range(40)]
    expect = sorted((int(u, 16) // 2**64, int(u, 16) % 2**64) for u in uids[5:])
    for given in (pa.array(uids).slice(5), pa.chunked_array([uids[5:20], uids[20:]])):
        assert [tuple(map(int, x)) for x in uids_to_u8u8(given).tolist()] == expect
    for bad in (["0" * 31], ["0" * 33], ["g" * 32]):
        with pytest.raises(CurateError, match="32 hex"):
            uids_to_u8u8(pa.array(bad))


def test_a_finished_select_on_spark_is_a_no_op_without_a_session(tmp_path, capsys):
    """Rerunning a finished select with --engine spark reports its stats and starts no JVM: the master
    named here does not exist, so starting a session would fail."""
    make_run(tmp_path)
    first = run_select(str(tmp_path), SelectConfig(policy="dfn", engine="local"))
    capsys.readouterr()
    assert cli_main(["select", str(tmp_path), "--policy", "dfn", "--engine", "spark",
                     "--master", "spark://127.0.0.1:1"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == json.loads(json.dumps(first))


def _assert_engine_writes_the_in_process_bytes(tmp_path, engine, policy: str, target: int | None) -> None:
    """select on `engine` and in this process: the same decisions parts, uids.npy, _stats.json and
    selection.json (but for the engine's name), and no work folder left behind."""
    name = engine.name
    for run in ("local", name):
        make_run(tmp_path / run)
    run_select(str(tmp_path / "local"), SelectConfig(policy=policy, target_size=target, engine="local"))
    run_select(str(tmp_path / name), SelectConfig(policy=policy, target_size=target), engine)
    for file in ("decisions/00000.parquet", "uids.npy", "_stats.json"):
        local, other = (tmp_path / r / "select" / file for r in ("local", name))
        assert other.read_bytes() == local.read_bytes(), file
    a, b = (json.loads((tmp_path / r / "select" / "selection.json").read_text()) for r in ("local", name))
    assert a["inputs"].pop("engine") == "local" and b["inputs"].pop("engine") == name and a == b
    assert not (tmp_path / name / "select" / "_work").exists()


@pytest.mark.spark
@pytest.mark.parametrize("policy", ["dfn", "datacomp-clip-score", "semdedup"])
def test_spark_writes_the_in_process_bytes(spark_engine, tmp_path, policy):
    """The pool is built, decided and written by Spark's workers (the in-process engine is kept for small
    runs because of this test)."""
    _assert_engine_writes_the_in_process_bytes(tmp_path, spark_engine, policy, 20 if policy == "dfn" else None)


@pytest.mark.ray
def test_ray_writes_the_in_process_bytes(tmp_path):
    """A Ray job's select: Ray Data tasks read the pool, decide it (SemDeDup's groups by a Ray group-by),
    find the exact target's boundary (the k-th largest) and write the parts."""
    from curate.engines.ray import RayEngine

    with RayEngine(num_cpus=2) as engine:
        _assert_engine_writes_the_in_process_bytes(tmp_path, engine, "semdedup", 20)


def test_uids_npy_streams_batches_in_order_and_refuses_mixed_case(tmp_path, monkeypatch):
    """uids.npy is written a batch at a time (here one uid per batch) from the engine's sorted parts; the
    engine sorts strings, so upper- and lower-case hex digits mixed across batches cannot make a sorted array."""
    from curate.engines.local import LocalEngine
    from curate.io import dataset
    from curate.select import outputs

    monkeypatch.setattr(outputs, "UIDS_BATCH", 1)
    lower = [f"{i:032x}" for i in (5, 3, 9, 1)]
    for name, uids in (("ok", lower), ("mixed", [f"a{'0' * 31}", f"B{'0' * 31}"])):
        decisions = tmp_path / name / "decisions"
        dataset.write_part(pa.table({"uid": uids, "kept": [True] * len(uids)}), str(decisions / "00000.parquet"))
        npy = tmp_path / name / "uids.npy"
        if name == "ok":
            outputs.write_uids(LocalEngine(), str(decisions), str(tmp_path / name / "_work"), str(npy), len(uids))
            assert u8u8_to_uids(np.load(npy)) == sorted(lower)
        else:
            with pytest.raises(CurateError, match="not in order"):
                outputs.write_uids(LocalEngine(), str(decisions), str(tmp_path / name / "_work"), str(npy), 2)
