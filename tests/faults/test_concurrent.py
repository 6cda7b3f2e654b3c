"""Two real `curate shard` (and `curate select`) processes on the same run, started together, with equal and
with different options. The only outcomes allowed: one wins and the other fails with a one-line lock error
naming the holder; or the second starts after the first finished (equal options: a no-op success; other
options: the one-line fingerprint error offering --redo). Either way the folder equals an uninterrupted run
with the winner's options, and `curate verify` passes."""

from __future__ import annotations

import pytest

from .harness import Launch, Result, after, copy_upstream, diff, digest, record, run_curate, stage_args

OPTIONS = {  # stage: (the baseline's options, other options)
    "shard": ((), ("--samples-per-shard", "3")),
    "select": ((), ("--clip-threshold", "0.6")),
}


@pytest.fixture(scope="module")
def references(baseline, pool, scratch, tmp_path_factory) -> dict:
    """(stage, options) -> digest of an uninterrupted run of the stage with those options."""
    refs = {}
    for stage, (same, other) in OPTIONS.items():
        refs[stage, same] = digest(after(baseline, stage) / stage)
        run = tmp_path_factory.mktemp(f"ref-{stage}") / "run"
        copy_upstream(baseline, run, stage)
        result = run_curate(stage_args(stage, run, pool, *other), scratch)
        assert result.rc == 0, result.stderr[-3000:]
        refs[stage, other] = digest(run / stage)
        assert refs[stage, other] != refs[stage, same]
    return refs


def outcome(first: Result, second: Result, equal: bool) -> tuple[str, int]:
    """What happened, and which launch won (0 or 1); fails on anything not allowed."""
    results = (first, second)
    ok = [i for i, r in enumerate(results) if r.rc == 0]
    for r in results:
        assert "Traceback" not in r.stderr, r.stderr[-3000:]
    if len(ok) == 2:
        assert equal, "both runs with different options succeeded"
        return "both succeeded (one a no-op or waited out)", 0
    assert len(ok) == 1, f"neither succeeded: {first.last_line!r} / {second.last_line!r}"
    loser = results[1 - ok[0]]
    assert loser.rc == 2 and loser.last_line.startswith("curate: error:"), loser.stderr[-3000:]
    if "is locked by another run" in loser.last_line:
        assert " pid " in loser.last_line, loser.last_line  # names the holder
        return "one won, the other refused by the lock", ok[0]
    assert not equal and "finished with another configuration" in loser.last_line, loser.last_line
    assert "--redo" in loser.last_line
    return "one finished first, the other refused by its fingerprint", ok[0]


def race(stage: str, tries: int, equal: bool, fresh_run, references, pool, scratch) -> list[str]:
    same, other = OPTIONS[stage]
    seen = []
    for i in range(tries):
        run = fresh_run(stage, f"run{i}")
        options = (same, same if equal else other)
        launches = [Launch(stage_args(stage, run, pool, *opts), scratch) for opts in options]
        first, second = (launch.wait() for launch in launches)
        what, winner = outcome(first, second, equal)
        seen.append(what)
        got = digest(run / stage)
        want = references[stage, options[winner]]
        assert got == want, f"{what}: {diff(got, want)}"
        check = run_curate(["verify", str(run)], scratch)
        assert check.rc == 0, check.stderr[-3000:]
    record(f"concurrent, {'equal' if equal else 'other'} options", stage, seen)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("equal", (True, False), ids=("equal-options", "other-options"))
@pytest.mark.parametrize("stage", tuple(OPTIONS))
def test_concurrent_runs_leave_one_winner(stage, equal, fresh_run, references, pool, scratch):
    race(stage, 2, equal, fresh_run, references, pool, scratch)


@pytest.mark.long
@pytest.mark.parametrize("equal", (True, False), ids=("equal-options", "other-options"))
@pytest.mark.parametrize("stage", tuple(OPTIONS))
def test_concurrent_runs_leave_one_winner_long(stage, equal, fresh_run, references, pool, scratch):
    race(stage, 10, equal, fresh_run, references, pool, scratch)


def test_losing_a_race_with_other_options_keeps_the_winners_fingerprint(fresh_run, monkeypatch):
    """The race above, made deterministic: run B checked `finished` just before run A wrote `_SUCCESS`, so B
    goes on to take the lock (A has released it) and finds the stage done. B must not succeed, and the
    folder must keep A's fingerprint."""
    from curate.errors import CurateError
    from curate.io.stagedir import StageDir
    from curate.shard.run import ShardConfig, run_shard

    run = fresh_run("shard")
    run_shard(str(run), ShardConfig(samples_per_shard=4), threads=1)  # A finished
    before = (run / "shard" / "_fingerprint.json").read_bytes()
    real = StageDir.finished.__func__
    calls = []

    def finished_late(cls, *args, **kwargs):  # B's first look came before A's _SUCCESS
        calls.append(args)
        return None if len(calls) == 1 else real(cls, *args, **kwargs)

    monkeypatch.setattr(StageDir, "finished", classmethod(finished_late))
    with pytest.raises(CurateError, match="another configuration"):
        run_shard(str(run), ShardConfig(samples_per_shard=3), threads=1)
    assert (run / "shard" / "_fingerprint.json").read_bytes() == before
