"""YAML → frozen dataclasses: nested, tuples from lists, strict keys, one-line errors."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from curate.config import from_mapping, load_yaml, to_mapping
from curate.errors import CurateError


@dataclass(frozen=True)
class Inner:
    model: str = "tiny"
    threads: int = 1


@dataclass(frozen=True)
class Outer:
    input: str
    inner: Inner = field(default_factory=Inner)
    hosts: tuple[str, ...] = ()
    fraction: float | None = 0.3
    flag: bool = True


def test_nested_tuples_and_defaults():
    cfg = from_mapping(Outer, {"input": "s3://b/x", "inner": {"threads": 4}, "hosts": ["a", "b"], "fraction": 1})
    assert cfg == Outer(input="s3://b/x", inner=Inner(threads=4), hosts=("a", "b"), fraction=1.0)
    assert isinstance(cfg.fraction, float) and isinstance(cfg.hosts, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.input = "y"  # type: ignore[misc]


def test_null_for_optional_and_round_trip():
    cfg = from_mapping(Outer, {"input": "x", "fraction": None})
    assert cfg.fraction is None
    assert from_mapping(Outer, to_mapping(cfg)) == cfg


def test_unknown_key_names_it_and_lists_valid_ones():
    with pytest.raises(CurateError) as exc:
        from_mapping(Outer, {"input": "x", "inner": {"modle": "b"}})
    msg = str(exc.value)
    assert "inner.modle" in msg and "model, threads" in msg and "\n" not in msg


@pytest.mark.parametrize("data, where", [
    ({}, "input: required"),
    ({"input": 3}, "input: expected a string"),
    ({"input": "x", "flag": "yes"}, "flag: expected true or false"),
    ({"input": "x", "inner": {"threads": 1.5}}, "inner.threads: expected an integer"),
    ({"input": "x", "inner": [1]}, "inner: expected a mapping"),
])
def test_bad_values_are_one_line_errors(data, where):
    with pytest.raises(CurateError, match=where):
        from_mapping(Outer, data)


def test_numeric_strings_from_yaml_1_1(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("input: x\nfraction: 3e-1\ninner:\n  threads: 1e1\n")
    cfg = from_mapping(Outer, load_yaml(str(path)))
    assert cfg.fraction == pytest.approx(0.3) and cfg.inner.threads == 10


def test_load_yaml_errors(tmp_path):
    with pytest.raises(CurateError, match="not found"):
        load_yaml(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(CurateError, match="not valid YAML"):
        load_yaml(str(bad))
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n")
    with pytest.raises(CurateError, match="must be a mapping"):
        load_yaml(str(lst))


def test_real_stage_configs_from_the_example_yaml():
    """Every section of jobs/configs/*.yaml builds its stage's real config."""
    from pathlib import Path

    from curate.dedup.run import DedupConfig
    from curate.download.config import DownloadConfig
    from curate.score.run import ScoreConfig
    from curate.select.run import SelectConfig
    from curate.shard.run import ShardConfig

    classes = {"download": DownloadConfig, "dedup": DedupConfig, "score": ScoreConfig,
               "select": SelectConfig, "shard": ShardConfig}
    files = sorted((Path(__file__).parents[2] / "jobs" / "configs").glob("*.yaml"))
    assert files
    for path in files:
        data = load_yaml(str(path))
        for section, cls in classes.items():
            if section in data:
                assert isinstance(from_mapping(cls, data[section], where=section), cls)
    score = from_mapping(ScoreConfig, load_yaml(str(files[-1]))["score"])
    assert score.clip.device == "cuda" and score.clip_actors == 8
