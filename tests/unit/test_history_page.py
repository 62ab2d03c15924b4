"""The history's index and the nightly page's checks (pure HTML; the browser's view of both is
tests/unit/test_history_page_chromium.py)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

from app import cli
from app.history import Finding, record_to_json
from app.history_page import render_findings, render_index, render_sparkline
from app.summary import Case, render_checks
from tests.records import fault, matrix, run


def test_two_green_runs_alike_leave_since_the_last_green_run_empty() -> None:
    page = render_index([run("r1"), run("r2")])
    since = page[page.index("<section id='since-green'>") : page.index("</section>")]
    assert "class='finding'" not in since
    assert "Nothing got worse" in since
    assert "no lab got worse since its last green run" in page


def test_the_first_run_of_a_lab_has_nothing_to_compare_with() -> None:
    page = render_index([run("r1", lab="ci-debian12-vxlan")])
    assert "No green run of this lab before it: nothing to compare with yet." in page


def test_each_lab_is_compared_with_its_own_last_green_run() -> None:
    vx = "ci-debian12-vxlan"
    broken = matrix({("cri-node1-p0", "cri-node2-p0"): "X"})
    page = render_index([run("r1"), run("r2", passed=False, matrices=(broken,)), run("r3", lab=vx)])
    assert page.count("class='finding'") == 1
    assert "1 lab(s) got worse since their last green run" in page
    assert "data-lab='ci-debian12'" in page
    assert "data-lab='ci-debian12-vxlan'" in page
    assert "&#x27;.&#x27; -&gt; &#x27;X&#x27; (unreachable)" in page


def test_the_runs_and_trends_link_relative_and_show_each_recovery() -> None:
    page = render_index([run("r1"), run("r2", faults=(fault(30.0),))])
    assert "href='../nightly/ci-debian12-r2/summary.html'" in page
    assert "recovery: private link down on node2 (s)" in page
    assert "live flows&#x27; longest loss: private link down on node2 (s)" in page


def test_a_fault_never_measured_by_live_flows_has_no_loss_chart() -> None:
    unmeasured = dataclasses.replace(fault(), ledger=None)
    page = render_index([run("r1", faults=(unmeasured,)), run("r2", faults=(unmeasured,))])
    assert "recovery: private link down on node2 (s)" in page
    assert "longest loss" not in page
    assert not re.search(r"(src|href)='(/|https?:)", page), "nothing absolute, nothing remote"


def test_history_files_that_could_not_be_read_are_listed_not_dropped() -> None:
    page = render_index([run("r1")], skipped=["broken.json: not a JSON object"])
    assert "<li>broken.json: not a JSON object</li>" in page


def test_findings_come_under_one_heading_per_kind_the_most_serious_first() -> None:
    html = render_findings(
        [
            Finding("stage time", "up", "40.0 s -> 90.0 s (2.25x; band 1.50x)"),
            Finding("cell", "e2e/pod-to-pod-cri: a -> b", "'.' -> 'X' (unreachable)"),
        ]
    )
    assert html.index("Cells that started failing (1)") < html.index(
        "Stages slower than the noise band allows (1)"
    )


def test_a_trend_chart_skips_runs_without_the_value_and_colours_each_run() -> None:
    svg = render_sparkline([10.0, None, 20.0], [True, False, False])
    assert svg.startswith("<svg class='trend'")
    assert svg.count("<circle") == 2
    assert "fill='#2e9e44'" in svg
    assert "fill='#d62728'" in svg
    assert "<title>10, -, 20</title>" in svg
    assert render_sparkline([None], [True]) == ""
    assert render_sparkline([5.0], [True]).count("<circle") == 1


def test_checks_are_grouped_failures_first_and_skips_fold_into_a_line_per_reason() -> None:
    cases = [
        Case("e2e", "e2e.test_cni_contract::test_add[node1]@cni-contract", "passed", 1.0),
        Case("e2e", "e2e.test_kubernetes::test_a", "skipped", 0, "needs Kubernetes"),
        Case("e2e", "e2e.test_kubernetes::test_b", "skipped", 0, "needs Kubernetes"),
        Case("e2e", "e2e.test_network_model::test_mtu[cri]", "passed", 1.0),
        Case("e2e", "e2e.test_network_model::test_nat[cri]", "failed", 1.0, "NAT\nmatrix"),
    ]
    html = render_checks(cases, drivers=("k8s", "cri", "cni"))
    assert html.index("e2e/test_network_model.py") < html.index("e2e/test_cni_contract.py")
    assert html.index("test_nat[cri]") < html.index("test_mtu[cri]")
    assert html.count("skip-reason") == 1
    assert "<b>2 skipped</b>: needs Kubernetes" in html
    assert "<summary>NAT</summary><pre>NAT\nmatrix</pre>" in html
    assert "driver cri" in html
    assert "its own driver" in html


def test_report_builds_the_index_from_the_records_and_says_what_got_worse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = matrix({("cri-node1-p0", "cri-node2-p0"): "X"})
    for record in (run("r1"), run("r2", passed=False, matrices=(broken,))):
        (tmp_path / f"{record.run}.json").write_text(json.dumps(record_to_json(record)))
    (tmp_path / "notes.json").write_text("[]")
    assert cli.main(["report", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(tmp_path / "index.html")
    assert "ci-debian12: since the last green run (ci-debian12-r1): 1 finding(s)" in err
    assert "cell: e2e/pod-to-pod-cri: cri-node1-p0 -> cri-node2-p0: '.' -> 'X'" in err
    page = (tmp_path / "index.html").read_text()
    assert "<li>notes.json: not a JSON object</li>" in page


def test_report_on_a_folder_without_records_says_where_they_come_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", str(tmp_path / "nothing")]) == 2
    _, err = capsys.readouterr()
    assert f"no nightly records in {tmp_path / 'nothing'}: each `make nightly` writes" in err
