"""The benchmark on a tiny configuration, so that it cannot rot: every section runs, the results have their
structure, and the count-based invariants hold. Times are never asserted (the benchmark reports them)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import _parser, config_from_args
from bench.common import SECTIONS, Config, percentile
from bench.runner import run

# A quarter of the ARM calls throttled, so that the retry path surely runs on a dozen alerts.
TINY = replace(Config.tiny(), fault_probability=0.25)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("bench")
    return run(TINY, out, echo=False), out


@pytest.fixture(scope="module")
def sections(bench: tuple[dict[str, Any], Path]) -> dict[str, Any]:
    results, _ = bench
    assert results["errors"] == {}, "\n".join(results["errors"].values())
    return dict(results["sections"])


def test_every_section_ran_and_the_files_were_written(bench):
    results, out = bench
    assert results["errors"] == {}, "\n".join(results["errors"].values())
    assert set(results["sections"]) == set(SECTIONS)
    written = json.loads((out / "results.json").read_text())
    assert written["config"]["latency_ms"] == TINY.latency_ms
    assert set(written["sections"]) == set(SECTIONS)
    assert {"cpu_count", "python", "date"} <= set(written["machine"])
    markdown = (out / "results.md").read_text()
    assert "#### Targets" in markdown
    assert "| PASS |" in markdown


def test_latency_section_counts_arm_calls_per_path(sections):
    latency = sections["latency"]
    assert len(latency["runs"]) == TINY.runs
    run_ = latency["runs"][0]
    paths = run_["paths"]
    assert paths["warm"]["n"] == 2 * (TINY.alerts // 3)
    assert paths["cold"]["n"] == TINY.alerts // 3
    assert paths["first"]["n"] == TINY.first_ever
    for path in ("first", "cold", "warm"):
        assert paths[path]["outcomes"] == {"started": paths[path]["n"]}
        # The emulator's request log and the app's own call_scope() count agree.
        assert paths[path]["app_counted_calls_max"] == paths[path]["arm_calls_max"]
    assert paths["warm"]["arm_calls_max"] <= 2
    assert paths["cold"]["arm_calls_max"] <= 3
    assert paths["first"]["arm_calls_max"] <= 4
    assert paths["first"]["identity_calls_max"] == 1  # a new credential fetches its token
    assert paths["warm"]["identity_calls_max"] == 0
    baseline = run_["baseline"]
    assert baseline["n"] == TINY.baseline_alerts
    assert baseline["deleted_and_recreated"] == TINY.baseline_alerts
    assert baseline["arm_calls_max"] > paths["cold"]["arm_calls_max"]
    assert run_["ratio_vs_warm"]["arm_calls_p50"] >= 4


def test_scaling_ours_calls_do_not_grow_with_the_subscription_or_the_captures(sections):
    scaling = sections["scaling"]
    by_resources, by_captures = scaling["by_resources"], scaling["by_captures"]
    assert [e["unrelated_resources"] for e in by_resources] == list(TINY.scaling_resources)
    assert [e["existing_captures_per_watcher"] for e in by_captures] == list(TINY.scaling_captures)
    for entry in by_resources + by_captures:
        assert entry["ours_warm"]["arm_calls_max"] == 2
        assert entry["ours_cold"]["arm_calls_max"] == 3
        assert entry["baseline"]["n"] == TINY.scaling_baseline
    listed = [e["baseline"]["resources_listed"] for e in by_resources]
    assert listed[-1] - listed[0] == TINY.scaling_resources[-1] - TINY.scaling_resources[0]


def test_storm_has_no_duplicates_no_overshoot_and_no_errors(sections):
    storm = sections["storm"]
    assert storm["deliveries"] == TINY.storm_deliveries
    assert storm["duplicates"] == 0
    assert storm["overshoot"] == 0
    assert storm["non_2xx"] == 0
    assert storm["unattributed_captures"] == 0
    assert storm["host_errors"] == 0
    assert storm["captures_created"] == storm["started_answers"] > 0
    assert all(n <= TINY.storm_max_sessions for n in storm["captures_per_watcher"].values())
    assert storm["outcomes"].get("limited", 0) > 0  # the tiny limit is reached
    assert sum(storm["outcomes"].values()) == TINY.storm_deliveries


def test_many_target_delivery_counts_every_target_and_ends_with_a_capture_each(sections):
    [run] = sections["delivery"]["runs"]
    assert run["targets"] == TINY.delivery_targets[0]
    for delivery in run["deliveries"]:
        assert sum(delivery["counts"].values()) == run["targets"]
    assert run["deliveries"][-1]["status"] == 202
    assert run["captures_created"] == run["targets"]


def test_faults_retry_and_every_webhook_answers_within_the_budget(sections):
    faults = sections["faults"]
    assert faults["injected_429"] > 0
    assert faults["alerts_retried"] > 0
    assert faults["within_budget"] == faults["alerts"] == 3 * max(TINY.fault_callers, TINY.fault_alerts // 3)
    assert set(faults["statuses"]) <= {"200", "202", "503"}


def test_cold_start_answers_its_first_alert(sections):
    cold = sections["coldstart"]
    [first] = cold["runs"]
    assert first["first_alert_status"] == 202
    assert first["first_alert_arm_calls"] == 4  # VM, watchers, captures, PUT
    assert first["first_alert_identity_calls"] == 1
    assert first["second_alert_arm_calls"] == 3
    assert cold["imports"]["top_imports"]


def test_analysis_summary_is_included(sections):
    summary = sections["analysis"]["summary"]
    assert {"mb_per_s", "packets_per_s", "peak_rss_mb"} <= set(summary)


def test_targets_are_judged_and_the_count_based_ones_pass(bench):
    results, _ = bench
    verdicts = {t["name"]: t["verdict"] for t in results["targets"]}
    assert set(verdicts.values()) <= {"PASS", "MISS"}
    assert verdicts["warm path ARM calls"] == "PASS"
    assert verdicts["storm duplicates"] == "PASS"
    assert verdicts["storm limit overshoot"] == "PASS"


def test_cli_flags_map_onto_the_configuration():
    cfg = config_from_args(
        _parser().parse_args(
            [
                "--quick",
                "--sections",
                "latency,storm",
                "--latency-ms",
                "2",
                "--alerts",
                "30",
                "--scaling-resources",
                "100,1_000",
            ]
        )
    )
    assert cfg.sections == ("latency", "storm")
    assert (cfg.latency_ms, cfg.alerts, cfg.runs) == (2.0, 30, Config.quick().runs)
    assert cfg.scaling_resources == (100, 1000)
    with pytest.raises(SystemExit):
        config_from_args(_parser().parse_args(["--sections", "nonsense"]))


def test_percentile_is_nearest_rank():
    samples = [float(n) for n in range(1, 101)]
    assert (percentile(samples, 50), percentile(samples, 99), percentile(samples, 100)) == (50.0, 99.0, 100.0)
    assert percentile([3.0], 99) == 3.0


def test_recorder_section_freezes_and_reports_pre_alert_traffic(sections):
    recorder = sections["recorder"]
    assert len(recorder["runs"]) == TINY.recorder_runs
    assert recorder["all_frozen"] and recorder["all_reported"]
    # Warm: list, status, stop, post ring; cold adds the VM's region and the watcher list.
    assert recorder["warm_arm_calls_max"] == 4
    assert recorder["cold_arm_calls"] == 6
    assert recorder["pre_alert_seconds_p50"] > 60


def test_followthrough_section_reports_every_capture_with_few_arm_calls(sections):
    follow = sections["followthrough"]
    assert [r["workers"] for r in follow["runs"]] == [1, 2]
    for run_ in follow["runs"]:
        assert run_["queued"] == run_["reported"] == TINY.followthrough_captures
        calls = run_["arm_calls_per_capture"]
        assert (calls["status"], calls["get"], calls["delete"]) == (2, 1, 1)  # scheduler 1 + worker 1 status
        assert all(m for m in run_["peak_rss_mb_per_worker"])
    assert follow["lifetime_arm_calls"]["60s"]["total"] == 5
    assert follow["lifetime_arm_calls"]["5h"]["total"] < 50
