"""The nightly history (app/history.py, pure): the record of a run and the comparison with the
last green run, over hand-made records."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict

import pytest

from app.history import (
    NOISE_BAND,
    SCHEMA_VERSION,
    Band,
    Cell,
    Finding,
    MatrixRecord,
    RecordError,
    RunRecord,
    build_record,
    check_record,
    compare,
    last_green,
    parse_record,
    previous,
    record_to_json,
    relativize,
    since_last_green,
    stable_name,
)
from app.summary import Case, StageResult
from e2e.ledger import summary_of
from e2e.perf import PathCost
from tests.records import STAGES, check, fault, flows, matrix, run

# a band with round figures, for the tests of how a band works (NOISE_BAND is measured)
BAND = Band(ratio=1.5, stage_floor=0.02, recovery_floor=0.05)


def kinds(findings: tuple[Finding, ...]) -> list[str]:
    return [f.kind for f in findings]


# --- the comparison ------------------------------------------------------------------------


def test_two_green_runs_alike_have_nothing_to_report() -> None:
    assert compare(run("r1"), run("r2")) == ()


def test_a_cell_that_starts_failing_is_named_with_its_matrix_and_what_it_became() -> None:
    now = run("r2", passed=False, matrices=(matrix({("cri-node1-p0", "cri-node2-p0"): "N"}),))
    (found,) = compare(run("r1"), now)
    assert found == Finding(
        "cell",
        "e2e/pod-to-pod-cri: cri-node1-p0 -> cri-node2-p0",
        "'.' -> 'N' (NAT: wrong source)",
    )


def test_a_cell_missing_from_a_matrix_counts_as_not_observed() -> None:
    m = matrix()
    now = run("r2", matrices=(dataclasses.replace(m, cells=m.cells[1:]),))
    (found,) = compare(run("r1"), now)
    assert found.kind == "cell"
    assert found.detail == "'.' -> '?' (not observed)"


def test_a_matrix_no_longer_measured_is_said_once_not_per_cell() -> None:
    other = MatrixRecord(
        "e2e/node-to-pod-cri", "node -> pod [cri]", (Cell("node1", "p", ".", True),)
    )
    findings = compare(run("r1", matrices=(matrix(), other)), run("r2"))
    assert findings == (Finding("matrix not measured", "e2e pass", "1: node-to-pod-cri"),)


def test_a_newly_skipped_check_is_named_with_its_reason() -> None:
    now = run(
        "r2", checks=(check("test_mtu[cri]", "skipped", "needs ping"), check("test_nat[cri]"))
    )
    (found,) = compare(run("r1"), now)
    assert found.kind == "check skipped"
    assert found.subject == "e2e/test_network_model.py::test_mtu[cri]"
    assert found.detail == "passed -> skipped: needs ping"


def test_a_check_skipped_in_both_runs_is_no_news() -> None:
    skipped = (check("test_k8s", "skipped", "needs Kubernetes"),)
    assert compare(run("r1", checks=skipped), run("r2", checks=skipped)) == ()


def test_a_newly_failing_check_and_a_new_check_that_fails_are_both_named() -> None:
    now = run(
        "r2",
        passed=False,
        checks=(
            check("test_mtu[cri]", "failed", "MTU 1400, expected 1500\nmore"),
            check("test_nat[cri]"),
            check("test_new[cri]", "error", "boom"),
        ),
    )
    found = compare(run("r1"), now)
    assert [(f.kind, f.subject.split("::")[1], f.detail) for f in found] == [
        ("check failing", "test_mtu[cri]", "passed -> failed: MTU 1400, expected 1500"),
        ("check failing", "test_new[cri]", "new -> error: boom"),
    ]


def test_checks_that_did_not_run_are_counted_per_pass() -> None:
    gone = run("r2", checks=(check("test_nat[cri]"),))
    assert compare(run("r1"), gone) == (
        Finding("checks not run", "e2e pass", "1 check(s) of the last green run"),
    )


def test_a_recovery_that_doubled_is_reported_with_the_ratio_and_the_band() -> None:
    doubled = run("r2", faults=(fault(recovery_s=20.0),))
    assert kinds(compare(run("r1"), doubled)) == ["recovery time"], "beyond the noise band"
    (found,) = compare(run("r1"), doubled, BAND)
    assert found == Finding(
        "recovery time",
        "private link down on node2",
        "10.0 s -> 20.0 s (2.00x; band 1.50x)",
    )


def test_a_recovery_that_grew_by_less_than_its_floor_is_the_instruments_resolution() -> None:
    # 1.2 s -> 3.4 s is 2.8x, but 2.2 s is one poll of the heal wait, below 5% of a 90 s bound
    quick = run("r1", faults=(fault(recovery_s=1.2),))
    assert compare(quick, run("r2", faults=(fault(recovery_s=3.4),))) == ()


def test_a_fault_that_no_longer_recovers_is_reported() -> None:
    (found,) = compare(run("r1"), run("r2", faults=(fault(None, recovered=False),)))
    assert found == Finding("fault", "private link down on node2", "not recovered within 90 s")


def test_live_flows_newly_outside_their_budget_are_reported_with_the_ledgers_figures() -> None:
    cut = flows(loss_ms=41000, within_budget=False, survived=0)
    (found,) = compare(run("r1"), run("r2", faults=(fault(ledger=cut),)))
    assert found.kind == "fault"
    assert found.subject == "private link down on node2"
    assert found.detail.startswith("live flows: loss 41000 ms; TCP connections survived 0/1;")
    assert found.detail.endswith(": OUT OF BUDGET")


def test_live_flows_outside_their_budget_in_the_green_run_too_are_no_news() -> None:
    cut = fault(ledger=flows(loss_ms=41000, within_budget=False))
    assert compare(run("r1", faults=(cut,)), run("r2", faults=(cut,))) == ()


def test_a_run_that_stopped_early_says_so_once_per_kind_not_per_cell_or_fault() -> None:
    now = dataclasses.replace(run("r2", passed=False), matrices=(), faults=(), checks=())
    now = dataclasses.replace(now, stages=(StageResult("up", "failed", 0.0, 900, "LabError: ..."),))
    found = compare(run("r1"), now)
    assert [(f.kind, f.subject) for f in found] == [
        ("stage", "up"),
        ("stage", "3 stage(s)"),
        ("matrix not measured", "e2e pass"),
        ("checks not run", "e2e pass"),
        ("fault", "1 fault(s)"),
    ]
    assert found[0].detail == "ok -> failed: LabError: ..."
    assert found[1].detail == "did not run: provision, e2e (parallel), disruptive (serial)"
    assert found[-1].detail == "not exercised: private link down on node2"


def test_a_stage_inside_the_noise_band_is_not_reported() -> None:
    inside = dict(STAGES, **{"e2e (parallel)": 40.0 * 1.4})  # 1.4x: inside the band
    assert NOISE_BAND.ratio > 1.4
    assert compare(run("r1"), run("r2", stages=inside)) == ()


def test_a_stage_beyond_the_band_is_reported_unless_its_growth_is_below_the_floor() -> None:
    slower = dict(STAGES, provision=13.0 * 2, up=40.0 * 1.6)
    assert compare(run("r1"), run("r2", stages=slower), BAND) == (
        Finding("stage time", "up", "40.0 s -> 64.0 s (1.60x; band 1.50x)"),
        Finding("stage time", "provision", "13.0 s -> 26.0 s (2.00x; band 1.50x)"),
    )
    tiny = dict(STAGES, snapshot=3.0)
    doubled = dict(tiny, snapshot=6.0)  # 2x, but 3 s is 1% of a 226 s run: under the floor
    assert compare(run("r1", stages=tiny), run("r2", stages=doubled), BAND) == ()


def test_a_stage_that_stops_passing_leads_the_findings() -> None:
    now = run("r2", passed=False, faults=(fault(recovery_s=30.0),))
    now = dataclasses.replace(
        now,
        stages=(*now.stages[:3], StageResult("disruptive (serial)", "failed", 99, 2400, "x\ny")),
    )
    found = compare(run("r1"), now)
    assert kinds(found) == ["stage", "recovery time"]
    assert found[0].detail == "ok -> failed: x"


def test_a_band_is_a_ratio_and_a_floor_both_exceeded() -> None:
    band = Band(ratio=2.0, stage_floor=0.1, recovery_floor=0.1)
    assert band.exceeded(10, 21, scale=100, floor=0.1)
    assert not band.exceeded(10, 19, scale=10, floor=0.1), "under the ratio"
    assert not band.exceeded(1, 5, scale=100, floor=0.1), "4 s is under 10% of 100 s"


# --- which run is compared with which -----------------------------------------------------


def test_the_last_green_run_is_the_newest_green_run_of_the_same_lab_before() -> None:
    r1, r2 = run("r1"), run("r2")
    r3 = run("r3", passed=False)
    other = run("r4", lab="ci-debian12-vxlan")
    r5 = run("r5")
    records = [r5, r3, other, r1, r2]
    assert last_green(records, r5) is r2
    assert last_green(records, r3) is r2
    assert last_green(records, r1) is None
    assert last_green(records, other) is None
    assert previous(records, r5) is r3


def test_a_run_broken_on_purpose_is_never_the_baseline_though_it_passed() -> None:
    r1, r3 = run("r1"), run("r3")
    broken = dataclasses.replace(
        run("r2"), stages=(*r1.stages, StageResult("breakage on purpose (slow-boot)", "ok", 4, 300))
    )
    assert broken.passed
    assert broken.broken_on_purpose
    assert last_green([r1, broken, r3], r3) is r1
    assert not since_last_green([r1, broken, r3], r3).findings, "its extra stage is no finding"


def test_since_the_last_green_run_of_the_first_run_has_nothing_to_compare_with() -> None:
    first = run("r1")
    since = since_last_green([first], first)
    assert since.green is None
    assert since.findings == ()


# --- the record ---------------------------------------------------------------------------


def test_a_check_keeps_its_file_its_driver_and_its_name_without_the_xdist_group() -> None:
    cases = [
        Case("e2e", "e2e.test_network_model::test_mtu[cri-node1-to-node2]", "passed", 1.0),
        Case("e2e", "e2e.test_cni_contract::test_del[node1]@cni-contract", "skipped", 0, "why"),
        Case("disruptive", "e2e.test_disruptive::test_fault[private-link-down]", "failed", 9),
    ]
    checks = [check_record(c, drivers=("k8s", "cri", "cni")) for c in cases]
    assert [(c.file, c.driver, c.test, c.outcome) for c in checks] == [
        ("e2e/test_network_model.py", "cri", "test_mtu[cri-node1-to-node2]", "passed"),
        ("e2e/test_cni_contract.py", "", "test_del[node1]", "skipped"),
        ("e2e/test_disruptive.py", "", "test_fault[private-link-down]", "failed"),
    ]


def test_pod_names_lose_the_run_id_so_a_cell_keeps_its_name_from_run_to_run() -> None:
    assert stable_name("nl-rc2a90c-cri-node1-p0") == "cri-node1-p0"
    assert stable_name("nl-r0f9e8d-main-node-har-node2-0r") == "main-node-har-node2-0r"
    assert stable_name("node1") == "node1"
    assert stable_name("nl-selftest-node1-0") == "nl-selftest-node1-0"


def matrix_json(slug: str, down: str = "") -> dict[str, object]:
    pods = ["nl-r123abc-main-private--node1-0", "nl-r123abc-main-private--node2-0"]
    return {
        "title": "pod -> pod [cni]",
        "cells": [
            {
                "source": s,
                "target": t,
                "expected": {"reachable": not (down and down in s + t)},
                "symbol": "x" if down and down in s + t else ".",
            }
            for s in pods
            for t in pods
            if s != t
        ],
    }


def built() -> RunRecord:
    stages = [StageResult("up", "ok", 39.31, 900, "", "logs/vagrant.log")]
    cases = [Case("e2e", "e2e.test_network_model::test_nat[cri]", "passed", 0.43)]
    outcome = {
        "fault": "private link down",
        "node": "node2",
        "wrong_during": [],
        "failed_during": ["nl-r123abc-main-private--node1-0->nl-r123abc-main-private--node2-0"],
        "recovered": True,
        "recovery_s": 3.4,
        "bound_s": 90,
        "problems": [],
        "ledger": {"fault": "private link down", "pairs": [], "summary": asdict(flows(3400))},
    }
    return build_record(
        run="ci-debian12-20261207T082916Z",
        lab="ci-debian12",
        started="2026-12-07T08:29:16Z",
        artifacts="../nightly/ci-debian12-20261207T082916Z",
        stages=stages,
        cases=cases,
        matrices={
            "disruptive/fault-private-link-down.node2": matrix_json("f", down="node2"),
            "e2e/pod-to-pod-cri": matrix_json("p"),
        },
        faults=[outcome],
        overlay=[
            asdict(PathCost("ci-debian12", "host-gw", "node->node", 3000.0, 1400.0, 1700.0, 0)),
            asdict(
                PathCost("ci-debian12", "host-gw", "pod->pod (other node)", 2250.0, 1750.0, 0, 0)
            ),
        ],
        versions={"k8s-netlab commit": "e9b49fc", "vagrant": "Vagrant 2.3.4"},
    )


def test_a_record_holds_the_run_its_faults_predicted_cells_and_the_overlay_ratios() -> None:
    record = built()
    assert record.passed
    assert record.commit == "e9b49fc"
    assert record.page == "../nightly/ci-debian12-20261207T082916Z/summary.html"
    (f,) = record.faults
    assert f.predicted == (
        "main-private--node1-0->main-private--node2-0",
        "main-private--node2-0->main-private--node1-0",
    )
    assert f.failed_as_predicted == ("main-private--node1-0->main-private--node2-0",)
    assert f.ledger == flows(3400), "the ledger's figures, as faults.json summed them"
    assert [(o.path, o.mbit_vs_node, o.p50_vs_node) for o in record.overlay] == [
        ("node->node", 1.0, 1.0),
        ("pod->pod (other node)", 0.75, 1.25),
    ]
    assert [m.name for m in record.matrices] == [
        "disruptive/fault-private-link-down.node2",
        "e2e/pod-to-pod-cri",
    ]


def test_a_record_goes_to_json_and_back_unchanged() -> None:
    record = built()
    text = json.dumps(record_to_json(record))
    data = json.loads(text)
    assert list(data)[:3] == ["schema_version", "run", "lab"]
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["faults"][0]["ledger"] == asdict(flows(3400))
    assert summary_of({"summary": data["faults"][0]["ledger"]}) == flows(3400), "one shape"
    assert parse_record(data) == record


def test_a_fault_measured_without_live_flows_has_no_ledger() -> None:
    data = record_to_json(built())
    data["faults"][0]["ledger"] = None  # a record written before the ledger existed
    assert parse_record(data).faults[0].ledger is None


def test_a_ledger_that_is_not_the_ledgers_figures_names_the_fault_and_the_field() -> None:
    data = record_to_json(built())
    data["faults"][0]["ledger"] = [{"flow": "tcp held open", "loss_ms": 0}]
    with pytest.raises(RecordError, match=r"faults\['private link down' on 'node2'\]\.ledger"):
        parse_record(data)


def test_a_record_of_a_newer_schema_says_which_k8s_netlab_reads_it() -> None:
    data = record_to_json(built())
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(RecordError, match=r"schema_version 2 is newer than this k8s-netlab"):
        parse_record(data)


def test_a_record_without_a_field_names_it() -> None:
    data = record_to_json(built())
    del data["lab"]
    with pytest.raises(RecordError, match=r"record: no field 'lab'"):
        parse_record(data)
    data = record_to_json(built())
    data["passed"] = "yes"
    with pytest.raises(RecordError, match=r"record.passed = 'yes'"):
        parse_record(data)
    with pytest.raises(RecordError, match="not a JSON object"):
        parse_record([1, 2])


def test_a_field_added_by_a_newer_writer_of_the_same_schema_is_left_aside() -> None:
    data = record_to_json(built())
    data["stages"][0]["cpu_s"] = 12.0
    assert parse_record(data) == built()


# --- paths of the runner ------------------------------------------------------------------


def test_absolute_paths_of_the_runner_become_relative_the_longest_root_first() -> None:
    roots = {
        "/work/wt/x/.artifacts/nightly/r1": "",
        "/work/wt/x": "",
        "/root": "~/",
    }
    text = (
        "log: /work/wt/x/.artifacts/nightly/r1/e2e/pytest.log; /work/wt/x/e2e/checks.py:12; "
        "key /root/.vagrant.d/k; /work/wt/x2/other; in /work/wt/x/.artifacts/nightly/r1 (run)"
    )
    assert relativize(text, roots) == (
        "log: e2e/pytest.log; e2e/checks.py:12; key ~/.vagrant.d/k; /work/wt/x2/other; in . (run)"
    )


def busy(record: RunRecord, share: float) -> RunRecord:
    """The record as if other work had taken `share` of the host's CPU all along."""
    return dataclasses.replace(
        record,
        stages=tuple(dataclasses.replace(s, host_busy=share) for s in record.stages),
        faults=tuple(dataclasses.replace(f, host_busy=share) for f in record.faults),
    )


