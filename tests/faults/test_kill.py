"""SIGKILL every stage at seeded random points, resume, and get the bytes of an uninterrupted run.

Per stage, one chain: launch, kill at the k-th change of the stage folder (k drawn from a seeded RNG),
relaunch, kill again, ... then a last launch to completion, whose folder must equal the baseline's byte for
byte (every part, sidecar, tar, manifest, stats, fingerprint, marker; only the lock is left out), and a
rerun that must leave it as it is. A launch that finishes before its kill point compares too, and the next
one starts over with --redo. The kill goes to the stage's whole session: driver, JVM, Python workers, Ray.
"""

from __future__ import annotations

import json
import random
import shutil

import pytest

from .harness import STAGES, Result, after, diff, digest, kill_at, record, run_curate, run_digest, stage_args

CI_KILLS = 5  # the floor: at least 5 kill points per stage in make test
SEED = 20


def _record(stage: str, fault: str, tries: list[tuple[int, Result]]) -> None:
    record(fault, stage, [f"k={k} killed" if r.killed else f"k={k} finished rc={r.rc}" for k, r in tries])


def kill_chain(stage: str, run, baseline, pool, scratch, kills: int, seed: int, *extra: str, reference=None) -> list:
    """Kill `stage` `kills` times at seeded points, then finish it; returns [(k, Result)] of every launch. The
    whole run (every stage folder: dedup rewrites download's tars) must end as the baseline's did."""
    rng = random.Random(f"{seed}-{stage}-{' '.join(extra)}")
    want = run_digest(reference or after(baseline, stage))
    folder = run / stage
    kmax = max(2, len(digest(after(baseline, stage) / stage)) // (kills + 1))  # a launch moves on <= 1/(kills+1)
    tries: list[tuple[int, Result]] = []
    redo: tuple[str, ...] = ()
    while sum(r.killed for _, r in tries) < kills:
        assert len(tries) < 3 * kills, f"{stage}: only {sum(r.killed for _, r in tries)} kills in {len(tries)} tries"
        k = rng.randint(1, kmax)
        result = kill_at(stage_args(stage, run, pool, *extra, *redo), folder, k, scratch)
        tries.append((k, result))
        assert result.killed or result.rc == 0, result.stderr[-3000:]
        redo = ()
        if (folder / "_SUCCESS").exists():  # finished before the kill, or killed after its marker
            assert run_digest(run) == want, diff(run_digest(run), want)
            redo = ("--redo",)
    result = run_curate(stage_args(stage, run, pool, *extra, *redo), scratch)
    tries.append((0, result))
    assert result.rc == 0, result.stderr[-3000:]
    got = run_digest(run)
    assert got == want, diff(got, want)
    scratch_left = sorted(p.name for p in (run / "_scratch").iterdir()) if (run / "_scratch").is_dir() else []
    assert not scratch_left, f"the killed launches' engine scratch is still in {run / '_scratch'}: {scratch_left}"
    again = run_curate(stage_args(stage, run, pool, *extra), scratch)  # a rerun of a finished stage: a no-op
    assert again.rc == 0 and run_digest(run) == want, again.stderr[-3000:]
    return tries


CHEAP = ("select", "shard")  # in-process engines: seconds a chain
HEAVY = ("download", "dedup", "score")  # a JVM or a Ray start per launch: minutes a chain, under `long`


@pytest.mark.slow
@pytest.mark.parametrize("stage", [*CHEAP, *(pytest.param(s, marks=pytest.mark.long) for s in HEAVY)])
def test_killed_stage_resumes_to_identical_outputs(stage, fresh_run, baseline, pool, scratch):
    """The Spark and Ray stages' 5 kills cost 2-3 minutes a stage on 2 shared cores: `long` (make test-long)."""
    run = fresh_run(stage)
    tries = kill_chain(stage, run, baseline, pool, scratch, CI_KILLS, SEED)
    _record(stage, "SIGKILL", tries)
    assert sum(r.killed for _, r in tries) >= CI_KILLS


@pytest.mark.long
@pytest.mark.parametrize("stage", STAGES)
def test_killed_stage_resumes_to_identical_outputs_long(stage, fresh_run, baseline, pool, scratch):
    """More kill points, another seed."""
    run = fresh_run(stage)
    tries = kill_chain(stage, run, baseline, pool, scratch, 10, 1)
    _record(stage, "SIGKILL x10 seed 1", tries)


ENGINES = (("download", "ray"), ("select", "spark"), ("shard", "spark"), ("shard", "ray"))


@pytest.mark.long
@pytest.mark.parametrize("stage,engine", ENGINES, ids=[f"{s}-{e}" for s, e in ENGINES])
def test_killed_stage_on_another_engine_resumes_to_identical_outputs(stage, engine, fresh_run, baseline, pool,
                                                                     scratch):
    """Killed on another engine, a stage resumes into the bytes of an uninterrupted run on that engine (which
    differ from the default engine's only where the engine's name is recorded: select's selection.json, shard's
    _stats.json)."""
    reference = fresh_run(stage, "reference")
    result = run_curate(stage_args(stage, reference, pool, "--engine", engine), scratch)
    assert result.rc == 0, result.stderr[-3000:]
    run = fresh_run(stage)
    tries = kill_chain(stage, run, baseline, pool, scratch, CI_KILLS, SEED, "--engine", engine, reference=reference)
    _record(stage, f"SIGKILL --engine {engine}", tries)


@pytest.mark.long  # two dedup launches
def test_dedup_stats_survive_a_kill_after_the_purge(fresh_run, baseline, pool, scratch):
    """Killed once the purge rewrote a download tar, dedup resumes into the same stats (fixed in af2b1c4)."""
    run = fresh_run("dedup")
    killed = kill_at(stage_args("dedup", run, pool), run / "download" / "purged", 1, scratch)  # purge committed
    assert killed.killed and not (run / "dedup" / "_SUCCESS").exists()
    result = run_curate(stage_args("dedup", run, pool), scratch)
    assert result.rc == 0, result.stderr[-3000:]
    want = json.loads((after(baseline, "dedup") / "dedup" / "_stats.json").read_text())
    assert json.loads((run / "dedup" / "_stats.json").read_text()) == want


SIDECARS = {"select": "decisions/_sums/00003.parquet.json", "shard": "_sums/00001.tar.json"}


@pytest.mark.slow
@pytest.mark.parametrize("stage", [
    "select",
    "shard",
])
def test_kill_between_a_part_and_its_sidecar_resumes_with_the_sidecar(stage, fresh_run, baseline, pool, scratch):
    """The state a kill leaves between a part's commit and its sidecar's write (sums.py: the sidecar comes
    right after the part), made exactly: every part there, one sidecar missing, no stats, no marker. The
    resumed stage must end with the sidecar, as an uninterrupted run does."""
    run = fresh_run(stage)
    shutil.copytree(after(baseline, stage) / stage, run / stage)
    for name in ("_SUCCESS", "_stats.json", SIDECARS[stage]):
        (run / stage / name).unlink()
    result = run_curate(stage_args(stage, run, pool), scratch)
    assert result.rc == 0, result.stderr[-3000:]
    got, want = run_digest(run), run_digest(after(baseline, stage))
    outcome = diff(got, want) if got != want else "identical"
    record("killed between a part and its sidecar", stage, [f"rerun: {outcome}"])
    assert got == want, diff(got, want)
