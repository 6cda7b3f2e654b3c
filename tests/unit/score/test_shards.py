"""The score stage's data plane without Ray: descriptors from listings, the shard reader (kept rows only,
their images from the tar), pieces and the commit that writes a shard's outputs."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.score.shards import (
    PIECES,
    SHARD_ROWS,
    PieceWriter,
    ShardCommit,
    count_scores,
    plan,
    read_shard,
    write_shard,
)
from curate.score.synthetic import SyntheticRun, make_run

POOL = SyntheticRun(n=40, shards=4, corrupt=1, reject_every=3, failed_shards=1, seed=2)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, pa.Table]:
    root = tmp_path_factory.mktemp("run")
    return root, make_run(str(root), POOL)


def test_plan_has_one_descriptor_per_shard_with_decisions(run):
    root, _ = run
    items = plan(str(root))
    # 4 shards of 10; the last failed to download, so dedup wrote no decisions part for it
    assert [it["shard"] for it in items] == ["00000.tar", "00001.tar", "00002.tar"]
    assert items[1] == {"shard": "00001.tar", "tar": f"{root}/download/shards/00001.tar",
                        "samples": f"{root}/download/samples/00001.parquet",
                        "decisions": f"{root}/dedup/decisions/00001.parquet"}


def test_reader_returns_the_kept_rows_sorted_by_key_with_their_tar_images(run):
    root, labels = run
    for item in plan(str(root)):
        rows = read_shard(item)
        mine = labels.filter(pc.equal(labels.column("shard"), item["shard"]))
        # every 3rd sample (i = 2, 5, 8, ...) was rejected by dedup; the rest of the shard reaches scoring
        i0 = int(item["shard"][:5]) * 10
        want = sorted(f"{item['shard'][:5]}{i:06d}" for i in range(i0, i0 + 10) if i % 3 != 2)
        assert rows.column("key").to_pylist() == want
        assert set(rows.column("uid").to_pylist()) == set(mine.filter(mine.column("scored")).column("uid").to_pylist())
        assert rows.column(SHARD_ROWS).to_pylist() == [len(want)] * len(want)
        with tarfile.open(item["tar"]) as tar:
            for key, image, caption in zip(*(rows.column(c).to_pylist() for c in ("key", "image", "caption")),
                                           strict=True):
                ext = "png" if f"{key}.png" in tar.getnames() else "jpg"
                assert image == tar.extractfile(f"{key}.{ext}").read()
                assert caption == tar.extractfile(f"{key}.txt").read().decode()


def test_reader_errors_name_the_tar(run, tmp_path):
    root, _ = run
    item = {**plan(str(root))[0], "tar": str(tmp_path / "gone.tar")}
    with pytest.raises(CurateError, match=r"gone\.tar is missing"):
        read_shard(item)
    empty = tmp_path / "empty.tar"
    with tarfile.open(empty, "w"):
        pass
    with pytest.raises(CurateError, match=r"empty\.tar lacks images for keys \['00000000000'"):
        read_shard({**item, "tar": str(empty)})


def _scored(rows: pa.Table) -> pa.Table:
    """What the model stages add, made up: a status, a score and a language per row."""
    n = rows.num_rows
    return (rows.drop_columns(["image"]).append_column("status", pa.array(["ok"] * (n - 1) + ["decode_error"]))
            .append_column("error", pa.array([None] * (n - 1) + ["bad"], pa.string()))
            .append_column("clip_similarity", pa.array([0.25 * i for i in range(n)], pa.float32()))
            .append_column("language", pa.array(["en"] * n)).append_column("language_score", pa.array([0.5] * n)))


META = {"models": [{"alias": "tiny", "name": "tiny", "pretrained": "", "revision": "r", "embeddings": None,
                    "columns": ["clip_similarity"]}], "probes": []}


def test_pieces_in_any_batching_commit_to_the_bytes_of_the_whole_shard(run, tmp_path):
    root, _ = run
    rows = _scored(read_shard(plan(str(root))[0]))
    n = rows.num_rows
    ref = tmp_path / "ref"
    write_shard(str(ref), "00000.tar", rows, META)
    score = tmp_path / "score"
    writer = PieceWriter(str(score))
    shuffled = rows.take(pa.array([4, 1, 6, 0, 2, 5, 3]))  # out of order, in three batches of different sizes
    stats = [writer(shuffled.slice(s, k)) for s, k in ((0, 3), (3, 1), (4, n - 4))]
    assert sum(sum(t.column("rows").to_pylist()) for t in stats) == n
    assert {e for t in stats for e in t.column("expected").to_pylist()} == {n}
    assert len([p for p in (score / PIECES / "00000").iterdir() if p.is_file()]) == 3  # beside them: _sums/
    result = ShardCommit(str(score), META)({"shard": "00000.tar", "expected": n})
    assert result == {"shards": 1, "rows_in": n, "kept": n - 1, "rejected": {"decode_error": 1}}
    assert (score / "scores" / "00000.parquet").read_bytes() == (ref / "scores" / "00000.parquet").read_bytes()
    assert not (score / PIECES / "00000").exists()
    assert count_scores(str(score / "scores" / "00000.parquet")) == result


def test_a_commit_short_of_rows_fails_and_writes_nothing(run, tmp_path):
    root, _ = run
    rows = _scored(read_shard(plan(str(root))[0]))
    PieceWriter(str(tmp_path))(rows.slice(0, 3))
    with pytest.raises(CurateError, match=r"00000\.tar: 3 rows in its pieces, expected 7; rerun to resume"):
        ShardCommit(str(tmp_path), META)({"shard": "00000.tar", "expected": 7})
    assert not (tmp_path / "scores").exists()


def test_pieces_keep_no_captions(run, tmp_path):
    root, _ = run
    rows = _scored(read_shard(plan(str(root))[0]))
    PieceWriter(str(tmp_path))(rows)
    piece = next((tmp_path / PIECES / "00000").glob("*.parquet"))
    names = pq.read_schema(io.BytesIO(piece.read_bytes())).names
    assert "caption" not in names and SHARD_ROWS not in names and "uid" in names


def test_commit_counts_the_jpegs_nvjpeg_refused(run, tmp_path):
    from curate.score.stages import GPU_FALLBACK

    root, _ = run
    rows = _scored(read_shard(plan(str(root))[0]))
    flags = [i in (1, 4) for i in range(rows.num_rows)]
    PieceWriter(str(tmp_path))(rows.append_column(GPU_FALLBACK, pa.array(flags)))
    stats = ShardCommit(str(tmp_path), META)({"shard": "00000.tar", "expected": rows.num_rows})
    assert stats["gpu_decode_fallbacks"] == 2
    assert GPU_FALLBACK not in pq.read_schema(tmp_path / "scores" / "00000.parquet").names
