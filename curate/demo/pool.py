"""The bundled sample pool: ~2,000 image-caption pairs with planted, labelled defects.

`generate_pool` writes, for the defects and shares of `curate.demo.defects`, a small web site of
rendered shapes (see `curate.demo.shapes`), the pipeline's input list of URLs and captions, and the
ground truth for every row, so a test can check each stage's decisions (download, dedup, language ID,
CLIP score, DataComp filters) against what was planted.

Layout of `out_dir`::

    site/             files served by `curate.demo.server.LoopbackServer` (JPEGs and the bad bodies)
    site/_headers.json  served path -> extra response headers (X-Robots-Tag, forced Content-Type)
    eval/             an evaluation image set: re-encoded copies of the `eval_contaminated` rows' images
                      plus unrelated renders (for `curate dedup --eval-images`)
    hashlist.txt      a stand-in for a safety hash list (IWF/C3P): an md5, sha1, sha256 or pHash of each
                      `hash_listed` row's image, plus unrelated entries (for `curate dedup --hash-list`)
    urls.parquet      uid, url, caption                       (the pipeline's input, shuffled)
    labels.parquet    uid, url, caption, defect, scene_shape, scene_color, width, height,
                      language, group, expected_status, detail   (same row order)
    pool.json         counts per defect, the config and base URL; written last (completion marker)

Everything is a function of `PoolConfig` (seed included): the same config gives byte-identical files,
and a different `base_url` changes only the url columns (and `base_url` in pool.json).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from curate.demo import content
from curate.demo.defects import COPY_DEFECTS, DEFECTS, EXPECTED_STATUS, STATUSES, PoolConfig
from curate.demo.server import HEADERS_FILE
from curate.demo.shapes import (
    FOREIGN_LANGUAGES,
    Scene,
    foreign_caption,
    other_scene,
    random_scene,
)

logger = logging.getLogger(__name__)

EVAL_DIR = "eval"
HASH_LIST = "hashlist.txt"
_HASH_KINDS: tuple[str, ...] = ("md5", "sha1", "sha256", "phash")
SUMMARY_FILE = "pool.json"
PLACEHOLDER_SIZE = (320, 240)
_PLACEHOLDER = content.placeholder()
SUMMARY_SCHEMA = "curate.demo.pool/v1"

# duplicate_url variants: (name, upper-case scheme and host?, suffix); all canonicalise to the original.
_URL_FORMS: tuple[tuple[str, bool, str], ...] = (
    ("identical", False, ""),
    ("upper_scheme_host", True, ""),
    ("fragment", False, "#photo"),
    ("tracking", False, "?utm_source=newsletter&utm_medium=email"),
    ("tracking_fragment", True, "?utm_source=x&utm_medium=y&utm_campaign=z#top"),
)
_OPT_OUT_TAGS: tuple[str, ...] = ("noai", "noimageai", "noai, noimageai")
_NOT_IMAGE_BODIES: tuple[tuple[str, str, bytes], ...] = (
    ("html", "text/html; charset=utf-8",
     b"<!doctype html>\n<html><head><title>Sign in</title></head>\n"
     b"<body><h1>Please sign in to view this image</h1></body></html>\n"),
    ("text", "text/plain; charset=utf-8", b"Access denied: hotlinking is not allowed on this server.\n"),
)


@dataclass(frozen=True)
class PoolSummary:
    """What `generate_pool` wrote: paths, the base URL the urls point at, and counts per defect."""

    out_dir: Path
    site_dir: Path
    headers_path: Path
    urls_path: Path
    labels_path: Path
    summary_path: Path
    eval_dir: Path
    hash_list_path: Path
    base_url: str
    config: PoolConfig
    counts: dict[str, int]
    status_counts: dict[str, int]
    n_groups: int

    @property
    def n(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class _Row:
    uid: str
    path: str  # served path, starting with "/"
    caption: str
    defect: str
    language: str
    scene: Scene | None = None
    size: tuple[int, int] | None = None
    group: str | None = None
    detail: str | None = None
    upper: bool = False  # duplicate_url: upper-case scheme and host
    suffix: str = ""  # duplicate_url: query string and/or fragment appended to the URL

    def url(self, base_url: str) -> str:
        url = base_url + self.path + self.suffix
        if not self.upper:
            return url
        scheme, netloc, path, query, fragment = urlsplit(url)
        return urlunsplit((scheme.upper(), netloc.upper(), path, query, fragment))


def make_uid(seed: int, index: int) -> str:
    """DataComp-style uid: 32 lowercase hex digits, a function of the seed and the row index."""
    return hashlib.sha256(f"curate-demo-pool/{seed}/{index}".encode()).hexdigest()[:32]


def generate_pool(out_dir: str | Path, base_url: str, config: PoolConfig | None = None) -> PoolSummary:
    """Write the sample pool into `out_dir` (see the module docstring) and return its summary (the
    default PoolConfig when `config` is None)."""
    config = config or PoolConfig()
    started = time.perf_counter()
    out = Path(out_dir)
    base_url = _check_base_url(base_url)
    counts = config.counts()
    site = out / "site"
    _claim_output(out, site)
    partial = out / "site.partial"
    if partial.exists():
        shutil.rmtree(partial)
    (partial / "img").mkdir(parents=True)

    headers: dict[str, dict[str, str]] = {}
    rows = []
    refs: dict[str, bytes] = {}
    for row, body, extra in _generate_rows(config, counts):
        rows.append(row)
        if body is not None:
            (partial / row.path.lstrip("/")).write_bytes(body)
            if row.defect in ("eval_contaminated", "hash_listed"):
                refs[row.uid] = body
        if extra:
            headers[row.path] = extra
    (partial / HEADERS_FILE).write_text(json.dumps(headers, indent=1, sort_keys=True) + "\n")

    if site.exists():
        shutil.rmtree(site)
    partial.rename(site)
    _write_eval_set(out / EVAL_DIR, rows, refs, config)
    _write_atomic(out / HASH_LIST, _hash_list(rows, refs, config).encode())
    labels = _labels_table(rows, base_url)
    _write_parquet(labels.select(_URLS_SCHEMA.names).cast(_URLS_SCHEMA), out / "urls.parquet")
    _write_parquet(labels, out / "labels.parquet")
    status_counts = {s: sum(n for d, n in counts.items() if EXPECTED_STATUS[d] == s) for s in STATUSES}
    n_groups = len({r.group for r in rows if r.group is not None})
    summary = {
        "schema": SUMMARY_SCHEMA,
        "base_url": base_url,
        "config": asdict(config),
        "counts": counts,
        "status_counts": status_counts,
        "n_groups": n_groups,
        "files": {"site": "site", "headers": f"site/{HEADERS_FILE}", "urls": "urls.parquet",
                  "labels": "labels.parquet", "eval": EVAL_DIR, "hash_list": HASH_LIST},
    }
    _write_atomic(out / SUMMARY_FILE, (json.dumps(summary, indent=2) + "\n").encode())
    logger.info("wrote a pool of %d rows (%d duplicate groups) to %s in %.1fs",
                config.n, n_groups, out, time.perf_counter() - started)
    return read_summary(out)


def read_summary(out_dir: str | Path) -> PoolSummary:
    """Load the summary of a pool written earlier (the demo reuses its base URL and port)."""
    out = Path(out_dir)
    data = json.loads((out / SUMMARY_FILE).read_text())
    if data.get("schema") != SUMMARY_SCHEMA:
        raise ValueError(f"{out / SUMMARY_FILE} is not a {SUMMARY_SCHEMA} summary")
    names = {f.name for f in fields(PoolConfig)}
    config = PoolConfig(**{k: v for k, v in data["config"].items() if k in names})
    files = data["files"]
    return PoolSummary(
        out_dir=out, site_dir=out / files["site"], headers_path=out / files["headers"],
        urls_path=out / files["urls"], labels_path=out / files["labels"], summary_path=out / SUMMARY_FILE,
        eval_dir=out / files.get("eval", EVAL_DIR), hash_list_path=out / files.get("hash_list", HASH_LIST),
        base_url=data["base_url"], config=config, counts=dict(data["counts"]),
        status_counts=dict(data["status_counts"]), n_groups=int(data["n_groups"]),
    )


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"base_url must look like http://host:port[/prefix], got {base_url!r}")
    return base_url.rstrip("/")


def _claim_output(out: Path, site: Path) -> None:
    """Refuse to replace a `site/` folder that an earlier pool did not write."""
    out.mkdir(parents=True, exist_ok=True)
    ours = (out / SUMMARY_FILE).exists() or (site / HEADERS_FILE).exists()
    if site.exists() and not ours and (not site.is_dir() or any(site.iterdir())):
        raise FileExistsError(f"{site} exists and was not written by generate_pool; choose another out_dir")
    (out / SUMMARY_FILE).unlink(missing_ok=True)  # the completion marker goes back last


def _generate_rows(
    config: PoolConfig, counts: dict[str, int]
) -> Iterator[tuple[_Row, bytes | None, dict[str, str]]]:
    """Plan the rows (defects shuffled, duplicate groups drawn), then make each: row, body, headers."""
    plan = random.Random(f"curate-demo-pool/{config.seed}/plan")
    defects = [d for d in DEFECTS for _ in range(counts[d])]
    plan.shuffle(defects)
    uids = [make_uid(config.seed, k) for k in range(config.n)]
    originals = _draw_groups(defects, plan)

    made: dict[int, tuple[_Row, bytes | None]] = {}
    for k, defect in enumerate(defects):
        if defect in COPY_DEFECTS:
            continue
        rng = random.Random(f"curate-demo-pool/{config.seed}/row/{k}")
        group = originals.get(k, (None, None))[0]
        made[k] = _make_row(uids[k], defect, rng, group)
    for k, defect in enumerate(defects):
        if defect in COPY_DEFECTS:
            rng = random.Random(f"curate-demo-pool/{config.seed}/row/{k}")
            group, orig_k = originals[k]
            made[k] = _make_copy(uids[k], defect, made[orig_k], rng, group)
    for k in range(config.n):
        row, body = made[k]
        extra: dict[str, str] = {}
        if row.defect == "opted_out":
            extra["X-Robots-Tag"] = row.detail or "noai"
        elif row.defect == "not_image":
            extra["Content-Type"] = next(ct for name, ct, _ in _NOT_IMAGE_BODIES if name == row.detail)
        yield row, body, extra


def _draw_groups(defects: list[str], rng: random.Random) -> dict[int, tuple[str, int]]:
    """Map each duplicate row and each group original to (group id, index of the original)."""
    clean = [k for k, d in enumerate(defects) if d == "clean"]
    groups: list[list[int]] = []
    for kind in COPY_DEFECTS:
        copies = [k for k, d in enumerate(defects) if d == kind]
        while copies:
            size = min(len(copies), rng.choice((1, 1, 2)))  # groups of two or three rows
            groups.append(copies[:size])
            copies = copies[size:]
    if len(groups) > len(clean):
        raise ValueError(f"{len(groups)} duplicate groups need as many clean rows, only {len(clean)} left")
    picked = rng.sample(clean, len(groups))
    out: dict[int, tuple[str, int]] = {}
    for j, (orig, copies) in enumerate(zip(picked, groups, strict=True)):
        gid = f"g{j:04d}"
        out[orig] = (gid, orig)
        out.update({k: (gid, orig) for k in copies})
    return out


def _make_row(uid: str, defect: str, rng: random.Random, group: str | None) -> tuple[_Row, bytes | None]:
    path = f"/img/{uid}.jpg"
    scene = random_scene(rng)
    if defect in ("http_404", "corrupt", "not_image"):
        caption = content.english(scene, rng)  # a well-formed caption; only the download goes wrong
        if defect == "http_404":
            return _Row(uid, path, caption, defect, "en", detail="missing"), None
        if defect == "not_image":
            name, _, body = rng.choice(_NOT_IMAGE_BODIES)
            return _Row(uid, path, caption, defect, "en", detail=name), body
        jpeg = content.jpeg(scene, content.size(defect, rng), rng)
        detail, body = content.corrupt(jpeg, rng)
        return _Row(uid, path, caption, defect, "en", detail=detail), body

    if defect == "placeholder":  # the host answered 200 with its placeholder instead of the image
        return _Row(uid, path, content.english(scene, rng), defect, "en", size=PLACEHOLDER_SIZE), _PLACEHOLDER
    size = content.size(defect, rng)
    body = content.jpeg(scene, size, rng)
    language, detail = "en", None
    if defect == "mismatched":
        caption = content.english(other_scene(scene, rng), rng)
    elif defect == "non_english":
        language = rng.choice(FOREIGN_LANGUAGES)
        caption = foreign_caption(scene, language, rng)
    elif defect == "short_caption":
        caption = content.short(scene, rng)
    else:
        caption = content.english(scene, rng)
        if defect == "opted_out":
            detail = rng.choice(_OPT_OUT_TAGS)
        elif defect == "hash_listed":
            detail = rng.choice(_HASH_KINDS)
    return _Row(uid, path, caption, defect, language, scene, size, group, detail), body


def _make_copy(
    uid: str, defect: str, original: tuple[_Row, bytes | None], rng: random.Random, group: str
) -> tuple[_Row, bytes | None]:
    orig, body = original
    assert orig.scene is not None and orig.defect == "clean"
    caption = content.english(orig.scene, rng)  # its own caption, matching the shared image
    if defect == "duplicate_image":
        return _Row(uid, f"/img/{uid}.jpg", caption, defect, "en", orig.scene, orig.size, group), body
    if defect == "near_duplicate":
        form, copy = content.near_copy(body, rng)
        with Image.open(io.BytesIO(copy)) as im:
            size = im.size
        return _Row(uid, f"/img/{uid}.jpg", caption, defect, "en", orig.scene, size, group, form), copy
    name, upper, suffix = rng.choice(_URL_FORMS)
    row = _Row(uid, orig.path, caption, defect, "en", orig.scene, orig.size, group, name, upper, suffix)
    return row, None  # served from the original's file


def _write_eval_set(folder: Path, rows: list[_Row], refs: dict[str, bytes], config: PoolConfig) -> None:
    rng = random.Random(f"curate-demo-pool/{config.seed}/eval")
    files = content.eval_set([refs[r.uid] for r in rows if r.defect == "eval_contaminated"], rng)
    partial = folder.with_name(folder.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    for name, body in files.items():
        (partial / name).write_bytes(body)
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)


def _hash_list(rows: list[_Row], refs: dict[str, bytes], config: PoolConfig) -> str:
    rng = random.Random(f"curate-demo-pool/{config.seed}/hashlist")
    return content.hash_list([(r.detail or "sha256", refs[r.uid]) for r in rows if r.defect == "hash_listed"], rng)


_URLS_SCHEMA = pa.schema([("uid", pa.string()), ("url", pa.string()), ("caption", pa.string())])
_LABELS_SCHEMA = pa.schema([
    ("uid", pa.string()), ("url", pa.string()), ("caption", pa.string()), ("defect", pa.string()),
    ("scene_shape", pa.string()), ("scene_color", pa.string()), ("width", pa.int32()),
    ("height", pa.int32()), ("language", pa.string()), ("group", pa.string()),
    ("expected_status", pa.string()), ("detail", pa.string()),
])


def _labels_table(rows: list[_Row], base_url: str) -> pa.Table:
    records = [
        {"uid": r.uid, "url": r.url(base_url), "caption": r.caption, "defect": r.defect,
         "scene_shape": r.scene.shape if r.scene else None, "scene_color": r.scene.color if r.scene else None,
         "width": r.size[0] if r.size else None, "height": r.size[1] if r.size else None,
         "language": r.language, "group": r.group, "expected_status": EXPECTED_STATUS[r.defect],
         "detail": r.detail}
        for r in rows
    ]
    return pa.Table.from_pylist(records, schema=_LABELS_SCHEMA)


def _write_parquet(table: pa.Table, path: Path) -> None:
    buf = pa.BufferOutputStream()
    pq.write_table(table, buf, compression="zstd")
    _write_atomic(path, buf.getvalue().to_pybytes())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
