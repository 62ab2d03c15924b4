"""The disruption ledger, pure: the flow client's result read, judged against each kind of
budget (passing and failing), and shown; the faults' stated budgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from e2e import faults, ledger
from e2e.ledger import Budget, PairFigures, Window
from lab.model.labfile import load_lab

ROOT = Path(__file__).resolve().parents[2]

PAIR = PairFigures("nl-a-node1-0", "node1", "nl-a-node2-0", "node2", "10.244.2.3")
WITHIN = faults.WITHIN_THE_FAULT  # loss during the fault + 10 s
INJECT, HEALED, END = 5000, 25000, 60000  # ms on the source's clock


def result(
    *,
    tcp: dict[str, Any] | None = None,
    udp: dict[str, Any] | None = None,
    connect: dict[str, Any] | None = None,
    marks: dict[str, int] | None = None,
) -> str:
    """A flow client's result (e2e/agent.py op `flows`): clean unless told otherwise."""
    doc = {
        "ended": "stop",
        "end_ms": END,
        "marks": {"inject": INJECT, "healed": HEALED} if marks is None else marks,
        "tcp": {
            "connected": True,
            "sent": 1200,
            "echoed": 1200,
            "retransmits": 0,
            "error": "",
            "stalls": [],
            **(tcp or {}),
        },
        "udp": {
            "sent": 1200,
            "received": 1200,
            "lost": 0,
            "reordered": 0,
            "duplicated": 0,
            "windows": [],
            **(udp or {}),
        },
        "connect": {
            "attempts": 240,
            "failures": 0,
            "windows": [],
            "answered_by": ["nl-a-node2-0"],
            "last_error": "",
            **(connect or {}),
        },
    }
    return json.dumps(doc)


def figures(**changes: Any) -> PairFigures:
    return ledger.parse_result(result(**changes), PAIR)


def outage(start: int, end: int | None) -> dict[str, Any]:
    """The same outage seen by all three flows (the TCP stream resumes with its backoff)."""
    lost = 400 if end is not None else 1100
    return {
        "tcp": {"retransmits": 9, "stalls": [[start, end and end + 8000]]},
        "udp": {"received": 1200 - lost, "lost": lost, "windows": [[start, end]]},
        "connect": {"failures": 80, "windows": [[start, end]]},
    }


def test_a_result_is_read_into_figures_with_its_windows_and_marks() -> None:
    pair = figures(**outage(5100, 25400))
    assert pair.marks == {"inject": INJECT, "healed": HEALED}
    assert pair.tcp is not None
    assert pair.udp is not None
    assert pair.connect is not None
    assert pair.tcp.stalls == (Window(5100, 33400),)
    assert pair.tcp.survived
    assert (pair.udp.lost, pair.udp.windows) == (400, (Window(5100, 25400),))
    assert pair.connect.windows == (Window(5100, 25400),)
    assert pair.connect.answered_by == ("nl-a-node2-0",)


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"tcp": {}}'])
def test_a_missing_or_malformed_result_is_a_pair_without_figures(text: str) -> None:
    pair = ledger.parse_result(text, PAIR)
    assert pair.tcp is None
    assert "the flow client wrote no result" in pair.missing
    (problem,) = ledger.judge_pair(pair, WITHIN)
    assert "nl-a-node1-0 (node1) -> nl-a-node2-0 (node2): no figures" in problem


def test_loss_within_the_fault_and_its_bound_is_within_the_budget() -> None:
    assert ledger.judge_pair(figures(**outage(5100, 25400)), WITHIN) == []


def test_loss_past_the_fault_end_plus_the_bound_is_outside_it_with_the_figures() -> None:
    late = outage(5100, HEALED + 12_000)
    late["tcp"] = {}  # only UDP and the connections are late
    problems = ledger.judge_pair(figures(**late), WITHIN)
    assert len(problems) == 2
    assert problems[0] == (
        "nl-a-node1-0 (node1) -> nl-a-node2-0 (node2): UDP datagrams lost from +0.1 s to "
        "+32.0 s after inject (31900 ms; the fault lasted 20000 ms): over the budget of the "
        "fault's end + 10 s"
    )
    assert "new connections failing" in problems[1]


def test_the_tcp_stream_may_resume_one_backoff_later_than_the_datagrams() -> None:
    """TCP's retransmission backoff doubles while the path is down: the first retransmission
    after the heal comes up to about the outage's length later."""
    resumes = figures(tcp={"stalls": [[5100, HEALED + 19_000]]})
    assert ledger.judge_pair(resumes, WITHIN) == []
    too_late = figures(tcp={"stalls": [[5100, HEALED + 31_000]]})
    (problem,) = ledger.judge_pair(too_late, WITHIN)
    assert "TCP stream stall" in problem
    assert "fault's end + 30 s" in problem


