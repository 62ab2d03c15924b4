"""The disruption ledger, pure: the flow client's result read, judged against each kind of
budget (passing and failing), and shown; the faults' stated budgets."""

from __future__ import annotations

import dataclasses
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


# --- the ledger's text, whole -------------------------------------------------------------


def pair(source: str, host: str) -> PairFigures:
    return PairFigures(source, "node1", source.replace("node1", "node2"), "node2", host)


def four_pairs() -> list[PairFigures]:
    """A pair with every kind of window (more than four UDP runs), one without figures, one
    whose loss never ended and that saw only the heal, and a clean one that saw no mark."""
    full = figures(
        tcp={"echoed": 1100, "retransmits": 3, "error": "recv: reset",
             "stalls": [[5100, 9000], [10000, None]]},
        udp={"lost": 40, "received": 1161, "reordered": 2, "duplicated": 1,
             "windows": [[5100, 5200], [6000, 6100], [7000, 7150], [8000, 8100], [9000, 9100]]},
        connect={"failures": 12, "answered_by": ["nl-a-node2-0", "nl-b-node2-0"],
                 "windows": [[5000, 6000], [7000, 8000], [9000, 10000], [11000, 12500]],
                 "last_error": "connect: timed out"},
    )  # fmt: skip
    missing = ledger.parse_result(
        "garbage\n", PairFigures("nl-a-node3-0", "node3", "nl-a-node2-0", "node2", "10.244.2.3")
    )
    cut = ledger.parse_result(
        result(
            marks={"healed": 25050},
            udp={"lost": 600, "windows": [[30000, None]]},
            connect={"failures": 120, "windows": [[30000, None]], "last_error": "connect: refused"},
        ),
        pair("nl-b-node1-0", "10.244.2.4"),
    )
    clean = ledger.parse_result(
        result(marks={}, connect={"answered_by": [], "last_error": "stale"}),
        pair("nl-c-node1-0", "10.244.2.5"),
    )
    return [full, missing, cut, clean]


LEDGER_TEXT = """\
disruption ledger: private link down on node2 (the fault lasted 20.4 s, inject to healed)
budget: loss only during the fault and at most 2.5 s after it; connections survive
  why: a test's budget
loss 50000 ms (longest without progress); connections survived 2/3; UDP lost 640/3600, \
reordered 2; TCP retransmits 3; new connections failed 132
nl-a-node1-0 (node1) -> nl-a-node2-0 10.244.2.3 (node2)
  marks (ms after the flows began): inject 5000, healed 25000 (+20.0 s); flows ended 60000 \
(+55.0 s)
  TCP stream   CUT; sent 1200, echoed 1100, retransmits 3, error: recv: reset; stalls over \
1000 ms: +0.1 s..+4.0 s (3900 ms), +5.0 s..the end (50000 ms)
  UDP stream   sent 1200, lost 40, reordered 2, duplicated 1; lost runs: +0.1 s..+0.2 s \
(100 ms), +1.0 s..+1.1 s (100 ms), +2.0 s..+2.1 s (150 ms), +3.0 s..+3.1 s (100 ms) and 1 more
  connections  240 made, 12 failed; failing: +0.0 s..+1.0 s (1000 ms), +2.0 s..+3.0 s \
(1000 ms), +4.0 s..+5.0 s (1000 ms), +6.0 s..+7.5 s (1500 ms); answered by nl-a-node2-0, \
nl-b-node2-0; last error: connect: timed out
nl-a-node3-0 (node3) -> nl-a-node2-0 10.244.2.3 (node2)
  no figures: the flow client wrote no result: 'garbage'
nl-b-node1-0 (node1) -> nl-b-node2-0 10.244.2.4 (node2)
  marks (ms after the flows began): inject None, healed 25050 (+25.1 s); flows ended 60000 \
(+60.0 s)
  TCP stream   survived; sent 1200, echoed 1200, retransmits 0; stalls over 1000 ms: none
  UDP stream   sent 1200, lost 600, reordered 0, duplicated 0; lost runs: +30.0 s..the end \
(30000 ms)
  connections  240 made, 120 failed; failing: +30.0 s..the end (30000 ms); answered by \
nl-a-node2-0; last error: connect: refused
nl-c-node1-0 (node1) -> nl-c-node2-0 10.244.2.5 (node2)
  marks (ms after the flows began): inject None, healed None (the end); flows ended 60000 \
(+60.0 s)
  TCP stream   survived; sent 1200, echoed 1200, retransmits 0; stalls over 1000 ms: none
  UDP stream   sent 1200, lost 0, reordered 0, duplicated 0; lost runs: none
  connections  240 made, 0 failed; failing: none; answered by nobody
verdict: OUT OF BUDGET
  - nl-a-node1-0 (node1) -> nl-a-node2-0 (node2): TCP stream stall from +5.0 s to the end \
after inject (50000 ms; the fault lasted 20000 ms): over the budget of the fault's end + 22.5 s
  - nl-a-node1-0 (node1) -> nl-a-node2-0 (node2): the established TCP connection did not \
survive (recv: reset)
  - nl-a-node3-0 (node3) -> nl-a-node2-0 (node2): no figures: the flow client wrote no \
result: 'garbage'
  - nl-b-node1-0 (node1) -> nl-b-node2-0 (node2): the flows did not see the fault's marks \
(seen: healed)
  - nl-c-node1-0 (node1) -> nl-c-node2-0 (node2): the flows did not see the fault's marks \
(seen: none)
"""


