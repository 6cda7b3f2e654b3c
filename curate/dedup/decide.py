"""Dedup decisions: every successfully downloaded sample is kept or rejected with one reason.

Checks, in order; a sample gets the reason of the first check it fails, and each later check only
sees the samples still kept:
  1. safety_hash_list   md5, sha1 or sha256 on a supplied hash list, or pHash within
                        `hash_list_distance` bits of a listed pHash. Wins over everything.
  2. eval_contamination image sha256 equal to, or pHash within `eval_distance` bits of, an image of
                        the evaluation set.
  3. placeholder_image  the image's sha256 (or its pHash) is shared by at least `placeholder_min_urls`
                        distinct canonical URLs: a host's "image not available" picture. Every member is
                        rejected, none kept.
  4. duplicate_url      same canonical URL as a kept sample.
  5. duplicate_pair     same image sha256 and same caption as a kept sample.
  6. duplicate_image    same image sha256 as a kept sample.
  7. near_duplicate     pHash within `near_distance` bits of a kept sample's, transitively: pairs found
                        by LSH banding, groups are connected components.
Survivor rule (4-7): within a group, the sample with the smallest uid among those still kept survives;
`duplicate_of` names the final survivor (a sample whose survivor later became a near-duplicate points
to that group's survivor). Rules 1-3 leave `duplicate_of` empty.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import schemas
from curate.dedup.config import DedupConfig
from curate.dedup.phash import hex_to_int64
from curate.dedup.refs import Refs
from curate.dedup.url import CanonicalUrl
from curate.download.status import SUCCESS
from curate.engines.base import Engine, StageSpec

log = logging.getLogger(__name__)

REASONS = ("safety_hash_list", "eval_contamination", "placeholder_image", "duplicate_url", "duplicate_pair",
           "duplicate_image", "near_duplicate")


def near_matches(engine: Engine, pool: list[str], refs: frozenset[str], distance: int) -> list[str]:
    """The pool pHashes (hex) within `distance` bits of any reference pHash, with exact recall."""
    pool, ref = sorted(set(pool)), sorted(refs)
    if not pool or not ref:
        return []
    ids = pa.array(["p" + h for h in pool] + ["r" + h for h in ref], pa.string())
    frame = engine.from_arrow(pa.table({"id": ids, "h": pa.array(hex_to_int64(pool + ref), pa.int64())}))
    pairs = engine.to_arrow(engine.band_pairs(frame, "id", "h", min(distance + 1, 64), distance))
    cross = pc.and_(pc.starts_with(pairs.column("src"), "p"), pc.starts_with(pairs.column("dst"), "r"))
    return sorted({s[1:] for s in pairs.column("src").filter(cross).to_pylist()})


def near_components(engine: Engine, hashes: np.ndarray, distance: int, bands: int) -> tuple[np.ndarray, np.ndarray]:
    """(node, component) int64 arrays for distinct pHashes linked within `distance` bits, transitively."""
    frame = engine.from_arrow(pa.table({"h": pa.array(hashes, pa.int64())}))
    pairs = engine.band_pairs(frame, "h", "h", bands, distance)
    comps = engine.to_arrow(engine.connected_components(pairs, "src", "dst"))
    nodes, labels = comps.column("node").to_numpy(), comps.column("component").to_numpy()
    order = np.argsort(nodes)
    return nodes[order], labels[order]


def _in(col: pa.ChunkedArray, values: frozenset[str] | list[str]) -> np.ndarray:
    if not values:
        return np.zeros(len(col), dtype=bool)
    found = pc.is_in(col, value_set=pa.array(sorted(values), pa.string()))
    return found.fill_null(False).to_numpy(zero_copy_only=False)


def _shared_by_urls(table: pa.Table, key: str, min_urls: int) -> np.ndarray:
    """Rows whose non-null `key` is shared by at least `min_urls` distinct canonical URLs."""
    counts = table.group_by(key).aggregate([("url_canonical", "count_distinct")])
    counts = counts.filter(pc.and_(pc.is_valid(counts.column(key)),
                                   pc.greater_equal(counts.column("url_canonical_count_distinct"), min_urls)))
    return _in(table.column(key), counts.column(key).to_pylist())


def _with_hashes(samples: pa.Table, hashes: pa.Table | None) -> pa.Table:
    ok = samples.filter(pc.equal(samples.column("status"), SUCCESS))
    n = ok.num_rows
    caption = ok.column("caption") if "caption" in ok.column_names else pa.nulls(n, pa.string())
    base = pa.table({"uid": ok.column("uid"), "url": ok.column("url"), "sha256": ok.column("sha256"),
                     "caption": caption})
    if hashes is None:
        base = base.append_column("md5", pa.nulls(n, pa.string())).append_column("sha1", pa.nulls(n, pa.string()))
        base = base.append_column("phash", pa.nulls(n, pa.string()))
    else:
        base = base.join(hashes.select(["uid", "md5", "sha1", "phash"]), "uid", join_type="left outer")
    return base.sort_by([("uid", "ascending")]).combine_chunks()


def _ranks(engine: Engine, table: pa.Table, pre_out: np.ndarray, config: DedupConfig) -> pa.Table:
    """url/pair/image ranks on the engine; each ordering puts rows excluded by earlier checks last."""
    # a row without a caption pairs with nothing: its key is its own uid
    pair_key = pc.binary_join_element_wise(table.column("sha256"), table.column("caption"), "\n").fill_null(
        pc.binary_join_element_wise("\x00", table.column("uid"), ""))
    frame = engine.from_arrow(pa.table({
        "uid": table.column("uid"), "url_canonical": table.column("url_canonical"),
        "sha256": table.column("sha256"), "pair_key": pair_key, "pre_out": pa.array(pre_out.astype(np.int8))}))
    order = ["pre_out"]
    frame = engine.rank_in_groups(frame, "url_canonical", [*order, "uid"], "url_rank", "url_first", "uid")
    order += ["url_rank"] if config.by_url else []
    frame = engine.rank_in_groups(frame, "pair_key", [*order, "uid"], "pair_rank", "pair_first", "uid")
    order += ["pair_rank"] if config.by_pair else []
    frame = engine.rank_in_groups(frame, "sha256", [*order, "uid"], "img_rank", "img_first", "uid")
    return engine.to_arrow(frame).sort_by([("uid", "ascending")])


def decide(engine: Engine, samples: pa.Table, config: DedupConfig, hashes: pa.Table | None = None,
           safety: Refs | None = None, evalset: Refs | None = None) -> pa.Table:
    """The dedup decisions table (schema dedup.v1) for the successfully downloaded rows of `samples`."""
    safety, evalset = safety or Refs(), evalset or Refs()
    table = _with_hashes(samples, hashes)
    n = table.num_rows
    phashes = pc.drop_null(table.column("phash")).to_pylist()
    reason = np.full(n, None, dtype=object)
    dup_of = np.full(n, None, dtype=object)

    def assign(mask: np.ndarray, name: str, of: np.ndarray | None = None) -> None:
        m = mask & np.equal(reason, None)
        reason[m] = name
        if of is not None:
            dup_of[m] = of[m]

    unsafe = np.zeros(n, dtype=bool)
    for kind in ("md5", "sha1", "sha256"):
        unsafe |= _in(table.column(kind), getattr(safety, kind))
    if safety.phash:
        unsafe |= _in(table.column("phash"), near_matches(engine, phashes, safety.phash, config.hash_list_distance))
    assign(unsafe, "safety_hash_list")
    if len(evalset):
        distance = config.near_distance if config.eval_distance is None else config.eval_distance
        dirty = _in(table.column("sha256"), evalset.sha256) | _in(
            table.column("phash"), near_matches(engine, phashes, evalset.phash, distance))
        assign(dirty, "eval_contamination")

    url_schema = pa.schema([("uid", pa.string()), ("url", pa.string()), ("url_canonical", pa.string())])
    frame = engine.map_batches(engine.from_arrow(table.select(["uid", "url"])),
                               StageSpec(CanonicalUrl, None, batch_size=4096), url_schema)
    canon = engine.to_arrow(frame).sort_by([("uid", "ascending")])
    table = table.append_column("url_canonical", canon.column("url_canonical"))
    if config.placeholder_min_urls > 0:
        k = config.placeholder_min_urls
        assign(_shared_by_urls(table, "sha256", k) | _shared_by_urls(table, "phash", k), "placeholder_image")

    ranks = _ranks(engine, table, np.not_equal(reason, None), config)
    for on, name, col in ((config.by_url, "duplicate_url", "url"), (config.by_pair, "duplicate_pair", "pair"),
                          (config.by_image, "duplicate_image", "img")):
        if on:
            rank = ranks.column(f"{col}_rank").to_numpy()
            assign(rank > 0, name, ranks.column(f"{col}_first").to_numpy(zero_copy_only=False))

    if config.near and config.near_distance >= 0:
        _near(engine, table, reason, dup_of, config)
    out = pa.table({"uid": table.column("uid"), "url_canonical": table.column("url_canonical"),
                    "sha256": table.column("sha256"), "reason": pa.array(reason, pa.string()),
                    "duplicate_of": pa.array(dup_of, pa.string())})
    return schemas.conform(out, "dedup")


def _near(engine: Engine, table: pa.Table, reason: np.ndarray, dup_of: np.ndarray, config: DedupConfig) -> None:
    """Reject near-duplicates among the kept rows in place and point earlier duplicates at final survivors."""
    alive = np.equal(reason, None) & table.column("phash").is_valid().to_numpy(zero_copy_only=False)
    idx = np.flatnonzero(alive)
    if len(idx) < 2:
        return
    h = hex_to_int64(table.column("phash").take(pa.array(idx)).to_pylist())
    distinct = np.unique(h)
    comp = h.copy()
    if len(distinct) > 1:
        nodes, comps = near_components(engine, distinct, config.near_distance, config.bands_for(config.near_distance))
        pos = np.searchsorted(nodes, h)
        pos = np.minimum(pos, max(len(nodes) - 1, 0))
        hit = (nodes[pos] == h) if len(nodes) else np.zeros(len(h), dtype=bool)
        comp[hit] = comps[pos[hit]]
    _, first = np.unique(comp, return_index=True)  # rows are in uid order: first = smallest uid
    survivor = idx[first[np.searchsorted(np.unique(comp), comp)]]
    losers = survivor != idx
    uids = table.column("uid").to_numpy(zero_copy_only=False)
    reason[idx[losers]] = "near_duplicate"
    dup_of[idx[losers]] = uids[survivor[losers]]
    moved = dict(zip(uids[idx[losers]], uids[survivor[losers]], strict=True))
    if moved:
        for i in np.flatnonzero(np.not_equal(dup_of, None)):
            dup_of[i] = moved.get(dup_of[i], dup_of[i])