def test_loss_that_never_ended_is_outside_a_bounded_budget() -> None:
    problems = ledger.judge_pair(figures(**outage(5100, None)), WITHIN)
    assert any("to the end after inject" in p for p in problems)


def test_a_window_may_begin_just_before_the_inject_mark() -> None:
    """The mark is polled; a stall begins at the last echo; a connection at its attempt."""
    just = outage(INJECT - ledger.BEFORE_MARK_MS, 25400)
    assert ledger.judge_pair(figures(**just), WITHIN) == []
    early = outage(INJECT - ledger.BEFORE_MARK_MS - 1, 25400)
    assert len(ledger.judge_pair(figures(**early), WITHIN)) == 3


def test_loss_before_the_fault_fails_every_budget() -> None:
    early = figures(udp={"lost": 3, "windows": [[1000, 1150]]})
    for budget in (WITHIN, faults.CUT_WITH_THE_PODS, faults.NOTHING_LOST):
        problems = ledger.judge_pair(early, budget)
        assert any("loss before the fault" in p for p in problems), budget


def test_a_cut_connection_fails_where_connections_must_survive() -> None:
    cut = figures(tcp={"error": "recv: ConnectionResetError: reset", "echoed": 900})
    (problem,) = ledger.judge_pair(cut, WITHIN)
    assert problem.endswith(
        "the established TCP connection did not survive (recv: ConnectionResetError: reset)"
    )
    assert ledger.judge_pair(cut, faults.CUT_WITH_THE_PODS) == []


def test_lines_never_echoed_mean_the_connection_did_not_survive() -> None:
    stuck = figures(tcp={"echoed": 1100, "stalls": [[30000, None]]})
    assert stuck.tcp is not None
    assert not stuck.tcp.survived
    problems = ledger.judge_pair(stuck, WITHIN)
    assert any("100 line(s) never echoed" in p for p in problems)


def test_a_dead_target_under_an_unbounded_budget_is_recorded_not_failed() -> None:
    dead = outage(5100, None)
    dead["tcp"] = {"echoed": 100, "stalls": [[5100, None]]}
    assert ledger.judge_pair(figures(**dead), faults.CUT_WITH_THE_PODS) == []


def test_the_zero_budget_takes_no_window_no_lost_datagram_and_no_retransmission() -> None:
    assert ledger.judge_pair(figures(), faults.NOTHING_LOST) == []
    one_lost = figures(udp={"lost": 1, "received": 1199, "windows": [[9000, 9050]]})
    (problem,) = ledger.judge_pair(one_lost, faults.NOTHING_LOST)
    assert "UDP datagrams lost from +4.0 s to +4.0 s after inject (50 ms)" in problem
    assert "the budget is no loss" in problem
    (problem,) = ledger.judge_pair(figures(tcp={"retransmits": 2}), faults.NOTHING_LOST)
    assert "retransmitted 2 segment(s)" in problem
    (problem,) = ledger.judge_pair(
        figures(connect={"failures": 1, "windows": [[9000, 9250]]}), faults.NOTHING_LOST
    )
    assert "new connections failing" in problem


def test_flows_that_missed_the_marks_cannot_be_judged() -> None:
    (problem,) = ledger.judge_pair(figures(marks={"inject": INJECT}), WITHIN)
    assert problem.endswith("the flows did not see the fault's marks (seen: inject)")


def test_a_stream_that_never_connected_fails() -> None:
    never = figures(tcp={"connected": False, "sent": 0, "echoed": 0, "error": "connect: refused"})
    (problem,) = ledger.judge_pair(never, WITHIN)
    assert "the TCP stream never connected: connect: refused" in problem


def test_the_ledger_sums_the_pairs_and_says_its_verdict() -> None:
    judged = ledger.judge(
        "private link down", "node2", WITHIN, 20.4, [figures(**outage(5100, 25400))]
    )
    assert judged.within_budget
    assert judged.summary() == ledger.LedgerSummary(
        loss_ms=28300,
        connections_survived=1,
        connections=1,
        udp_lost=400,
        udp_sent=1200,
        udp_reordered=0,
        tcp_retransmits=9,
        connects_failed=80,
        budget=WITHIN.describe(),
        within_budget=True,
    )
    doc = json.loads(json.dumps(judged.to_json()))
    assert doc["summary"]["loss_ms"] == 28300
    assert ledger.summary_of(doc) == judged.summary(), "read back from faults.json as it was"
    assert doc["pairs"][0]["udp"]["windows"] == [{"start_ms": 5100, "end_ms": 25400}]
    text = ledger.render_text(judged)
    assert "disruption ledger: private link down on node2 (the fault lasted 20.4 s" in text
    assert "UDP stream   sent 1200, lost 400, reordered 0" in text
    assert "TCP stream   survived; sent 1200, echoed 1200, retransmits 9" in text
    assert "+0.1 s..+28.4 s (28300 ms)" in text
    assert text.rstrip().endswith("verdict: within budget")