def test_the_ledgers_text_shows_every_pair_with_its_marks_flows_and_windows() -> None:
    budget = Budget("fault", 2.5, reason="a test's budget")
    judged = ledger.judge("private link down", "node2", budget, 20.44, four_pairs())
    assert ledger.render_text(judged) == LEDGER_TEXT


def test_a_pair_lacking_any_kind_of_figures_is_shown_and_judged_without_figures() -> None:
    whole = figures()
    for lacking in ("tcp", "udp", "connect"):
        part = dataclasses.replace(whole, **{lacking: None})
        judged = ledger.judge("node suspended", "node2", WITHIN, 10.0, [part])
        assert ledger.render_text(judged).splitlines()[4:] == [
            "nl-a-node1-0 (node1) -> nl-a-node2-0 10.244.2.3 (node2)",
            "  no figures: ",
            "verdict: OUT OF BUDGET",
            "  - nl-a-node1-0 (node1) -> nl-a-node2-0 (node2): no figures: the flows gave none",
        ], lacking


def test_a_ledger_without_loss_says_zero_ms() -> None:
    judged = ledger.judge("node suspended", "node2", WITHIN, 10.0, [figures()])
    assert judged.loss_ms() == 0
    assert judged.summary().loss_ms == 0
    assert ledger.judge("node suspended", "node2", WITHIN, 10.0, []).loss_ms() == 0


# --- the result read exactly, odd values included -----------------------------------------


def test_a_result_is_read_field_by_field_and_odd_values_count_as_none() -> None:
    doc = {
        "end_ms": 61000,
        "marks": {"inject": 5000, "healed": 25000, "late": "x", "bool": 3},
        "tcp": {"connected": "yes", "sent": True, "echoed": 1.5, "retransmits": 4, "error": None,
                "stalls": [[1, 2], [1], "x", [1.5, 2], [3, "open"], [4, None], [5, 6, 7]]},
        "udp": {"sent": 10, "received": 9, "lost": 1, "reordered": 2, "duplicated": 3,
                "windows": "[[1, 2]]"},
        "connect": {"attempts": 8, "failures": 7, "windows": [[100, 350]],
                    "answered_by": [1, "nl-a-node2-0"], "last_error": None},
    }  # fmt: skip
    assert ledger.parse_result(json.dumps(doc), PAIR) == PairFigures(
        "nl-a-node1-0",
        "node1",
        "nl-a-node2-0",
        "node2",
        "10.244.2.3",
        end_ms=61000,
        marks={"inject": 5000, "healed": 25000, "bool": 3},
        tcp=ledger.TcpFigures(False, 0, 0, 4, "", (Window(1, 2), Window(3, None), Window(4, None))),
        udp=ledger.UdpFigures(10, 9, 1, 2, 3, ()),
        connect=ledger.ConnectFigures(8, 7, (Window(100, 350),), ("1", "nl-a-node2-0"), ""),
    )


