"""app/breakage_report.py: the tests a run failed, read from JUnit; whether a breakage was
detected, whether its expected tests failed, whether a failure names the cause; the detection
matrix as text, JSON and an HTML section."""

from __future__ import annotations

import json
from pathlib import Path

from app import breakage_report as br
from e2e import breakages as cat
from lab.model.labfile import load_lab

ROOT = Path(__file__).resolve().parents[2]
HOSTGW = load_lab(ROOT / "labs" / "ci-debian12.yaml")

JUNIT = (ROOT / "tests" / "data" / "breakages" / "junit.xml").read_text()


def test_junit_results_keep_ids_outcomes_and_whole_failure_texts() -> None:
    results = br.parse_junit_results(JUNIT)
    assert [(r.nodeid, r.outcome) for r in results] == [
        ("e2e/test_network_model.py::test_every_pod_reaches_every_pod_without_nat[cri]", "failed"),
        (
            "e2e/test_node_datapath.py::test_every_node_holds_what_its_pod_network_needs[node2]",
            "failed",
        ),
        (
            "e2e/test_node_datapath.py::test_every_node_holds_what_its_pod_network_needs[node1]",
            "passed",
        ),
        ("e2e/test_cni_contract.py::test_a_second_cni_del_succeeds[node1]", "error"),
        ("e2e/test_kubernetes.py::test_every_node_is_ready", "skipped"),
    ]
    assert "observed unreachable (timed out)" in results[0].text
    assert "4 of 12 cells wrong" in results[0].text
    assert br.nodeid_of("e2e.test_x.TestY", "test_z") == "e2e/test_x.py::TestY::test_z"


def test_a_breakage_is_judged_detected_named_and_its_misses_listed() -> None:
    results = br.parse_junit_results(JUNIT)
    b = cat.by_id()["forward-policy-drop"]
    outcome = br.judge(
        b,
        HOSTGW,
        results,
        noisy=["e2e/test_cni_contract.py::test_a_second_cni_del_succeeds[node1]"],
    )
    assert outcome.detected
    assert outcome.named
    assert outcome.failed == (
        "e2e/test_network_model.py::test_every_pod_reaches_every_pod_without_nat[cri]",
        "e2e/test_node_datapath.py::test_every_node_holds_what_its_pod_network_needs[node2]",
    )
    assert outcome.named_by == (
        "e2e/test_node_datapath.py::test_every_node_holds_what_its_pod_network_needs[node2]",
    )
    assert outcome.expected_missed == ()
    assert outcome.expected_absent == (cat.NODE_MATRIX,)  # not in this run at all


def test_a_failure_that_does_not_say_the_cause_is_detected_but_not_named() -> None:
    results = [r for r in br.parse_junit_results(JUNIT) if "datapath" not in r.nodeid]
    outcome = br.judge(cat.by_id()["forward-policy-drop"], HOSTGW, results)
    assert outcome.detected
    assert not outcome.named
    assert br.verdict_word(outcome) == "detected, NOT NAMED"
    assert cat.DATAPATH in outcome.expected_absent


def test_nothing_failed_is_not_detected_unless_undetectable_by_design() -> None:
    passed = [
        br.TestResult(
            "e2e/test_network_model.py::test_every_pod_reaches_every_pod_without_nat[cri]", "passed"
        )
    ]
    missed = br.judge(cat.by_id()["stale-route-deleted-node"], HOSTGW, passed)
    assert not missed.detected
    assert missed.expected_missed == (cat.POD_MATRIX,)
    assert br.verdict_word(missed) == "NOT DETECTED"
    by_design = br.judge(cat.by_id()["checksum-offload-flannel1"], HOSTGW, passed)
    assert br.verdict_word(by_design) == "undetectable here"


def test_names_cause_needs_every_pattern() -> None:
    assert br.names_cause("a b c", [r"a", r"C"])
    assert not br.names_cause("a b", [r"a", r"c"])
    assert not br.names_cause("anything", [])


def report() -> br.Report:
    results = br.parse_junit_results(JUNIT)
    r = br.Report("ci-debian12", "2026-12-03 10:00:00 UTC", baseline_failed=("e2e/x.py::t",))
    r.outcomes.append(br.judge(cat.by_id()["forward-policy-drop"], HOSTGW, results, seconds=61))
    stale = cat.by_id()["stale-route-deleted-node"]
    r.outcomes.append(br.judge(stale, HOSTGW, results[:1], seconds=58))
    r.outcomes.append(br.Outcome("host-local-exhausted", "t", "s", "inject-failed", detail="x"))
    return r


def test_the_matrix_as_text() -> None:
    text = br.render_text(report())
    assert text.splitlines()[1] == (
        "2 breakages run: 2 detected, 1 named (50% of detected); 1 could not run"
    )
    assert "forward-policy-drop       detected, named" in text
    assert (
        "named test_node_datapath::test_every_node_holds_what_its_pod_network_needs[node2]" in text
    )
    assert "stale-route-deleted-node  detected, NOT NAMED" in text
    assert "failing on the healthy lab too (left out of every judgement):\n  x::t" in text


def test_the_matrix_as_json_and_html() -> None:
    data = json.loads(br.render_json(report()))
    assert [b["verdict"] for b in data["breakages"]] == [
        "detected, named",
        "detected, NOT NAMED",
        "inject-failed",
    ]
    html = br.render_html_section(report())
    assert html.startswith("<h2>Breakages: ci-debian12</h2>")
    assert html.count("<tr>") == 4
    assert "<td class='ok' title='e2e/test_node_datapath.py::" in html
    assert ">N1</td>" in html
    assert ">F1</td>" in html
    assert (
        "<li><code>test_network_model::test_every_pod_reaches_every_pod_without_nat</code>" in html
    )
    page = br.render_html_page(report())
    assert page.startswith("<!doctype html>")
    assert "Matrix as text" in page


def test_a_report_reads_back_from_its_json() -> None:
    r = report()
    again = br.parse_report_json(br.render_json(r))
    assert again.outcomes == r.outcomes
    assert br.render_text(again) == br.render_text(r)
