"""DataComp "image-based" filtering (arXiv 2304.14108, section 3.4; datacomp baselines/apply_filter.py,
image_filter_helper): a caption pre-filter (English, more than 1 word, more than 5 characters), then
k-means on the pool's image embeddings (faiss; 100,000 centroids at full scale), and keep a sample if
its nearest centroid is the nearest centroid of some image of a reference set (ImageNet-1k train).

Three ways to give the clustering: embeddings (`image_embedding` from the score stage) with k-means trained
here on up to `train_rows` pool rows chosen by a seeded hash of the uid, and a reference embeddings
file; the same with DataComp's own pool centroids (`centroids`, a .npy of k x d), which is DataComp's
`load_uids_with_image_filter` exactly (nearest centroid = argmax of the dot product, as its
`get_centroid_ids_gpu`); or a precomputed nearest-centroid column (`cluster_column`) with the reference
set's centroid ids (`reference_clusters`, a .npy of ints) — what the benchmark uses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curate.errors import CurateError
from curate.io import fs
from curate.select.datacomp import caption_checks, fasttext_token_count
from curate.select.metaclip import uniform
from curate.select.policy import PoolView, StepResult, register

log = logging.getLogger(__name__)
TRAIN_KEY = "_kmeans_key"


def embeddings(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A list<float> column as a float32 matrix, rows normalised to unit length."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if len(arr) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    flat = np.asarray(arr.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    x = flat.reshape(len(arr), -1)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest_centroids(x: np.ndarray, centroids: np.ndarray, rows: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(argmax of the dot product, its value) per row, `rows` rows at a time, so the similarity block is
    rows x k, not batch x k (100,000 centroids would make a 65,536-row batch's block 26 GB)."""
    best = np.zeros(len(x), dtype=np.int64)
    value = np.zeros(len(x), dtype=np.float32)
    for start in range(0, len(x), rows):
        s = x[start:start + rows] @ centroids.T
        i = np.argmax(s, axis=1)
        best[start:start + rows], value[start:start + rows] = i, s[np.arange(len(i)), i]
    return best, value


def load_npy(path: str, what: str) -> np.ndarray:
    fs_, p = fs.url_to_fs(path)
    try:
        with fs_.open(p, "rb") as fh:
            return np.load(fh, allow_pickle=False)
    except FileNotFoundError as exc:
        raise CurateError(f"datacomp_image: no {what} file {path}") from exc
    except ValueError as exc:
        raise CurateError(f"datacomp_image: {what} {path} is not a .npy array ({exc})") from exc


