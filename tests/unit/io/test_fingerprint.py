"""`_fingerprint.json`: a finished stage rerun with the same configuration and inputs is a no-op, with other
ones a one-line error naming what differs; `--redo` removes the stage and the later ones."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import pytest

from curate.cli import main as cli_main
from curate.errors import CurateError
from curate.io import fingerprint, lock
from curate.io.stagedir import StageDir


@dataclass(frozen=True)
class Inner:
    model: str = "tiny"
    threads: int = field(default=1, metadata={"fingerprint": False})


@dataclass(frozen=True)
class Cfg:
    fraction: float | None = 0.3
    lists: tuple[str, ...] = ()
    inner: Inner = field(default_factory=Inner)
    batch_size: int = field(default=64, metadata={"fingerprint": False})


def _finish(run: str, name: str, config, stats: dict | None = None) -> dict:
    sd, finished = StageDir.start(run, name, config=config)
    assert finished is None
    stats = stats or {"stage": name, "kept": 3}
    sd.finish(stats)
    return stats


def test_same_configuration_is_a_no_op_returning_the_old_stats(tmp_path):
    run = str(tmp_path)
    stats = _finish(run, "select", Cfg())
    before = (tmp_path / "select" / "_fingerprint.json").read_bytes()
    # fields that only change how it runs are left out, also inside nested configs
    again = Cfg(batch_size=8, inner=Inner(threads=16))
    assert StageDir.start(run, "select", config=again) == (StageDir(run, "select"), stats)
    assert StageDir.finished(run, "select", again) == stats
    assert (tmp_path / "select" / "_fingerprint.json").read_bytes() == before
    assert not (tmp_path / "select" / lock.LOCK).exists()
    record = json.loads(before)
    assert record["config"] == {"fraction": 0.3, "lists": [], "inner": {"model": "tiny"}}
    assert str(tmp_path) not in before.decode()  # no run path: a copied run keeps its fingerprints


def test_changed_configuration_names_the_fields_with_old_and_new_values(tmp_path):
    run = str(tmp_path)
    _finish(run, "select", Cfg())
    with pytest.raises(CurateError) as err:
        StageDir.start(run, "select", config=Cfg(fraction=0.5, inner=Inner(model="ViT-L-14:openai")))
    text = str(err.value)
    assert "\n" not in text and text.startswith("select: ")
    assert "fraction: 0.3 -> 0.5" in text and 'inner.model: "tiny" -> "ViT-L-14:openai"' in text
    assert "--redo" in text and "later stages (shard)" in text
    with pytest.raises(CurateError, match=r'lists: \[\] -> \["a.txt"\]'):
        StageDir.finished(run, "select", Cfg(lists=("a.txt",)))


def test_an_earlier_stage_that_changed_makes_the_later_one_refuse(tmp_path):
    run = str(tmp_path)
    _finish(run, "score", Cfg())
    _finish(run, "select", Cfg())
    assert set(json.loads((tmp_path / "select" / "_fingerprint.json").read_text())["inputs"]) == {"score"}
    (tmp_path / "score" / "_stats.json").write_text(json.dumps({"stage": "score", "kept": 4}))  # score rerun
    with pytest.raises(CurateError, match="select: .* inputs changed: score"):
        StageDir.start(run, "select", config=Cfg())


def test_a_stage_finished_before_fingerprints_stays_a_no_op(tmp_path, caplog):
    (tmp_path / "select").mkdir()
    (tmp_path / "select" / "_stats.json").write_text('{"stage": "select"}')
    (tmp_path / "select" / "_SUCCESS").write_bytes(b"")
    with caplog.at_level(logging.INFO, logger="curate.io.fingerprint"):
        assert StageDir.start(str(tmp_path), "select", config=Cfg(fraction=0.9))[1] == {"stage": "select"}
    assert "before configurations were recorded" in caplog.text
    assert not (tmp_path / "select" / "_fingerprint.json").exists()


def test_shipped_configs_leave_out_their_runtime_fields():
    from curate.download.config import DownloadConfig
    from curate.extract.config import ExtractConfig
    from curate.score.config import ClipConfig, ScoreConfig
    from curate.select.run import SelectConfig

    canon = fingerprint.canonical
    assert canon(SelectConfig(engine="local")) == canon(SelectConfig(engine="spark"))
    assert canon(SelectConfig(clip_fraction=0.5)) != canon(SelectConfig())
    assert canon(ScoreConfig(clip_batch_size=8, clip_actors=4, clip=ClipConfig(threads=8))) == canon(ScoreConfig())
    assert canon(ScoreConfig(clip=ClipConfig(decoder="simplejpeg"))) != canon(ScoreConfig())
    assert canon(DownloadConfig(input="x", threads=8, retry_failed=True)) == canon(DownloadConfig(input="x"))
    assert canon(DownloadConfig(input="x", timeout=3)) != canon(DownloadConfig(input="x"))
    as_float, as_int = DownloadConfig(input="x", timeout=5.0), DownloadConfig(input="x", timeout=5)
    assert json.dumps(canon(as_float)) == json.dumps(canon(as_int))  # a flag parsed as float: the same bytes
    assert canon(ExtractConfig(input="x", files_per_task=9)) == canon(ExtractConfig(input="x"))


def _layout(tmp_path) -> None:
    for name in ("pool", *fingerprint.STAGES, *fingerprint.OUTPUTS):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.parquet").write_bytes(b"x")


def test_redo_removes_the_stage_and_the_later_ones_only(tmp_path, capsys, caplog):
    _layout(tmp_path)
    with caplog.at_level(logging.INFO, logger="curate.io.fingerprint"):
        # score has no _SUCCESS here: after --redo removed its folders, select stops at that one-line error
        assert cli_main(["select", str(tmp_path), "--engine", "local", "--redo"]) == 2
    assert "score is not complete" in capsys.readouterr().err
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["dedup", "download", "extract", "pool", "score"]
    assert "--redo removed" in caplog.text and str(tmp_path / "shard") in caplog.text


def test_redo_refuses_to_remove_a_folder_another_run_holds(tmp_path):
    _layout(tmp_path)
    (tmp_path / "shard" / lock.LOCK).write_text(json.dumps({"owner": "ann", "host": "elsewhere", "pid": 7}))
    with pytest.raises(CurateError, match=r"--redo would remove .*shard, which is locked by another run: ann"):
        fingerprint.redo(str(tmp_path), "score")
    assert (tmp_path / "score").exists()
    removed = fingerprint.redo(str(tmp_path), "score", force=True)
    assert removed == ["score", "select", "shard", "audit", "report", "export"]


def test_cli_changed_configuration_is_one_line_and_the_same_one_prints_the_old_stats(tmp_path, capsys):
    from curate.select.run import SelectConfig

    stats = _finish(str(tmp_path), "select", SelectConfig(engine="local"))
    assert cli_main(["select", str(tmp_path), "--engine", "local"]) == 0
    assert json.loads(capsys.readouterr().out) == stats
    assert cli_main(["select", str(tmp_path), "--engine", "local", "--clip-fraction", "0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("curate: error: select: ") and "\n" not in err
    assert "clip_fraction: 0.3 -> 0.5" in err and "--redo" in err


@dataclass(frozen=True)
class FileCfg:
    policy: str | None = field(default=None, metadata={"files": True})
    lists: tuple[str, ...] = field(default=(), metadata={"files": True})


def test_input_files_are_fingerprinted_by_content_not_only_by_path(tmp_path):
    """An edited policy YAML or hash list under the same path is a changed configuration; a shipped policy's
    name (nothing at that path) stays a plain value."""
    import hashlib

    run, policy, lists = str(tmp_path / "run"), tmp_path / "p.yaml", tmp_path / "lists"
    policy.write_text("name: mine\nsteps: [{clip_score: {fraction: 0.3}}]\n")
    lists.mkdir()
    (lists / "a.txt").write_text("0" * 64 + "\n")
    config = FileCfg(policy=str(policy), lists=(str(lists),))
    _finish(run, "select", config)
    record = json.loads((tmp_path / "run" / "select" / "_fingerprint.json").read_text())
    want = hashlib.sha256(f"\0{policy.stat().st_size}\0".encode() + policy.read_bytes()).hexdigest()
    assert record["config"]["policy"] == {"path": str(policy), "content": want}
    assert StageDir.finished(run, "select", config) is not None  # unchanged files: the same fingerprint
    (lists / "a.txt").write_text("1" * 64 + "\n")  # same size, other bytes
    with pytest.raises(CurateError, match=r"lists\.0\.content: "):
        StageDir.start(run, "select", config=config)
    (lists / "a.txt").write_text("0" * 64 + "\n")
    policy.write_text("name: mine\nsteps: [{clip_score: {fraction: 0.4}}]\n")
    with pytest.raises(CurateError, match=r"policy\.content: "):
        StageDir.start(run, "select", config=config)
    assert fingerprint.canonical(FileCfg(policy="datacomp")) == {
        "policy": {"path": "datacomp", "content": None}, "lists": []}
