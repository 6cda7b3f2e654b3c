"""Dedup decisions on Spark: the documented order of checks and survivor rule, on hand-made pools whose
answers are worked out by hand, and on random pools against the plain-Python oracle (oracle.py)."""

from __future__ import annotations

import random

import pytest

from curate import schemas
from curate.dedup.refs import Refs
from curate.dedup.run import DedupConfig

from .oracle import decide as oracle

pytestmark = pytest.mark.spark


def _u(i: int) -> str:
    return f"{i:032x}"


ROWS = [  # uid index, url, sha256
    (3, "http://a.org/1.jpg", "h1"),
    (1, "HTTP://A.org/1.jpg#x", "h1"),  # same URL as 3; the smaller uid survives
    (2, "http://b.org/2.jpg", "h1"),  # same image as 1 under another URL
    (4, "http://c.org/3.jpg", "h3"),
    (5, "http://d.org/5.jpg?utm_source=q", "h5"),
    (6, "http://d.org/5.jpg", "h6"),  # same URL as 5, different bytes (the page changed)
]


def _plain(rows, failed=True):
    out = [{"uid": _u(i), "url": url, "sha256": h, "caption": None} for i, url, h in rows]
    if failed:
        out.append({"uid": "f" * 32, "url": "http://x/failed", "sha256": None, "status": "http_error"})
    return out


def _short(got):
    return {int(u, 16): (r, int(d, 16) if d else None) for u, (r, d) in got.items()}


def test_survivor_rule_and_reasons(decide_rows):
    got = _short(decide_rows(_plain(ROWS), hashes=False))
    assert len(got) == len(ROWS)  # the failed download never reaches dedup
    assert got == {1: (None, None), 2: ("duplicate_image", 1), 3: ("duplicate_url", 1), 4: (None, None),
                   5: (None, None), 6: ("duplicate_url", 5)}
    assert _short(decide_rows(_plain(ROWS), DedupConfig(by_image=False), hashes=False))[2] == (None, None)


def _rows_with_every_reason():
    """uid index -> (url, caption, sha256, md5, phash): one case per reason, and the survivors."""
    near = "00000000ffffffff"
    rows = {
        1: ("http://a.org/1.jpg", "a cat", "s1", "m1", "0f0f0f0f0f0f0f0f"),
        2: ("http://a.org/2.jpg", "a cat", "s1", "m1", "0f0f0f0f0f0f0f0f"),  # same image + caption as 1
        3: ("http://a.org/3.jpg", "a dog", "s1", "m1", "0f0f0f0f0f0f0f0f"),  # same image as 1, other caption
        4: ("http://A.org/1.jpg#x", "a cat", "s4", "m4", "1234123412341234"),  # same URL as 1
        5: ("http://b.org/5.jpg", "a red star", "s5", "m5", near),
        6: ("http://b.org/6.jpg", "a red star", "s6", "m6", "00000000ffff0000"),  # 16 bits from 5: kept
        7: ("http://b.org/7.jpg", "a red star", "s7", "m7", "00000000fffffffe"),  # 1 bit from 5: near
        8: ("http://b.org/8.jpg", "x", "s8", "m8", "00000000fffffffc"),  # 1 bit from 7: chain -> 5
        9: ("http://c.org/9.jpg", "listed", "s9", "bad-md5", "aaaaaaaaaaaaaaaa"),  # md5 on the list
        10: ("http://c.org/10.jpg", "listed near", "s10", "m10", "5555555555555557"),  # pHash 1 bit from list
        11: ("http://c.org/11.jpg", "eval", "s11", "m11", "f0f0f0f0f0f0f0f1"),  # 1 bit from an eval image
    }
    for k in range(12, 18):  # one placeholder picture at six URLs
        rows[k] = (f"http://host{k}.org/missing.jpg", f"photo {k}", "sP", "mP", "ffff0000ffff0000")
    return rows


def _dicts(rows):
    return [{"uid": _u(i), "url": r[0], "caption": r[1], "sha256": r[2], "md5": r[3], "phash": r[4]}
            for i, r in rows.items()]


