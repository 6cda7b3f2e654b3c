"""Two URL lists concatenated with a source column and downloaded in-process as one run: the source reaches
download/samples and the select stage's pool, and a `mix` policy gives each source its share."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from curate.download.config import DownloadConfig
from curate.download.run import run_download
from curate.engines.local import LocalEngine
from curate.select.pool import table as pool_table
from curate.select.run import SelectConfig, run_select


def _scores(samples: pa.Table) -> pa.Table:
    """What the score stage writes for every downloaded image, with a DFN score to rank by."""
    ok = samples.filter(pc.equal(samples.column("status"), "success"))
    rng = np.random.default_rng(0)
    return pa.table({"uid": ok.column("uid"), "shard": ok.column("shard"), "key": ok.column("key"),
                     "status": ["ok"] * ok.num_rows, "error": pa.nulls(ok.num_rows, pa.string()),
                     "clip_dfn": rng.uniform(0, 1, ok.num_rows).astype(np.float32)})


def test_a_two_source_download_mixes_in_select(bad_server, tmp_path):
    paths = [f"/img/{i}.jpg" for i in range(24)] + ["/missing"]
    dataset = ["small" if i % 4 == 0 else "big" for i in range(len(paths))]
    pq.write_table(pa.table({"url": [bad_server.base + p for p in paths],
                             "caption": [f"photo {i}" for i in range(len(paths))], "dataset": dataset}),
                   tmp_path / "in.parquet")
    run = tmp_path / "run"
    run_download(LocalEngine(), str(run), DownloadConfig(
        input=str(tmp_path / "in.parquet"), source_col="dataset", shard_size=10, threads=4, timeout=5, deadline=5,
        allow_addresses=(f"127.0.0.1:{bad_server.port}",)))
    samples = pq.read_table(run / "download" / "samples")
    assert samples.schema.metadata[b"curate.schema"] == b"samples.v3"
    by_url = dict(zip(samples.column("url").to_pylist(), samples.column("source").to_pylist(), strict=True))
    assert by_url == {bad_server.base + p: d for p, d in zip(paths, dataset, strict=True)}

    (run / "score" / "scores").mkdir(parents=True)
    scores = _scores(samples)
    for shard in sorted(set(scores.column("shard").to_pylist())):  # one scores part per download shard
        pq.write_table(scores.filter(pc.equal(scores.column("shard"), shard)),
                       run / "score" / "scores" / shard.replace(".tar", ".parquet"))
    (run / "score" / "_SUCCESS").write_bytes(b"")
    pool = pool_table(str(run))
    source_of = dict(zip(samples.column("uid").to_pylist(), samples.column("source").to_pylist(), strict=True))
    assert pool.num_rows == 24
    assert pool.column("source").to_pylist() == [source_of[u] for u in pool.column("uid").to_pylist()]

    policy = tmp_path / "mix.yaml"
    policy.write_text("name: two-sources\nsteps:\n  - {step: dfn, fraction: 0.5}\n"
                      "  - {step: mix, shares: {big: 0.8, small: 0.2}}\n")
    stats = run_select(str(run), SelectConfig(policy=str(policy), engine="local"))
    decisions = pq.read_table(run / "select" / "decisions")
    kept = decisions.filter(decisions.column("kept"))
    weights = np.array(kept.column("weight").to_pylist())
    small = np.array([source_of[u] == "small" for u in kept.column("uid").to_pylist()])
    assert stats["kept"] == kept.num_rows == 12 and small.any() and (~small).any()
    assert weights[small].sum() / weights.sum() == pytest.approx(0.2)
    assert weights.sum() == pytest.approx(kept.num_rows)
