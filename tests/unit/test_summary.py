"""The nightly's verdict and report (no VMs): stage bookkeeping, JUnit, HTML, heatmaps."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from app.nightly import Stages
from app.summary import NightlyReport, StageResult, overall_exit, parse_junit, render_html
from e2e import report
from lab.net import reachability as rm

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="e2e.test_pods" name="test_a[node1-p0]" time="1.5"/>
<testcase classname="e2e.test_connectivity" name="test_b" time="9.0">
  <failure message="2 of 12 cells wrong">matrix...</failure></testcase>
<testcase classname="e2e.test_kubernetes" name="test_c" time="0.0">
  <skipped message="needs a lab with Kubernetes"/></testcase>
</testsuite></testsuites>"""


def test_junit_cases_carry_their_outcome() -> None:
    cases = parse_junit(JUNIT, "e2e")
    assert [(c.name, c.outcome) for c in cases] == [
        ("e2e.test_pods::test_a[node1-p0]", "passed"),
        ("e2e.test_connectivity::test_b", "failed"),
        ("e2e.test_kubernetes::test_c", "skipped"),
    ]
    assert cases[1].message == "2 of 12 cells wrong"


def test_a_failed_stage_skips_the_rest_but_artifacts_and_destroy_still_run() -> None:
    ran = []
    stages = Stages("lab")
    stages.run("up", 10, lambda: ran.append("up"))
    stages.run("disruptive", 10, lambda: (_ for _ in ()).throw(RuntimeError("link left down")))
    stages.run("report", 10, lambda: ran.append("report"))
    stages.run("destroy", 10, lambda: ran.append("destroy"), always=True)
    assert ran == ["up", "destroy"]
    assert [s.status for s in stages.results] == ["ok", "failed", "skipped", "ok"]
    assert "link left down" in stages.results[1].detail
    assert overall_exit(stages.results) == 1


def test_a_stage_over_its_bound_fails_and_all_ok_exits_zero() -> None:
    stages = Stages("lab")
    stages.run("quick", 60, lambda: None)
    assert overall_exit(stages.results) == 0
    stages.run("slow", -1, lambda: None)
    assert stages.results[-1].status == "failed"
    assert "over its" in stages.results[-1].detail


def test_stage_details_are_redacted() -> None:
    stages = Stages("lab")
    stages.run("join", 10, lambda: "kubeadm join x:6443 --token io1pa7.pp3wbn8i4hbi7ktn")
    assert "io1pa7.pp3wbn8i4hbi7ktn" not in stages.results[0].detail


@pytest.fixture
def heatmap(tmp_path: Path) -> Path:
    pods = [
        rm.Endpoint("node1-p0", "node1", "10.244.0.2"),
        rm.Endpoint("node2-p0", "node2", "10.244.1.2"),
    ]
    m = rm.pod_matrix(pods)
    m.observed[("node1-p0", "node2-p0")] = rm.Observation(
        True, "10.10.10.241", "cmd", answered_by="node2-p0"
    )
    m.observed[("node2-p0", "node1-p0")] = rm.Observation(
        True, "10.244.1.2", "cmd", answered_by="node1-p0"
    )
    report.write_matrix(tmp_path, "pod-to-pod", m.render(), m.to_json())
    (png,) = report.render_matrices(tmp_path)
    return png


def test_matrices_become_png_heatmaps(heatmap: Path) -> None:
    assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "N" in heatmap.with_suffix(".txt").read_text()


def test_the_html_summary_shows_stages_faults_checks_heatmaps_and_versions(heatmap: Path) -> None:
    r = NightlyReport(
        lab="ci-debian12",
        started="2026-11-26 02:17:00 UTC",
        stages=[
            StageResult("up", "ok", 75.2, 900),
            StageResult("disruptive (serial)", "failed", 300, 2400, "x"),
        ],
        cases=parse_junit(JUNIT, "e2e"),
        faults=[
            {
                "fault": "private link down",
                "node": "node2",
                "failed_during": ["a->b"] * 4,
                "wrong_during": [],
                "recovered": True,
                "recovery_s": 3.2,
                "bound_s": 90,
            }
        ],
        versions={"vagrant": "Vagrant 2.3.4"},
        heatmaps={"e2e: pod-to-pod": base64.b64encode(heatmap.read_bytes()).decode()},
    )
    page = render_html(r)
    assert "FAILED" in page
    assert "<td>75.2</td>" in page
    assert "<td>private link down</td><td>node2</td><td>4</td><td>0</td><td>3.2</td>" in page
    assert "data:image/png;base64," in page
    assert "Vagrant 2.3.4" in page


def test_no_join_token_or_key_survives_anywhere_in_the_artifacts(tmp_path: Path) -> None:
    from app.nightly import redact_tree

    token = "abcdef.0123456789abcdef"
    key = "b98b6165eafb91dd690bb693a8e2f57f6043865fcf75da68aa1a3b6b61ac3ca9"
    join = f"kubeadm join 10.10.10.241:6443 --token {token} --certificate-key {key}"
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "k8s-node1.nightly.log").write_text(f"$ sudo -n {join}\n[exit 0]\n")
    (tmp_path / "e2e").mkdir()
    (tmp_path / "e2e" / "junit.xml").write_text(f"<testcase><failure message='{join}'/></testcase>")
    (tmp_path / "node-state-k8s-master.txt").write_text(f'{{"token": "{token}"}}')
    (tmp_path / "heatmap.png").write_bytes(b"\x89PNG binary, not text \xff\xfe")
    redact_tree(tmp_path)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert token.encode() not in data, path
            assert key.encode() not in data, path