SAFETY = Refs(md5=frozenset({"bad-md5"}), phash=frozenset({"5555555555555555"}))
EVALSET = Refs(sha256=frozenset({"e1"}), phash=frozenset({"f0f0f0f0f0f0f0f0"}))
EXPECTED = {1: (None, None), 2: ("duplicate_pair", 1), 3: ("duplicate_image", 1), 4: ("duplicate_url", 1),
            5: (None, None), 6: (None, None), 7: ("near_duplicate", 5), 8: ("near_duplicate", 5),
            9: ("safety_hash_list", None), 10: ("safety_hash_list", None), 11: ("eval_contamination", None),
            **{k: ("placeholder_image", None) for k in range(12, 18)}}


def test_every_reason_in_order_with_final_survivors(decide_rows):
    got = decide_rows(_dicts(_rows_with_every_reason()), DedupConfig(near_distance=2), SAFETY, EVALSET)
    assert _short(got) == EXPECTED
    assert {r for r, _ in got.values() if r} <= schemas.reasons("dedup")


def test_safety_list_wins_over_everything_and_survivors_come_from_kept_rows(decide_rows):
    rows = _rows_with_every_reason()
    rows[0] = ("http://a.org/1.jpg", "a cat", "s1", "bad-md5", "0f0f0f0f0f0f0f0f")  # smallest uid, listed
    got = _short(decide_rows(_dicts(rows), DedupConfig(near_distance=2), SAFETY, EVALSET))
    assert got[0] == ("safety_hash_list", None)
    assert got[1] == (None, None) and got[4] == ("duplicate_url", 1)  # 1 survives, not the listed 0


def test_placeholder_threshold_and_switches(decide_rows):
    rows = _dicts(_rows_with_every_reason())
    got = _short(decide_rows(rows, DedupConfig(placeholder_min_urls=7)))
    assert got[12] == (None, None) and {got[k][0] for k in range(13, 18)} == {"duplicate_image"}
    got = _short(decide_rows(rows, DedupConfig(near=False, by_pair=False)))
    assert got[2] == ("duplicate_image", 1) and got[7] == (None, None)


def _random_pool(seed: int, n: int) -> tuple[list[dict], Refs, Refs]:
    """Rows drawn from small pools of URLs, captions, images and pHashes, so every rule fires; the pHashes
    are a few bases with near copies (1-4 flipped bits) and unrelated ones."""
    rng = random.Random(seed)
    bases = [rng.getrandbits(64) for _ in range(12)]
    phashes = []
    for b in bases:
        phashes.append(b)
        for _ in range(3):
            phashes.append(b ^ sum(1 << rng.randrange(64) for _ in range(rng.randint(1, 4))))
    phashes += [rng.getrandbits(64) for _ in range(40)]
    rows = []
    for _ in range(n):
        img = rng.randrange(70)
        url = f"http://h{rng.randrange(30)}.org/{rng.randrange(3)}.jpg"
        rows.append({"uid": f"{rng.getrandbits(128):032x}", "url": url,
                     "caption": rng.choice([None, "a", "b", "c"]), "sha256": f"s{img}", "md5": f"m{img}",
                     "phash": None if img == 0 else f"{phashes[img % len(phashes)]:016x}"})
    hexes = [f"{p:016x}" for p in phashes]
    safety = Refs(md5=frozenset({"m5"}), phash=frozenset({f"{int(hexes[8], 16) ^ 1:016x}"}))
    evalset = Refs(sha256=frozenset({"s9"}), phash=frozenset({f"{int(hexes[20], 16) ^ 3:016x}"}))
    return rows, safety, evalset


@pytest.mark.parametrize("seed,config", [
    (0, DedupConfig()),
    (1, DedupConfig(near_distance=4, placeholder_min_urls=3, eval_distance=2)),
    (2, DedupConfig(by_url=False, by_pair=False, placeholder_min_urls=0, near_distance=1)),
])
def test_random_pools_match_the_oracle(decide_rows, seed, config):
    rows, safety, evalset = _random_pool(seed, 400)
    got = decide_rows(rows, config, safety, evalset, shards=3)
    want = oracle([dict(r) for r in rows], near_distance=config.near_distance,
                  hash_list_distance=config.hash_list_distance, eval_distance=config.eval_distance,
                  placeholder_min_urls=config.placeholder_min_urls, by_url=config.by_url, by_pair=config.by_pair,
                  by_image=config.by_image, near=config.near,
                  safety={"md5": safety.md5, "phash": safety.phash},
                  evalset={"sha256": evalset.sha256, "phash": evalset.phash})
    assert got == want
    reasons = {r for r, _ in want.values()}
    assert {"duplicate_url", "duplicate_image", "near_duplicate", "safety_hash_list"} & reasons
    assert None in reasons