def test_a_result_without_marks_end_or_windows_reads_as_none_seen_and_zero() -> None:
    doc = json.loads(result())
    del doc["end_ms"]
    doc["marks"] = ["inject", 5000]
    doc["tcp"]["connected"] = True
    doc["connect"]["answered_by"] = None
    doc["udp"]["windows"] = None
    read = ledger.parse_result(json.dumps(doc), PAIR)
    assert (read.end_ms, read.marks, read.missing) == (0, {}, "")
    assert read.udp is not None
    assert read.udp.windows == ()
    assert read.connect is not None
    assert read.connect.answered_by == ()
    assert read.tcp is not None
    assert read.tcp.connected


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("", "''"),
        ("  Traceback: boom\n", "'Traceback: boom'"),
        ('{"tcp": {}, "udp": {}, "connect": []}', '\'{"tcp": {}, "udp": {}, "connect": []}\''),
        ("x" * 300, repr("x" * 200)),
    ],
)
def test_a_result_that_is_not_one_is_named_with_its_first_200_characters(
    text: str, shown: str
) -> None:
    assert ledger.parse_result(text, PAIR) == PairFigures(
        "nl-a-node1-0",
        "node1",
        "nl-a-node2-0",
        "node2",
        "10.244.2.3",
        missing=f"the flow client wrote no result: {shown}",
    )


# --- judging, message by message -----------------------------------------------------------

WHO = "nl-a-node1-0 (node1) -> nl-a-node2-0 (node2)"


def test_under_the_zero_budget_every_window_and_every_count_is_named() -> None:
    counts = figures(
        tcp={"retransmits": 2},
        udp={"lost": 3, "received": 1197},
        connect={"failures": 4, "last_error": "refused"},
    )
    assert ledger.judge_pair(counts, faults.NOTHING_LOST) == [
        f"{WHO}: 3 UDP datagram(s) lost: the budget is no loss",
        f"{WHO}: 4 new connection(s) failed",
        f"{WHO}: the TCP stream retransmitted 2 segment(s): the budget is no loss",
    ]
    windows = figures(
        tcp={"stalls": [[4500, 6000]]},
        udp={"lost": 3, "received": 1197, "windows": [[9000, 9150]]},
        connect={"failures": 4, "windows": [[9000, None]]},
    )
    assert ledger.judge_pair(windows, faults.NOTHING_LOST) == [
        f"{WHO}: TCP stream stall from -0.5 s to +1.0 s after inject (1500 ms): the budget is "
        "no loss",
        f"{WHO}: UDP datagrams lost from +4.0 s to +4.2 s after inject (150 ms): the budget is "
        "no loss",
        f"{WHO}: new connections failing from +4.0 s to the end after inject (51000 ms): the "
        "budget is no loss",
    ]
    assert ledger.judge_pair(figures(), Budget("none", connections_survive=False)) == []


def test_a_window_ending_exactly_at_the_fault_end_plus_its_grace_is_within() -> None:
    budget = Budget("fault", 2.5)
    edge = figures(udp={"windows": [[5100, HEALED + 2500]]},
                   tcp={"stalls": [[5100, HEALED + 2500 + 20000]]})  # fmt: skip
    assert ledger.judge_pair(edge, budget) == []
    over = figures(udp={"windows": [[5100, HEALED + 2501]]},
                   tcp={"stalls": [[5100, HEALED + 2501 + 20000]]})  # fmt: skip
    assert ledger.judge_pair(over, budget) == [
        f"{WHO}: TCP stream stall from +0.1 s to +42.5 s after inject (42401 ms; the fault "
        "lasted 20000 ms): over the budget of the fault's end + 22.5 s",
        f"{WHO}: UDP datagrams lost from +0.1 s to +22.5 s after inject (22401 ms; the fault "
        "lasted 20000 ms): over the budget of the fault's end + 2.5 s",
    ]


