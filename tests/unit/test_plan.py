"""`curate plan`: wall time and node-hours from the rates file, honest about assumptions."""

from __future__ import annotations

import json

import pytest

from curate.cli import main
from curate.errors import CurateError
from curate.plan import ClusterShape, PlanInput, load_rates, plan


def test_rates_file_cites_every_rate():
    rates = load_rates()
    for key in ("download", "dedup", "score_cpu", "score_gpu", "select", "shard"):
        assert rates[key]["kind"] in ("measured", "assumption")
        assert rates[key]["source"]
        if rates[key]["kind"] == "measured":
            assert "bench/RESULTS.md" in rates[key]["source"]


def test_wall_time_scales_with_cluster_and_rows():
    rates = load_rates()
    small = {p.stage: p for p in plan(PlanInput(shape=ClusterShape(nodes=2)), rates)}
    big = {p.stage: p for p in plan(PlanInput(shape=ClusterShape(nodes=4)), rates)}
    assert big["download"].wall_hours == pytest.approx(small["download"].wall_hours / 2)
    assert big["download"].node_hours == pytest.approx(small["download"].node_hours)
    assert big["select"].wall_hours == pytest.approx(small["select"].wall_hours / 2)  # Spark: scales too
    one = {p.stage: p for p in plan(PlanInput(shape=ClusterShape(nodes=4)),
                                    {**rates, "select": {**rates["select"], "unit": "process"}})}
    # a driver does not: rows / (rate × 1 process × efficiency)
    assert one["select"].wall_hours == pytest.approx(one["select"].rows / (rates["select"]["rows_per_s"] * 0.7) / 3600)
    # by hand: the download passes every row through its plan and its fetch, so per core
    # 1 / (1/fetch + 1/plan) rows/s; 12.8e9 rows / (that × 2×64 cores × 0.7) / 3600
    fetch, plan_rate = rates["download_fetch"]["rows_per_s"], rates["download_plan"]["rows_per_s"]
    assert small["download"].wall_hours == pytest.approx(12.8e9 / (128 * 0.7) * (1 / fetch + 1 / plan_rate) / 3600)
    assert small["dedup"].rows == pytest.approx(12.8e9 * 0.9)
    assert small["shard"].rows == pytest.approx(1.4e9)


def test_gpu_kind_and_cpu_fallback():
    rates = load_rates()
    a100 = {p.stage: p for p in plan(PlanInput(shape=ClusterShape(gpu_kind="a100")), rates)}["score"]
    h100 = {p.stage: p for p in plan(PlanInput(shape=ClusterShape(gpu_kind="h100")), rates)}["score"]
    cpu = {p.stage: p for p in plan(PlanInput(shape=ClusterShape(gpus_per_node=0)), rates)}["score"]
    assert h100.wall_hours < a100.wall_hours and a100.unit == "gpu" and cpu.unit == "core"
    with pytest.raises(CurateError, match="gpu-kind"):
        plan(PlanInput(shape=ClusterShape(gpu_kind="tpu")), rates)


def test_cli_table_json_and_errors(capsys):
    assert main(["plan", "--pool-size", "12.8e9", "--nodes", "8", "--gpus-per-node", "4"]) == 0
    out = capsys.readouterr().out
    assert "| download |" in out and "Assumptions:" in out and "8 nodes" in out
    assert main(["plan", "--json", "--rate", "score_gpu=1000"]) == 0
    data = json.loads(capsys.readouterr().out)
    score = next(s for s in data["stages"] if s["stage"] == "score")
    assert score["rate_per_unit"] == 1000.0 and score["rate_kind"] == "given"
    assert main(["plan", "--rate", "nope=3"]) == 2
    assert "unknown stage" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plan", "--rate", "score_gpu"])


def test_bad_rates_file(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text("{")
    with pytest.raises(CurateError, match="not valid JSON"):
        load_rates(bad)
    bad.write_text(json.dumps({"download": {"rows_per_s": 0}}))
    with pytest.raises(CurateError, match="rows_per_s"):
        load_rates(bad)


def test_a_stage_of_several_passes_takes_their_combined_rate(tmp_path):
    rates = json.loads((load_rates.__globals__["RATES"]).read_text())
    rates["dedup_hash"] = {"unit": "core", "rows_per_s": 300.0, "kind": "measured", "source": "bench/RESULTS.md x"}
    rates["dedup_rules"] = {"unit": "core", "rows_per_s": 600.0, "kind": "assumption", "source": "a guess"}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(rates))
    got = load_rates(path)["dedup"]
    assert got["rows_per_s"] == pytest.approx(200.0)  # 1 / (1/300 + 1/600)
    assert got["kind"] == "partly assumption/measured" and "a guess" in got["source"]
    assert load_rates(path, {"dedup_rules": 300.0})["dedup"]["rows_per_s"] == pytest.approx(150.0)
    assert load_rates(path, {"dedup": 90.0})["dedup"]["rows_per_s"] == 90.0
