"""A plain-Python statement of the dedup rules (curate/dedup/rules.py's docstring), row by row with dicts
and brute-force Hamming distances: the independent reference the Spark plan is checked against."""

from __future__ import annotations

from curate.dedup.url import canonical_url

ORDER = ("safety_hash_list", "eval_contamination", "placeholder_image")


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def decide(rows: list[dict], *, near_distance=3, hash_list_distance=3, eval_distance=None, placeholder_min_urls=5,
           by_url=True, by_pair=True, by_image=True, near=True, safety=None, evalset=None) -> dict:
    """uid -> (reason, duplicate_of) for rows {uid, url, caption, sha256, md5, phash} (status success)."""
    safety, evalset = safety or {}, evalset or {}
    rows = sorted(rows, key=lambda r: r["uid"])
    for r in rows:
        r["canon"] = canonical_url(r["url"])
    reason = {r["uid"]: None for r in rows}
    dup = {r["uid"]: None for r in rows}

    def listed(r, refs, kinds, distance):
        if any(r.get(k) in refs.get(k, ()) for k in kinds):
            return True
        return r.get("phash") is not None and any(hamming(r["phash"], p) <= distance for p in refs.get("phash", ()))

    for r in rows:
        if listed(r, safety, ("md5", "sha1", "sha256"), hash_list_distance):
            reason[r["uid"]] = "safety_hash_list"
    ed = near_distance if eval_distance is None else eval_distance
    for r in rows:
        if reason[r["uid"]] is None and listed(r, evalset, ("sha256",), ed):
            reason[r["uid"]] = "eval_contamination"
    if placeholder_min_urls > 0:
        for key in ("sha256", "phash"):
            urls: dict = {}
            for r in rows:
                if r.get(key) is not None:
                    urls.setdefault(r[key], set()).add(r["canon"])
            for r in rows:
                if reason[r["uid"]] is None and r.get(key) is not None and len(urls[r[key]]) >= placeholder_min_urls:
                    reason[r["uid"]] = "placeholder_image"
    pre_out = {u: reason[u] is not None for u in reason}

    rank: dict = {}
    order_keys: list = [lambda r: pre_out[r["uid"]]]

    def ranked(group_of, name):
        groups: dict = {}
        for r in rows:
            groups.setdefault(group_of(r), []).append(r)
        for members in groups.values():
            members.sort(key=lambda r: (*[k(r) for k in order_keys], r["uid"]))
            for i, r in enumerate(members):
                rank[(name, r["uid"])] = (i, members[0]["uid"])

    def pair_key(r):
        if r.get("caption") is None or r.get("sha256") is None:
            return ("uid", r["uid"])
        return (r["sha256"], r["caption"])

    ranked(lambda r: r["canon"], "url")
    if by_url:
        order_keys.append(lambda r: rank[("url", r["uid"])][0])
    ranked(pair_key, "pair")
    if by_pair:
        order_keys.append(lambda r: rank[("pair", r["uid"])][0])
    ranked(lambda r: r.get("sha256"), "img")
    for on, name, col in ((by_url, "duplicate_url", "url"), (by_pair, "duplicate_pair", "pair"),
                          (by_image, "duplicate_image", "img")):
        if not on:
            continue
        for r in rows:
            i, first = rank[(col, r["uid"])]
            if reason[r["uid"]] is None and i > 0:
                reason[r["uid"]], dup[r["uid"]] = name, first
    if near:
        alive = [r for r in rows if reason[r["uid"]] is None and r.get("phash") is not None]
        parent = {r["uid"]: r["uid"] for r in alive}

        def find(u):
            while parent[u] != u:
                parent[u] = parent[parent[u]]
                u = parent[u]
            return u

        for i, a in enumerate(alive):
            for b in alive[i + 1:]:
                if hamming(a["phash"], b["phash"]) <= near_distance:
                    ra, rb = find(a["uid"]), find(b["uid"])
                    parent[max(ra, rb)] = min(ra, rb)
        moved = {}
        for r in alive:
            root = find(r["uid"])  # the smallest uid of its group: unions keep the smaller root
            if root != r["uid"]:
                reason[r["uid"]], dup[r["uid"]] = "near_duplicate", root
                moved[r["uid"]] = root
        for u in dup:
            if dup[u] in moved:
                dup[u] = moved[dup[u]]
    return {u: (reason[u], dup[u]) for u in reason}
