import io
import json
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curate.errors import CurateError
from curate.shard.loader import PlannedStream, torch_dataset
from curate.shard.run import ShardConfig, run_shard
from curate.shard.synthetic import SyntheticRun, make_run

PLAN = dict(samples_per_shard=40, samples_seen=150, seed=5)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The same weighted plan served both ways: (materialised shard dir, streamed shard dir)."""
    root = tmp_path_factory.mktemp("loader")
    out = []
    for mode in ("materialised", "streamed"):
        make_run(str(root / mode), SyntheticRun(weights=True))
        run_shard(str(root / mode), ShardConfig(repetition=mode, **PLAN))
        out.append(str(root / mode / "shard"))
    return out


def _planned(shard_dir):
    """uid -> its planned count, from every manifest part (materialised: a row per copy; streamed: one)."""
    parts = sorted((Path(shard_dir) / "manifest").glob("part-*.parquet"))
    assert parts
    out = {}
    for p in parts:
        m = pq.read_table(p, columns=["uid", "repetition"])
        out.update(zip(m.column("uid").to_pylist(), m.column("repetition").to_pylist(), strict=True))
    return out


@pytest.mark.parametrize("mode", [0, 1])
@pytest.mark.parametrize(("ranks", "workers"), [(1, 1), (2, 3), (4, 2)])
def test_all_ranks_and_workers_see_each_uid_its_count_without_overlap(both, mode, ranks, workers):
    shard_dir = both[mode]
    seen, positions = Counter(), []
    for r in range(ranks):
        stream = PlannedStream(shard_dir, rank=r, world_size=ranks, files=False)
        mine = [i for w in range(workers) for i in stream.items(w, workers)]
        assert len(mine) == len(stream.indices(0, 1))
        positions += [i["__index__"] for i in mine]
        seen.update(i["uid"] for i in mine)
    assert sorted(positions) == list(range(150))  # every position once: no overlap, nothing lost
    assert dict(seen) == _planned(shard_dir)


def test_materialised_and_streamed_give_the_same_stream(both):
    mat = [(i["uid"], i["copy"], i["jpg"]) for i in PlannedStream(both[0])]
    stre = [(i["uid"], i["copy"], i["jpg"]) for i in PlannedStream(both[1])]
    assert mat == stre and len(mat) == 150
    # the materialised tars hold exactly that stream, in order, each copy under its own key
    names, uids = [], []
    for tar in sorted(Path(both[0]).glob("*.tar")):
        with tarfile.open(tar) as t:
            for m in t:
                if m.name.endswith(".json"):
                    names.append(m.name)
                    uids.append(json.load(t.extractfile(m))["uid"])
    assert uids == [u for u, _, _ in mat] and len(set(names)) == 150


@pytest.mark.parametrize("mode", [0, 1])
def test_resuming_from_an_index_continues_the_same_stream(both, mode):
    """`start` counts the samples the whole job consumed, ranks in lockstep: rank r of R had consumed the
    job's samples j < start with j mod R = r, and goes on with the next of its own."""
    for ranks, rank in ((2, 1), (2, 0), (3, 2)):
        full = list(PlannedStream(both[mode], rank=rank, world_size=ranks, files=False))
        for start in (0, 1, 37, 38, 149, 150, 400):
            consumed = len(range(rank, start, ranks))
            resumed = list(PlannedStream(both[mode], rank=rank, world_size=ranks, start=start, files=False))
            assert resumed == full[consumed:], (ranks, rank, start)


def test_items_carry_the_stored_files(both):
    item = next(iter(PlannedStream(both[1])))
    assert set(item) >= {"jpg", "txt", "json", "__key__", "uid"}
    assert json.loads(item["json"])["uid"] == item["uid"]
    from PIL import Image

    assert Image.open(io.BytesIO(item["jpg"])).size == (32, 32)


def test_bad_rank_and_unfinished_folder_are_errors(both, tmp_path):
    with pytest.raises(CurateError, match="rank 2"):
        PlannedStream(both[0], rank=2, world_size=2)
    with pytest.raises(CurateError, match="not a finished shard folder"):
        PlannedStream(str(tmp_path))


def test_torch_dataloader_workers_split_the_stream(both):
    torch = pytest.importorskip("torch")
    ds = torch_dataset(PlannedStream(both[1], files=False))
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2,
                                         multiprocessing_context="fork")
    got = sorted(i["__index__"] for i in loader)
    assert got == list(range(150)) and len(ds) == 150


@pytest.mark.parametrize("mode", [0, 1])
def test_each_rank_and_worker_reads_only_its_own_parts(both, mode, monkeypatch):
    from curate.io import dataset

    read, real = [], dataset.read_part

    def spy(path, *args, **kwargs):
        read.append(str(path).replace("\\", "/").rsplit("/", 2)[-2:])
        return real(path, *args, **kwargs)

    monkeypatch.setattr(dataset, "read_part", spy)
    folder = ["manifest", "stream"][mode]  # materialised: the manifest is the stream
    blocks = 4  # 150 positions in blocks of 40
    for rank in range(2):
        for worker in range(2):
            read.clear()
            n = sum(1 for _ in PlannedStream(both[mode], rank=rank, world_size=2, files=False).items(worker, 2))
            want = [k for k in range(blocks) if k % 4 == worker * 2 + rank]  # K mod R·W = w·R + r
            assert read == [[folder, f"part-{k:05d}.parquet"] for k in want]
            assert n == sum(min(40, 150 - 40 * k) for k in want)