def load_reference(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        x = load_npy(path, "reference").astype(np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    table = fs.read_table(path)
    name = next((c for c in ("image_embedding", "embedding") if c in table.column_names), None)
    if name is None:
        raise CurateError(f"datacomp_image: reference {path} has no image_embedding or embedding column")
    return embeddings(table.column(name))


@register
@dataclass(frozen=True)
class DataCompImage:
    name: ClassVar[str] = "datacomp_image"
    columns: ClassVar[tuple[str, ...]] = ("uid", "caption", "language")

    reference: str | None = None  # reference image embeddings (.npy or parquet), e.g. ImageNet-1k train
    k: int = 100_000  # DataComp: 100,000 centroids for the xlarge (12.8B) pool
    train_rows: int = 1_000_000  # pool rows the k-means is trained on
    niter: int = 20  # faiss k-means iterations
    seed: int = 0
    centroids: str | None = None  # DataComp's pool centroids (.npy, k x d): no k-means is trained
    cluster_column: str | None = None  # precomputed nearest-centroid id per sample
    reference_clusters: str | None = None  # .npy of the reference set's nearest-centroid ids
    language: str = "en"  # caption_filter: fasttext English
    min_words: int = 2  # caption_filter: "caption_num_words > 1", words by fasttext.tokenize
    min_chars: int = 6  # caption_filter: "caption_num_chars > 5"
    _targets: tuple[int, ...] | None = None  # centroid ids nearest to some reference image
    _centroids: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.cluster_column is None and self.reference is None:
            raise CurateError("datacomp_image: give `reference` embeddings, or `cluster_column` and "
                              "`reference_clusters`")
        if self.cluster_column is not None and self.reference_clusters is None:
            raise CurateError("datacomp_image: `cluster_column` needs `reference_clusters`")

    @property
    def needed(self) -> tuple[str, ...]:
        return (*self.columns, self.cluster_column or "image_embedding")

    @property
    def annotation_columns(self) -> tuple[str, ...]:
        trains = self.cluster_column is None and self.centroids is None
        return (TRAIN_KEY,) if trains and self._targets is None else ()

    @property
    def annotation_schema(self) -> tuple[pa.Field, ...]:
        return (pa.field(TRAIN_KEY, pa.float64()),)

    def needs_pool(self) -> bool:
        return self._targets is None and self.cluster_column is None and self.centroids is None

    def annotate(self, table: pa.Table) -> pa.Table:
        keys = [uniform(self.seed, u, "kmeans") for u in table.column("uid").to_pylist()]
        return table.append_column(self.annotation_schema[0], pa.array(keys, pa.float64()))

    def resolve(self, pool: PoolView) -> DataCompImage:
        if self._targets is not None:
            return self
        if self.cluster_column is not None:
            ids = load_npy(self.reference_clusters, "reference_clusters")
            return replace(self, _targets=tuple(sorted({int(i) for i in ids.ravel()})))
        if self.centroids is not None:
            return self._with_centroids(load_npy(self.centroids, "centroids").astype(np.float32))
        import faiss

        sample = pool.smallest(TRAIN_KEY, self.train_rows, ["image_embedding"], kept_only=False)
        x = embeddings(sample.column("image_embedding"))
        k = min(self.k, len(x))
        if k < self.k:
            log.warning("datacomp_image: %d training rows, so k-means uses k=%d instead of %d", len(x), k, self.k)
        if k == 0:
            raise CurateError("datacomp_image: the pool has no embeddings to cluster")
        km = faiss.Kmeans(x.shape[1], k, niter=self.niter, seed=self.seed, spherical=True, verbose=False)
        km.train(x)
        return self._with_centroids(km.centroids.astype(np.float32))

    def _with_centroids(self, centroids: np.ndarray) -> DataCompImage:
        """DataComp's target centroids: `torch.unique(get_centroid_ids_gpu(reference, centroids))`."""
        reference = load_reference(self.reference)
        if centroids.ndim != 2 or reference.shape[1] != centroids.shape[1]:
            raise CurateError(f"datacomp_image: centroids {centroids.shape} and reference embeddings "
                              f"{reference.shape} differ in dimension")
        targets = np.unique(np.argmax(reference @ centroids.T, axis=1))
        return replace(self, _targets=tuple(int(t) for t in targets), _centroids=centroids)

    def nearest(self, table: pa.Table) -> np.ndarray:
        if self.cluster_column is not None:
            return np.asarray(table.column(self.cluster_column).to_numpy(zero_copy_only=False), dtype=np.int64)
        return nearest_centroids(embeddings(table.column("image_embedding")), self._centroids)[0]

    def evaluate(self, table: pa.Table) -> StepResult:
        near = ~np.isin(self.nearest(table), np.array(self._targets, dtype=np.int64))
        return StepResult([*caption_checks(table, self.language, self.min_words, self.min_chars,
                                           fasttext_token_count),
                           ("not_near_reference_cluster", near)], self.report())

    def report(self) -> dict:
        return {"reference": self.reference, "k": self.k if self._centroids is None else len(self._centroids),
                "centroids": self.centroids, "cluster_column": self.cluster_column,
                "reference_clusters": self.reference_clusters,
                "target_clusters": len(self._targets or ()), "seed": self.seed, "language": self.language,
                "min_words": self.min_words, "min_chars": self.min_chars}