def test_loss_before_the_fault_is_named_for_every_flow() -> None:
    early = figures(
        tcp={"stalls": [[1000, 2500]]},
        udp={"windows": [[4499, 4600]]},
        connect={"failures": 1, "windows": [[4000, None]]},
    )
    assert ledger.judge_pair(early, faults.CUT_WITH_THE_PODS) == [
        f"{WHO}: TCP stream stall from -4.0 s to -2.5 s after inject: loss before the fault",
        f"{WHO}: UDP datagrams lost from -0.5 s to -0.4 s after inject: loss before the fault",
        f"{WHO}: new connections failing from -1.0 s to the end after inject: loss before the "
        "fault",
    ]


def test_a_stream_that_never_connected_is_named_once_not_as_cut() -> None:
    never = figures(tcp={"connected": False, "sent": 3, "echoed": 0, "error": "refused"})
    assert ledger.judge_pair(never, WITHIN) == [f"{WHO}: the TCP stream never connected: refused"]


def test_a_connection_that_lost_lines_says_how_many() -> None:
    stuck = figures(tcp={"echoed": 1150})
    assert ledger.judge_pair(stuck, WITHIN) == [
        f"{WHO}: the established TCP connection did not survive (50 line(s) never echoed)"
    ]


def test_marks_seen_are_listed_sorted_when_one_is_missing() -> None:
    assert ledger.judge_pair(figures(marks={"zeta": 1, "healed": 2}), WITHIN) == [
        f"{WHO}: the flows did not see the fault's marks (seen: healed, zeta)"
    ]
    assert ledger.judge_pair(figures(marks={"healed": 2}), WITHIN) == [
        f"{WHO}: the flows did not see the fault's marks (seen: healed)"
    ]


def test_a_pair_without_figures_and_without_a_reason_says_the_flows_gave_none() -> None:
    assert ledger.judge_pair(PAIR, WITHIN) == [f"{WHO}: no figures: the flows gave none"]
    assert ledger.judge_pair(dataclasses.replace(figures(), missing="gone"), WITHIN) == [
        f"{WHO}: no figures: gone"
    ]


def test_the_ledger_keeps_its_fault_rounded_and_its_problems_in_pair_order() -> None:
    a, b = figures(tcp={"echoed": 1199}), figures(marks={})
    judged = ledger.judge("node suspended", "node2", WITHIN, 12.345, [a, b])
    assert judged == ledger.Ledger(
        "node suspended",
        "node2",
        WITHIN,
        12.3,
        (a, b),
        (
            f"{WHO}: the established TCP connection did not survive (1 line(s) never echoed)",
            f"{WHO}: the flows did not see the fault's marks (seen: none)",
        ),
    )
    assert not judged.within_budget
    assert ledger.judge("x", "node2", WITHIN, 1.0, []).problems == (
        "no flows were measured (no pod on another node)",
    )


def test_an_out_of_budget_ledger_in_one_line() -> None:
    budget = Budget("fault", 2.5, reason="a test's budget")
    judged = ledger.judge("private link down", "node2", budget, 20.44, four_pairs())
    assert ledger.ledger_line(judged.summary()) == (
        "loss 50000 ms; TCP connections survived 2/3; UDP lost 640/3600, reordered 2; TCP "
        "retransmits 3; new connections failed 132; budget: loss only during the fault and at "
        "most 2.5 s after it; connections survive: OUT OF BUDGET"
    )
    doc = json.loads(json.dumps(judged.to_json()))
    assert ledger.summary_of(doc) == judged.summary()
    assert doc["fault_s"] == 20.4
    assert doc["problems"] == list(judged.problems)