def test_the_slowest_tests_show_their_setup_probes_and_checks() -> None:
    from app.summary import NightlyReport, StageResult, parse_junit, render_html, slowest

    xml = """<testsuites><testsuite>
      <testcase classname="e2e.test_network_model" name="test_matrix[cni]" time="12.5">
        <properties><property name="setup-s" value="8.0"/><property name="probes-s" value="3.5"/>
        <property name="checks-s" value="1.0"/></properties></testcase>
      <testcase classname="e2e.test_network_model" name="test_quick[cni]" time="0.4"/>
      <testcase classname="e2e.test_kubernetes" name="test_k8s" time="0.0">
        <skipped message="needs a lab with Kubernetes"/></testcase>
    </testsuite></testsuites>"""
    cases = parse_junit(xml, "e2e")
    assert [(c.name.split("::")[1], c.setup_s, c.probes_s, c.checks_s) for c in cases[:2]] == [
        ("test_matrix[cni]", 8.0, 3.5, 1.0),
        ("test_quick[cni]", None, None, None),
    ]
    assert [c.seconds for c in slowest(cases)] == [12.5, 0.4], "skipped tests are not slow"
    page = render_html(NightlyReport("ci", "now", [StageResult("e2e", "ok", 1, 2)], cases))
    assert "<h2>Slowest tests</h2>" in page
    assert "<td>test_matrix[cni]</td>" in page or "test_matrix[cni]" in page


def test_overlay_costs_print_with_the_ratios_that_carry_over() -> None:
    from e2e import perf

    costs = [
        perf.PathCost("ci-debian12", "host-gw", "node->node", 800.0, 300.0, 400.0, 900.0),
        perf.PathCost(
            "ci-debian12", "host-gw", "pod->pod (other node)", 600.0, 330.0, 450.0, 990.0
        ),
        perf.PathCost("ci-debian12-vxlan", "vxlan", "node->node", 820.0, 310.0, 410.0, 950.0),
        perf.PathCost(
            "ci-debian12-vxlan", "vxlan", "pod->pod (other node)", 300.0, 660.0, 700.0, 1980.0
        ),
    ]
    table = perf.render_table(costs)
    assert "| host-gw: pod->pod (other node) / node->node | 0.75x | 1.10x | 1.10x |" in table
    assert "| pod->pod (other node): vxlan / host-gw | 0.50x | 2.00x | 2.00x |" in table
    assert perf.from_json(perf.to_json(costs)) == costs


def test_on_a_routed_underlay_vxlan_is_compared_with_bgp_on_that_underlay() -> None:
    from e2e import perf

    def cost(lab: str, backend: str, path: str, mbit: float, underlay: str) -> perf.PathCost:
        return perf.PathCost(lab, backend, path, mbit, 100.0, 100.0, 100.0, "", underlay)

    costs = [
        cost("flat-vx", "vxlan", "pod->pod (other node)", 300.0, "flat"),
        cost("flat-hg", "host-gw", "pod->pod (other node)", 600.0, "flat"),
        cost("routed-vx", "vxlan", "pod->pod (other node)", 200.0, "routed"),
        cost("routed-bgp", "bgp", "pod->pod (other node)", 500.0, "routed"),
    ]
    table = perf.render_table(costs)
    assert "| pod->pod (other node) (flat): vxlan / host-gw | 0.50x | 1.00x | 1.00x |" in table
    assert "| pod->pod (other node) (routed): vxlan / bgp | 0.40x | 1.00x | 1.00x |" in table
    assert "vxlan / bgp" not in perf.render_table(costs[:2])
    assert perf.from_json(perf.to_json(costs)) == costs
    legacy = '[{"lab": "a", "backend": "bgp", "path": "node->node", "mbit_s": 1.0, '
    legacy += '"p50_us": null, "p90_us": null, "p99_us": null, "error": ""}]'
    assert perf.from_json(legacy)[0].underlay == "flat"  # a report written before the field


def test_iperf3_and_round_trip_outputs_parse() -> None:
    from e2e import perf

    iperf = '{"end": {"sum_received": {"bits_per_second": 123456789.0}}}'
    assert perf.parse_iperf3(iperf) == 123.5
    assert perf.parse_iperf3('{"error": "unable to connect to server"}') is None
    assert perf.parse_rr(" ".join(str(v) for v in range(1, 101))) == (50.0, 90.0, 99.0)
    assert perf.parse_rr("") is None
    assert perf.parse_rr("Traceback (most recent call last):") is None


def test_the_breakages_section_is_included_when_there_is_one() -> None:
    stages = [StageResult("e2e", "ok", 1, 2)]
    section = "<h2>Breakages: ci</h2><table></table>"
    page = render_html(NightlyReport("ci", "now", stages, breakages=section))
    assert section in page
    assert page.index(section) < page.index("<h2>Versions</h2>")
    assert "Breakages" not in render_html(NightlyReport("ci", "now", stages))