def test_a_ledger_without_pairs_is_not_within_any_budget() -> None:
    judged = ledger.judge("node suspended", "node2", WITHIN, 10.0, [])
    assert not judged.within_budget
    assert "no flows were measured" in ledger.render_text(judged)


def test_an_out_of_budget_ledger_lists_its_problems_in_its_text() -> None:
    cut = figures(tcp={"error": "closed by the peer"})
    judged = ledger.judge("containerd restarted", "node2", faults.NOTHING_LOST, 12.0, [cut])
    text = ledger.render_text(judged)
    assert "TCP stream   CUT" in text
    assert "verdict: OUT OF BUDGET" in text
    assert "did not survive (closed by the peer)" in text


# --- the faults' budgets ------------------------------------------------------------------


def test_every_fault_states_a_budget_with_its_reason() -> None:
    labs = [load_lab(path) for path in sorted((ROOT / "labs").glob("ci-*.yaml"))]
    made = []
    for name, kind in sorted(faults.KINDS.items()):
        lab = next(lab for lab in labs if kind.applies(lab))  # a CI lab takes every fault
        made.append(faults.make_fault(name, lab, faults.victim(lab), lambda: 0))
    for fault in made:
        assert fault.budget.reason, fault.name
    by_name = {f.name: f.budget for f in made}
    assert by_name["containerd restarted"] == faults.NOTHING_LOST
    assert by_name["containerd restarted"].loss == "none"
    assert by_name["containerd restarted"].connections_survive
    for name in ("private link down", "node suspended", "pod network restarted", "FDB entry lost"):
        assert by_name[name].loss == "fault"
        assert by_name[name].after_s == faults.AFTER_S
        assert by_name[name].connections_survive
    assert by_name["node hard-rebooted"].loss == "unbounded"
    assert not by_name["node hard-rebooted"].connections_survive
    routers = [f for f in made if isinstance(f, faults.RouterFault)]
    assert len(routers) == 3, "the tunnel's port dropped, a narrow hop, netem"
    assert {f.budget for f in routers} == {faults.ACROSS_THE_ROUTER}


def test_a_budget_describes_itself() -> None:
    assert Budget("none").describe() == "no loss at all; connections survive"
    assert WITHIN.describe() == (
        "loss only during the fault and at most 10 s after it; connections survive"
    )
    assert faults.CUT_WITH_THE_PODS.describe() == (
        "loss not bounded (the target dies with the fault); connections may be cut"
    )


# --- the nightly page ---------------------------------------------------------------------


def test_the_nightly_page_shows_each_faults_ledger_and_fails_one_out_of_budget() -> None:
    from app.summary import NightlyReport, render_html

    within = ledger.judge(
        "private link down", "node2", WITHIN, 20.4, [figures(**outage(5100, 25400))]
    )
    cut = ledger.judge(
        "containerd restarted", "node2", faults.NOTHING_LOST, 9.0, [figures(tcp={"error": "x"})]
    )
    fault = {"node": "node2", "failed_during": [], "wrong_during": [], "recovered": True}
    page = render_html(
        NightlyReport(
            lab="ci-debian12",
            started="now",
            stages=[],
            cases=[],
            faults=[
                {
                    **fault,
                    "fault": "private link down",
                    "recovery_s": 3.2,
                    "bound_s": 90,
                    "ledger": within.to_json(),
                },
                {
                    **fault,
                    "fault": "containerd restarted",
                    "recovery_s": 1.0,
                    "bound_s": 120,
                    "ledger": cut.to_json(),
                },
                {**fault, "fault": "node suspended", "recovery_s": 2.0, "bound_s": 90},
            ],
        )
    )
    assert ledger.ledger_line(within.summary()) == (
        "loss 28300 ms; TCP connections survived 1/1; UDP lost 400/1200, reordered 0; TCP "
        "retransmits 9; new connections failed 80; budget: loss only during the fault and at "
        "most 10 s after it; connections survive: within budget"
    )
    assert '<tr class="ok"><td>private link down</td>' in page
    assert '<tr class="failed"><td>containerd restarted</td>' in page
    assert "TCP connections survived 0/1" in page
    assert "OUT OF BUDGET" in page
    assert "<td>not measured</td>" in page  # a fault recorded before the ledger existed


def test_a_summary_that_does_not_fit_reads_as_none_never_raises() -> None:
    good = ledger.judge("node suspended", "node2", WITHIN, 10.0, [figures()]).to_json()
    assert ledger.summary_of(good) is not None
    assert ledger.summary_of(None) is None
    assert ledger.summary_of({"summary": "x"}) is None
    for field, value in (("loss_ms", "12"), ("within_budget", 1), ("connections", True)):
        assert ledger.parse_summary({**good["summary"], field: value}) is None, field
    missing = {k: v for k, v in good["summary"].items() if k != "budget"}
    assert ledger.parse_summary(missing) is None
    assert ledger.ledger_line(None) == "not measured"
