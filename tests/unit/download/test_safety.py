"""Safety before a byte is stored, against the loopback server: a body on a hash list (md5, sha1, sha256, a pHash
or a PDQ hash within distance) is never written anywhere in the run, only its sha256 and the status; face boxes
are blurred before writing, exactly there and nowhere else."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from curate.dedup import phash
from curate.download.config import DownloadConfig
from curate.download.faces import blur_region
from curate.download.run import run_download
from curate.engines.local import LocalEngine

from .conftest import jpeg, noise_png


def _flip(hex_hash: str, bits: int) -> str:
    """`hex_hash` with its lowest `bits` bits flipped: exactly that Hamming distance away."""
    n = len(hex_hash) * 4
    return f"{int(hex_hash, 16) ^ ((1 << bits) - 1):0{n // 4}x}"


def _run(tmp_path, server, urls: list[str], extra: dict | None = None, name: str = "run", **kw):
    table = {"url": urls, "caption": [f"c{i}" for i in range(len(urls))], **(extra or {})}
    pq.write_table(pa.table(table), tmp_path / f"{name}.parquet")
    config = DownloadConfig(input=str(tmp_path / f"{name}.parquet"), shard_size=4, threads=4, timeout=5, deadline=5,
                            allow_addresses=(f"127.0.0.1:{server.port}",), **kw)
    stats = run_download(LocalEngine(), str(tmp_path / name), config)
    rows = {r["url"]: r for r in pq.read_table(tmp_path / name / "download" / "samples").to_pylist()}
    return stats, rows


def _members(run: Path) -> dict[str, bytes]:
    out = {}
    for tar in sorted((run / "download" / "shards").glob("*.tar")):
        with tarfile.open(tar) as t:
            out.update({m.name: t.extractfile(m).read() for m in t if m.isfile()})
    return out


def test_listed_bodies_are_never_written(bad_server, tmp_path):
    b = bad_server.base
    pd_near, pd_far = noise_png("/png/pdq-near.png"), noise_png("/png/pdq-far.png")
    ph_near = noise_png("/png/phash-near.png")
    listed = {f"{b}/img/m.jpg": jpeg("/img/m.jpg"), f"{b}/img/s1.jpg": jpeg("/img/s1.jpg"),
              f"{b}/img/s2.jpg": jpeg("/img/s2.jpg"), f"{b}/png/pdq-near.png": pd_near,
              f"{b}/png/phash-near.png": ph_near}
    (tmp_path / "exact.csv").write_text(
        "md5,sha1\n" f"{hashlib.md5(jpeg('/img/m.jpg')).hexdigest()},{hashlib.sha1(jpeg('/img/s1.jpg')).hexdigest()}\n")
    pdq_near = phash.pdq_bytes(pd_near)
    (tmp_path / "perceptual.txt").write_text(
        f"# a PDQ entry 20 bits from one served image, one 40 bits from another (over Meta's 31)\n"
        f"pdq:{_flip(pdq_near, 20)}\npdq:{_flip(phash.pdq_bytes(pd_far), 40)}\n"
        f"{_flip(phash.phash_bytes(ph_near), 2)}\n")
    pq.write_table(pa.table({"sha256": [hashlib.sha256(jpeg("/img/s2.jpg")).hexdigest()]}), tmp_path / "sha.parquet")
    kept = [f"{b}/img/ok-{i}.jpg" for i in range(3)] + [f"{b}/png/pdq-far.png", f"{b}/png/other.png"]
    urls = list(listed) + kept
    lists = tuple(str(tmp_path / n) for n in ("exact.csv", "perceptual.txt", "sha.parquet"))
    stats, rows = _run(tmp_path, bad_server, urls, hash_lists=lists)

    assert {u for u, r in rows.items() if r["status"] == "safety_hash_list"} == set(listed)
    assert all(rows[u]["status"] == "success" for u in kept)
    assert stats["rejected"] == {"safety_hash_list": 5} and stats["checks"]["hash_lists"] == list(lists)
    assert stats["checks"]["hash_list_pdq_distance"] == 31
    why = {u: rows[u]["error"] for u in listed}
    assert "md5" in why[f"{b}/img/m.jpg"] and "sha1" in why[f"{b}/img/s1.jpg"]
    assert "sha256" in why[f"{b}/img/s2.jpg"] and "phash is within 2 bits" in why[f"{b}/png/phash-near.png"]
    assert "pdq is within 20 bits" in why[f"{b}/png/pdq-near.png"]
    for url, body in listed.items():  # only the hash and the reason are kept of a listed body
        row = rows[url]
        assert row["sha256"] == hashlib.sha256(body).hexdigest()
        assert row["shard"] is None and row["key"] is None and row["width"] is None
    # no file of the run holds a listed body, nor its md5 or sha1 (tars are uncompressed: bytes appear as is)
    run = tmp_path / "run"
    files = [p for p in run.rglob("*") if p.is_file()]
    assert any(p.suffix == ".tar" for p in files) and not (run / "download" / "_raw").exists()
    for path in files:
        data = path.read_bytes()
        for body in listed.values():
            assert body not in data, path
            assert hashlib.md5(body).hexdigest().encode() not in data, path
    members = _members(run)
    assert len([n for n in members if n.endswith((".jpg", ".png"))]) == len(kept)
    assert not {hashlib.sha256(d).hexdigest() for d in members.values()} & {
        hashlib.sha256(x).hexdigest() for x in listed.values()}


def test_pdq_distance_is_the_named_threshold(bad_server, tmp_path):
    body = noise_png("/png/edge.png")
    pq.write_table(pa.table({"pdq": [_flip(phash.pdq_bytes(body), 12)]}), tmp_path / "pdq.parquet")
    url = f"{bad_server.base}/png/edge.png"
    _, rows = _run(tmp_path, bad_server, [url], hash_lists=(str(tmp_path / "pdq.parquet"),))
    assert rows[url]["status"] == "safety_hash_list"
    _, rows = _run(tmp_path, bad_server, [url], name="tight", hash_lists=(str(tmp_path / "pdq.parquet"),),
                   hash_list_pdq_distance=11)
    assert rows[url]["status"] == "success"


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_faces_are_blurred_exactly_in_their_boxes(bad_server, tmp_path):
    b = bad_server.base
    boxes = [[[0.1, 0.2, 0.3, 0.5], [0.6, 0.1, 0.7, 0.3]], None]
    urls = [f"{b}/png/face.png", f"{b}/png/noface.png"]
    table = {"uid": ["a" * 32, "b" * 32], "url": urls, "text": ["x", "y"],
             "face_bboxes": pa.array(boxes, pa.list_(pa.list_(pa.float64())))}
    pq.write_table(pa.table(table), tmp_path / "dc.parquet")
    # the datacomp preset blurs by default, as DataComp's downloader does; png keeps every pixel exact
    config = DownloadConfig(input=str(tmp_path / "dc.parquet"), preset="datacomp", encode_format="png",
                            shard_size=4, threads=2, timeout=5, deadline=5,
                            allow_addresses=(f"127.0.0.1:{bad_server.port}",))
    stats = run_download(LocalEngine(), str(tmp_path / "run"), config)
    assert stats["kept"] == 2 and stats["checks"]["blur_faces"] is True
    samples = {r["uid"]: r for r in pq.read_table(tmp_path / "run" / "download" / "samples").to_pylist()}
    members = _members(tmp_path / "run")
    out = {uid: next(d for n, d in members.items() if n.startswith(samples[uid]["key"] + ".png"))
           for uid in samples}
    assert out["b" * 32] == noise_png("/png/noface.png")  # no boxes: the served bytes, untouched
    before, after = _pixels(noise_png("/png/face.png")), _pixels(out["a" * 32])
    h, w = before.shape[:2]
    grown, kernel, _ = blur_region(w, h, boxes[0])
    reach = np.zeros((h, w), dtype=bool)  # the grown boxes, widened by the soft mask's half kernel
    for x0, y0, x1, y1 in grown:
        r = kernel // 2
        reach[max(0, y0 - r):y1 + r, max(0, x0 - r):x1 + r] = True
    changed = (before != after).any(axis=2)
    assert not changed[~reach].any()  # outside the boxes every pixel is exactly as served
    for x0, y0, x1, y1 in boxes[0]:
        inside = changed[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)]
        assert inside.mean() > 0.95  # inside each box: blurred (noise flattens)
        region = after[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)].astype(float)
        assert region.std() < 0.5 * before[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)].std()
    meta = json.loads(next(d for n, d in members.items() if n == samples["a" * 32]["key"] + ".json"))
    assert meta["status"] == "success"


def test_blur_faces_off_keeps_the_served_bytes(bad_server, tmp_path):
    url = f"{bad_server.base}/png/face.png"
    table = {"uid": ["a" * 32], "url": [url], "text": ["x"], "face_bboxes": ["[[0.1,0.2,0.3,0.5]]"]}
    pq.write_table(pa.table(table), tmp_path / "dc.parquet")
    config = DownloadConfig(input=str(tmp_path / "dc.parquet"), preset="datacomp", blur_faces=False,
                            encode_format="png", shard_size=4, threads=2, timeout=5, deadline=5,
                            allow_addresses=(f"127.0.0.1:{bad_server.port}",))
    stats = run_download(LocalEngine(), str(tmp_path / "run"), config)
    assert stats["checks"]["blur_faces"] is False
    images = [d for n, d in _members(tmp_path / "run").items() if not n.endswith((".json", ".txt"))]
    assert images == [noise_png("/png/face.png")]
