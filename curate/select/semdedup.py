"""SemDeDup (Abbas et al. 2023, arXiv 2303.09540; facebookresearch/SemDeDup; NeMo Curator's semantic dedup):
semantic near-duplicates by image embedding, found only inside k-means clusters.

1. k-means (faiss, spherical: SemDeDup's `Kmeans_with_cos_dist: True`) trained on at most `train_rows`
   of the rows still kept, chosen by a seeded hash of the uid (a bounded sample: the driver holds
   train_rows x d floats, never the pool).
2. Per batch, each row's nearest centroid and its cosine similarity to it (`sort_clusters.py`).
3. Per cluster, on the engine (a group-by; one cluster's rows in one task, never all pairs of the pool):
   the kept rows sorted by distance to the centroid, farthest first (SemDeDup's default
   `which_to_keep: hard`, `keep_hard: True`; ties by uid), and a row is a `semantic_duplicate` if its
   cosine similarity to any row before it exceeds 1 - eps (`semdedup.py`: `M = max(triu(S, 1), dim=0)`,
   removed where `M > 1 - eps`). So within a group of near-identical rows, the one farthest from the
   centroid is kept. As in SemDeDup's code, a row is compared with every earlier row of its cluster,
   removed or not.
Deterministic for a seed: the training sample is a hash of (seed, uid), faiss is seeded, and the order
inside a cluster is (distance, uid).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import CurateError
from curate.select.image import embeddings, nearest_centroids
from curate.select.metaclip import uniform
from curate.select.policy import PoolView, StepResult, register

log = logging.getLogger(__name__)
TRAIN_KEY = "_semdedup_key"
CLUSTER = "_semdedup_cluster"
SIMILARITY = "_semdedup_similarity"  # cosine similarity to the nearest centroid
DUPLICATE = "_semdedup_duplicate"
PAIR_BLOCK = 2048  # columns per block of a cluster's similarity matrix (bounds it to size x block)


def duplicates(x: np.ndarray, eps: float) -> np.ndarray:
    """SemDeDup's rule on one cluster whose rows `x` (unit length) are already in keep order: row j is
    a duplicate if max over i < j of x_i . x_j exceeds 1 - eps. Computed in column blocks."""
    n = len(x)
    out = np.zeros(n, dtype=bool)
    for start in range(1, n, PAIR_BLOCK):
        stop = min(n, start + PAIR_BLOCK)
        sims = x[:stop] @ x[start:stop].T  # (rows before the block's end) x (block)
        sims[np.arange(stop)[:, None] >= np.arange(start, stop)[None, :]] = -np.inf  # only i < j
        out[start:stop] = sims.max(axis=0) > 1 - eps
    return out


@register
@dataclass(frozen=True)
class SemDeDup:
    name: ClassVar[str] = "semdedup"
    columns: ClassVar[tuple[str, ...]] = ("uid",)
    reason: ClassVar[str] = "semantic_duplicate"
    group_key: ClassVar[str] = CLUSTER
    group_schema: ClassVar[tuple[pa.Field, ...]] = (pa.field(DUPLICATE, pa.bool_()),)

    eps: float = 0.01  # duplicates: cosine similarity > 1 - eps (NeMo Curator's default eps_to_extract)
    k: int = 50_000  # SemDeDup's LAION-440M configs: ncentroids / num_clusters 50,000
    niter: int = 100  # SemDeDup's clustering_configs.yaml: niter 100
    train_rows: int = 1_000_000  # rows the k-means is trained on (a seeded hash of the uid picks them)
    seed: int = 0
    column: str = "image_embedding"
    _centroids: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.eps < 1:
            raise CurateError(f"{self.name}: eps must be in (0, 1), not {self.eps!r}")
        if self.k < 1 or self.train_rows < 1 or self.niter < 1:
            raise CurateError(f"{self.name}: k, niter and train_rows must be positive")

    @property
    def needed(self) -> tuple[str, ...]:
        return ("uid", self.column)

    @property
    def annotation_columns(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.annotation_schema)

    @property
    def annotation_schema(self) -> tuple[pa.Field, ...]:
        """Before k-means: the training-sample key; after it: the nearest centroid and its similarity."""
        if self._centroids is None:
            return (pa.field(TRAIN_KEY, pa.float64()),)
        return (pa.field(CLUSTER, pa.int32()), pa.field(SIMILARITY, pa.float32()))

    def needs_pool(self) -> bool:
        return self._centroids is None

    def grouped(self) -> bool:
        return self._centroids is not None

    def annotate(self, table: pa.Table) -> pa.Table:
        if self._centroids is None:
            keys = [uniform(self.seed, u, "semdedup") for u in table.column("uid").to_pylist()]
            return table.append_column(self.annotation_schema[0], pa.array(keys, pa.float64()))
        cluster, sim = nearest_centroids(embeddings(table.column(self.column)), self._centroids)
        return (table.append_column(self.annotation_schema[0], pa.array(cluster, pa.int32()))
                .append_column(self.annotation_schema[1], pa.array(sim, pa.float32())))

    def resolve(self, pool: PoolView) -> SemDeDup:
        if self._centroids is not None:
            return self
        import faiss

        sample = pool.smallest(TRAIN_KEY, self.train_rows, [self.column], kept_only=True)
        x = embeddings(sample.column(self.column))
        if len(x) == 0:
            raise CurateError(f"{self.name}: no kept rows with {self.column} to cluster")
        k = min(self.k, len(x))
        if k < self.k:
            log.warning("%s: %d training rows, so k-means uses k=%d instead of %d", self.name, len(x), k, self.k)
        km = faiss.Kmeans(x.shape[1], k, niter=self.niter, seed=self.seed, spherical=True, verbose=False)
        km.train(x)
        return replace(self, _centroids=np.ascontiguousarray(km.centroids, dtype=np.float32))

    def annotate_group(self, table: pa.Table) -> pa.Table:
        """One cluster's rows (the engine groups them): the duplicate flag of each, among the kept ones."""
        dup = np.zeros(table.num_rows, dtype=bool)
        kept = np.flatnonzero(pc.is_null(table.column("_reason")).to_numpy(zero_copy_only=False))
        if len(kept) > 1:
            sim = table.column(SIMILARITY).to_numpy(zero_copy_only=False)[kept]
            uids = np.array(table.column("uid").take(pa.array(kept)).to_pylist(), dtype=object)
            order = kept[np.lexsort((uids, sim))]  # farthest from the centroid first, then by uid
            x = embeddings(table.column(self.column).take(pa.array(order)))
            dup[order] = duplicates(x, self.eps)
        return table.append_column(self.group_schema[0], pa.array(dup, pa.bool_()))

    def evaluate(self, table: pa.Table) -> StepResult:
        dup = pc.fill_null(table.column(DUPLICATE), False).to_numpy(zero_copy_only=False)
        return StepResult([(self.reason, np.asarray(dup, dtype=bool))], self.report())

    def report(self) -> dict:
        return {"eps": self.eps, "k": self.k if self._centroids is None else len(self._centroids),
                "niter": self.niter, "train_rows": self.train_rows, "seed": self.seed, "column": self.column}
