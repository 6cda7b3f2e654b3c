"""MetaCLIP matching at full size and SemDeDup at 1M embeddings, in-process (one core's rate; on the engine
each task runs the same per-batch code). `python -m bench recipes -- --entries 500000 --rows 1000000`.

- MetaCLIP: a synthetic metadata.json of `--entries` entries (unigrams and bigrams over a synthetic
  vocabulary, as MetaCLIP's list mixes WordNet lemmas, Wikipedia uni/bigrams and titles), captions of 6-14
  Zipf-distributed words. Times the automaton build (once per worker), the matching (`annotate`, the
  per-batch work) and the balancing (`evaluate`) after the counts are resolved.
- SemDeDup: `--rows` embeddings of `--dim` dimensions around `--topics` directions, 10% of them near
  copies of another row; the whole `semdedup` step on the in-process engine (training-sample key, k-means
  on `--train-rows`, nearest centroid per batch, per-cluster duplicates).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "do", "fe", "gi", "hu", "ja"]


def vocabulary(words: int, rng: np.random.Generator) -> list[str]:
    out: dict[str, None] = {}
    while len(out) < words:
        n = int(rng.integers(2, 7))  # 16^2 + ... + 16^6 names: enough for any list here
        out["".join(SYLLABLES[i] for i in rng.integers(0, len(SYLLABLES), n))] = None
    return list(out)


def metaclip_data(entries: int, rows: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    words = vocabulary(max(entries // 2, 1000), rng)
    zipf = np.minimum(rng.zipf(1.2, size=rows * 14) - 1, len(words) - 1)
    captions, pos = [], 0
    for n in rng.integers(6, 15, rows):
        captions.append(" ".join(words[i] for i in zipf[pos:pos + n]))
        pos += n
    metadata: dict[str, None] = dict.fromkeys(words[:entries // 2])
    while len(metadata) < entries:
        a, b = rng.integers(0, len(words), 2)
        metadata[f"{words[a]} {words[b]}"] = None
    return list(metadata), captions


def bench_metaclip(entries: int, rows: int, folder: Path) -> dict:
    from curate.engines.local import LocalEngine
    from curate.select.execute import EnginePool
    from curate.select.metaclip import MetaClip
    from curate.select.metadata import matcher

    meta, captions = metaclip_data(entries, rows)
    path = folder / "metadata.json"
    path.write_text(json.dumps(meta))
    table = pa.table({"uid": [f"{i:032x}" for i in range(rows)], "caption": captions})
    step = MetaClip(entries=str(path), match="metaclip", t=max(1, rows // 1000))
    t0 = time.perf_counter()
    matcher(str(path), "metaclip")
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    annotated = step.annotate(table)
    match = time.perf_counter() - t0
    state = annotated.append_column("_reason", pa.nulls(rows, pa.string()))
    t0 = time.perf_counter()
    resolved = step.resolve(EnginePool(LocalEngine(), state))
    count = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = resolved.evaluate(annotated)
    balance = time.perf_counter() - t0
    per_row = sum(len(m) for m in annotated.column("_metaclip_entries").to_pylist()) / rows
    kept = rows - sum(int(mask.sum()) for _, mask in result.rejects)
    return {"entries": entries, "rows": rows, "automaton_build_s": round(build, 2),
            "matching_rows_per_s": round(rows / match), "matches_per_row": round(per_row, 2),
            "count_s": round(count, 2), "balancing_rows_per_s": round(rows / balance), "kept": kept,
            "t": resolved.t, "entries_over_t": resolved.summary()["entries_over_t"]}


def semdedup_data(rows: int, dim: int, topics: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(topics, dim)).astype(np.float32)
    x = centers[rng.integers(0, topics, rows)] + rng.normal(scale=0.6, size=(rows, dim)).astype(np.float32)
    copies = rng.choice(rows, rows // 10, replace=False)
    x[copies] = x[rng.integers(0, rows, len(copies))] + rng.normal(scale=0.002, size=(len(copies), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    flat = pa.array(x.astype(np.float32).ravel())
    emb = pa.FixedSizeListArray.from_arrays(flat, dim).cast(pa.list_(pa.float32()))
    return pa.table({"uid": [f"{i:032x}" for i in range(rows)], "image_embedding": emb})


def bench_semdedup(rows: int, dim: int, k: int, train_rows: int, niter: int, eps: float) -> dict:
    from curate.engines.local import LocalEngine
    from curate.select.execute import select_frame
    from curate.select.policy import policy_from_dict

    table = semdedup_data(rows, dim, topics=max(1, k // 2))
    policy = policy_from_dict({"steps": [{"step": "semdedup", "eps": eps, "k": k, "train_rows": train_rows,
                                          "niter": niter}]})
    t0 = time.perf_counter()
    frame, _ = select_frame(LocalEngine(), table, policy)
    seconds = time.perf_counter() - t0
    dups = frame.column("_reason").null_count
    return {"rows": rows, "dim": dim, "k": k, "train_rows": train_rows, "niter": niter, "eps": eps,
            "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds),
            "semantic_duplicates": rows - dups}


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(prog="bench recipes")
    p.add_argument("--entries", type=int, default=500_000, help="MetaCLIP metadata entries")
    p.add_argument("--captions", type=int, default=200_000, help="captions matched")
    p.add_argument("--rows", type=int, default=1_000_000, help="SemDeDup embeddings")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--k", type=int, default=1000, help="SemDeDup clusters (about 1,000 rows each at 1M)")
    p.add_argument("--train-rows", type=int, default=100_000)
    p.add_argument("--niter", type=int, default=20)
    p.add_argument("--eps", type=float, default=0.01)
    p.add_argument("--only", choices=("metaclip", "semdedup"), default=None)
    args = p.parse_args(argv)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "metaclip"):
            out["metaclip"] = bench_metaclip(args.entries, args.captions, Path(tmp))
            print(json.dumps({"metaclip": out["metaclip"]}), flush=True)
    if args.only in (None, "semdedup"):
        out["semdedup"] = bench_semdedup(args.rows, args.dim, args.k, args.train_rows, args.niter, args.eps)
        print(json.dumps({"semdedup": out["semdedup"]}), flush=True)
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}), flush=True)