def test_a_stage_slower_only_because_the_host_was_busy_is_not_a_regression() -> None:
    twice = {name: seconds * 2 for name, seconds in STAGES.items()}
    quiet, loaded = busy(run("r1"), 0.0), busy(run("r2", stages=twice), 0.5)
    assert compare(run("r1"), run("r2", stages=twice), BAND) != (), "in raw seconds it is"
    assert compare(quiet, loaded, BAND) == ()


def test_a_slower_recovery_shows_through_a_busy_host_with_both_readings() -> None:
    before = busy(run("r1", faults=(fault(20.0),)), 0.5)
    after = busy(run("r2", faults=(fault(130.0),)), 0.5)
    (found,) = compare(before, after, BAND)
    assert found == Finding(
        "recovery time",
        "private link down on node2",
        "20.0 s -> 130.0 s; with the host busy with other work 50% -> 50%, "
        "for a quiet host 10.0 s -> 65.0 s (6.50x; band 1.50x)",
    )


def test_the_faults_take_the_busyness_of_the_stage_that_ran_them() -> None:
    record = built()
    assert record.faults[0].host_busy is None
    stages = [StageResult("disruptive (serial)", "ok", 200.0, 2400, host_busy=0.42)]
    again = dataclasses.replace(record, stages=tuple(stages))
    rebuilt = build_record(
        run=again.run,
        lab=again.lab,
        started=again.started,
        artifacts=again.artifacts,
        stages=stages,
        faults=[{"fault": "private link down", "node": "node2", "recovery_s": 3.0}],
        faults_stage="disruptive (serial)",
    )
    assert rebuilt.faults[0].host_busy == 0.42
    assert parse_record(record_to_json(rebuilt)) == rebuilt
