"""The truth table (lab/net/reachability.py): expected from config, compared cell by cell,
printed whole; and to the letter: every fault's expectation (a suspended source or target, an
isolated node, a cut pair), every cell symbol, every way a wrong cell is told, the whole printed
table and its JSON."""

from __future__ import annotations

import dataclasses
import json

import pytest

from lab.net import reachability as rm
from lab.net.reachability import Expect, Mismatch, Observation

PODS = [
    rm.Endpoint("node1-p0", "node1", "10.244.0.2"),
    rm.Endpoint("node1-p1", "node1", "10.244.0.3"),
    rm.Endpoint("node2-p0", "node2", "10.244.1.2"),
]
NODES = [
    rm.Endpoint("node1", "node1", "10.10.10.241", ("10.244.0.1", "192.168.121.10")),
    rm.Endpoint("node2", "node2", "10.10.10.242", ("10.244.1.1",)),
]


def observe_all(
    m: rm.Matrix, seen: dict[str, str] | None = None, down: set[tuple[str, str]] = frozenset()
) -> rm.Matrix:  # type: ignore[assignment]
    by_name = {e.name: e for e in (*m.sources, *m.targets)}
    for src, dst in m.expected:
        if (src, dst) in down:
            m.observed[(src, dst)] = rm.Observation(False, None, f"probe {src} {dst}", "timeout")
        else:
            source = (seen or {}).get(src, by_name[src].ip)
            m.observed[(src, dst)] = rm.Observation(
                True, source, f"probe {src} {dst}", answered_by=dst
            )
    return m


def test_pod_matrix_expects_every_ordered_pair_without_nat() -> None:
    m = rm.pod_matrix(PODS)
    assert len(m.expected) == 6
    assert m.expected[("node1-p0", "node2-p0")] == rm.Expect(
        True,
        frozenset({"10.244.0.2"}),
        "every pod reaches every pod without NAT",
        responders=frozenset({"node2-p0"}),
    )
    assert observe_all(m).mismatches() == []


def test_nat_is_named_per_cell_with_its_reproduce_command() -> None:
    m = observe_all(rm.pod_matrix(PODS), seen={"node1-p0": "10.10.10.241"})
    bad = m.mismatches()
    assert [(b.source, b.target) for b in bad] == [
        ("node1-p0", "node1-p1"),
        ("node1-p0", "node2-p0"),
    ]
    text = m.render()
    assert (
        "node1-p0 -> node2-p0: expected reachable, seen as 10.244.0.2, answered by node2-p0; "
        "observed reachable, seen as 10.10.10.241, answered by node2-p0" in text
    )
    assert "reproduce: probe node1-p0 node2-p0" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("node1-p0"))
    assert row.split()[1:] == ["N", "N"]


def test_unreachable_and_unprobed_cells_are_mismatches() -> None:
    m = rm.pod_matrix(PODS)
    observe_all(m, down={("node2-p0", "node1-p0")})
    del m.observed[("node1-p1", "node2-p0")]
    assert {(b.source, b.target) for b in m.mismatches()} == {
        ("node2-p0", "node1-p0"),
        ("node1-p1", "node2-p0"),
    }
    assert m.symbol("node2-p0", "node1-p0") == "X"
    assert m.symbol("node1-p1", "node2-p0") == "?"
    assert m.cells_with("X?") == [("node1-p1", "node2-p0"), ("node2-p0", "node1-p0")]
    assert len(m.cells_with(".")) == len(m.expected) - 2


def test_isolated_node_expects_exactly_its_cross_node_cells_down() -> None:
    faults = rm.Faults(isolated=frozenset({"node2"}))
    m = rm.pod_matrix(PODS, faults)
    down = {cell for cell, e in m.expected.items() if not e.reachable}
    assert down == {
        ("node1-p0", "node2-p0"),
        ("node1-p1", "node2-p0"),
        ("node2-p0", "node1-p0"),
        ("node2-p0", "node1-p1"),
    }
    observe_all(m, down=down)
    assert m.mismatches() == []
    assert m.symbol("node1-p0", "node2-p0") == "x"


def test_a_cell_that_should_fail_but_works_is_reported() -> None:
    m = rm.pod_matrix(PODS, rm.Faults(frozen=frozenset({"node2"})))
    observe_all(m)  # everything answered although node2 is suspended
    assert {m.symbol(b.source, b.target) for b in m.mismatches()} == {"R"}


def test_node_matrix_accepts_only_addresses_the_sender_owns() -> None:
    m = rm.node_matrix(NODES, PODS)
    observe_all(m, seen={"node1": "10.244.0.1"})
    assert m.mismatches() == []
    m2 = observe_all(rm.node_matrix(NODES, PODS), seen={"node1": "10.10.10.242"})
    assert {b.source for b in m2.mismatches()} == {"node1"}


def test_matrix_json_round_trips_the_cells() -> None:
    import json

    m = observe_all(rm.pod_matrix(PODS))
    data = json.loads(m.to_json())
    assert len(data["cells"]) == 6
    assert {c["symbol"] for c in data["cells"]} == {"."}


def test_a_cut_pair_expects_exactly_the_cells_between_those_nodes_down() -> None:
    pods = [*PODS, rm.Endpoint("node3-p0", "node3", "10.244.2.2")]
    faults = rm.Faults(cut=frozenset({frozenset({"node1", "node3"})}))
    m = rm.pod_matrix(pods, faults)
    down = {cell for cell, e in m.expected.items() if not e.reachable}
    assert down == {
        ("node1-p0", "node3-p0"),
        ("node1-p1", "node3-p0"),
        ("node3-p0", "node1-p0"),
        ("node3-p0", "node1-p1"),
    }


def test_a_single_syn_retransmit_is_told() -> None:
    observed = Observation(True, "10.0.0.1", "probe", retransmits=1)
    assert "after 1 SYN retransmit(s)" in str(Mismatch("a", "b", Expect(True), observed))


def test_a_node_matrix_is_titled_node_to_pod() -> None:
    from lab.net import reachability as rm

    node = rm.Endpoint("node1", "node1", "10.10.10.241")
    assert rm.node_matrix([node], [rm.Endpoint("p", "node1", "10.244.0.2")]).title == "node -> pod"


P1 = rm.Endpoint("node1-p0", "node1", "10.244.0.2")

P2 = rm.Endpoint("node1-p1", "node1", "10.244.0.3")

P3 = rm.Endpoint("node2-p0", "node2", "10.244.1.2")

P4 = rm.Endpoint("node3-p0", "node3", "10.244.2.2")

OK = "every pod reaches every pod without NAT"


@pytest.mark.parametrize(
    ("faults", "src", "dst", "expect"),
    [
        (
            rm.Faults(frozen=frozenset({"node1"})),
            P1,
            P3,
            rm.Expect(False, frozenset(), "its source node is suspended", source_down=True),
        ),
        (
            rm.Faults(frozen=frozenset({"node1"})),
            P1,
            P2,
            rm.Expect(False, frozenset(), "its source node is suspended", source_down=True),
        ),
        (
            rm.Faults(frozen=frozenset({"node2"})),
            P1,
            P3,
            rm.Expect(False, frozenset(), "its target's node is suspended"),
        ),
        (
            rm.Faults(frozen=frozenset({"node2"})),
            P1,
            P2,
            rm.Expect(True, frozenset({"10.244.0.2"}), OK),
        ),
        (
            rm.Faults(isolated=frozenset({"node1"})),
            P1,
            P3,
            rm.Expect(False, frozenset(), "cross-node cell of an isolated node"),
        ),
        (
            rm.Faults(isolated=frozenset({"node1"})),
            P3,
            P1,
            rm.Expect(False, frozenset(), "cross-node cell of an isolated node"),
        ),
        (
            rm.Faults(isolated=frozenset({"node1"})),
            P1,
            P2,
            rm.Expect(True, frozenset({"10.244.0.2"}), OK),
        ),
        (
            rm.Faults(isolated=frozenset({"node1"})),
            P3,
            P4,
            rm.Expect(True, frozenset({"10.244.1.2"}), OK),
        ),
        (
            rm.Faults(cut=frozenset({frozenset({"node1", "node2"})})),
            P3,
            P1,
            rm.Expect(False, frozenset(), "between two nodes whose tunnel is cut"),
        ),
        (
            rm.Faults(cut=frozenset({frozenset({"node1", "node2"})})),
            P1,
            P4,
            rm.Expect(True, frozenset({"10.244.0.2"}), OK),
        ),
        (
            rm.Faults(frozen=frozenset({"node1"}), isolated=frozenset({"node2"})),
            P3,
            P1,
            rm.Expect(False, frozenset(), "its target's node is suspended"),
        ),
    ],
)
def test_each_fault_expects_exactly_its_cells_down(
    faults: rm.Faults, src: rm.Endpoint, dst: rm.Endpoint, expect: rm.Expect
) -> None:
    m = rm.pod_matrix([P1, P2, P3, P4], faults)
    if expect.reachable:  # the target itself must answer a reachable cell
        expect = dataclasses.replace(expect, responders=frozenset({dst.name}))
    assert m.expected[(src.name, dst.name)] == expect


def obs(reachable: bool = True, seen: str | None = "10.244.0.2", **kw: object) -> rm.Observation:
    return rm.Observation(reachable, seen, "probe a b", **kw)  # type: ignore[arg-type]


REACH = rm.Expect(True, frozenset({"10.244.0.2", "10.244.0.9"}))

DOWN = rm.Expect(False)

SRC_DOWN = rm.Expect(False, source_down=True)

WHO = rm.Expect(True, frozenset({"10.244.0.2"}), responders=frozenset({"b"}))


@pytest.mark.parametrize(
    ("expect", "observed", "symbol"),
    [
        (REACH, obs(), "."),
        (REACH, obs(seen="10.10.10.241"), "N"),
        (REACH, obs(retransmits=1), "S"),
        (rm.Expect(True), obs(seen="anything"), "."),
        (REACH, obs(False, None), "X"),
        (REACH, obs(unknown=True), "?"),
        (DOWN, obs(False, None), "x"),
        (DOWN, obs(), "R"),
        (SRC_DOWN, obs(unknown=True), "x"),
        (SRC_DOWN, obs(), "R"),
        (SRC_DOWN, obs(False, None), "?"),
        (REACH, None, "?"),
        (WHO, obs(answered_by="b"), "."),
        (WHO, obs(answered_by="c"), "W"),
        (WHO, obs(), "W"),
        (WHO, obs(seen="10.10.10.241", answered_by="c"), "W"),
    ],
)
def test_each_cell_gets_its_symbol(
    expect: rm.Expect, observed: rm.Observation | None, symbol: str
) -> None:
    m = rm.Matrix("t", (P1,), (P3,), {("a", "b"): expect})
    if observed is not None:
        m.observed[("a", "b")] = observed
    assert m.symbol("a", "b") == symbol
    assert m.symbol("a", "c") == " "
    assert m.cells_with(symbol) == [("a", "b")]
    assert [(x.source, x.target) for x in m.mismatches()] == (
        [] if symbol in ".x" else [("a", "b")]
    )


@pytest.mark.parametrize(
    ("expect", "observed", "text"),
    [
        (REACH, None, "expected reachable, seen as 10.244.0.2 or 10.244.0.9; observed not probed"),
        (
            rm.Expect(True),
            obs(False, None, detail="  refused\n"),
            "expected reachable; observed unreachable (refused)\n      reproduce: probe a b",
        ),
        (
            REACH,
            obs(False, None),
            "expected reachable, seen as 10.244.0.2 or 10.244.0.9; observed unreachable (no answer)"
            "\n      reproduce: probe a b",
        ),
        (
            DOWN,
            obs(seen="10.244.0.2"),
            "expected unreachable; observed reachable, seen as 10.244.0.2"
            "\n      reproduce: probe a b",
        ),
        (
            SRC_DOWN,
            obs(False, None, unknown=False),
            "expected no probe (its source is down); observed unreachable (no answer)"
            "\n      reproduce: probe a b",
        ),
        (
            REACH,
            obs(unknown=True, detail=" ssh: timeout "),
            "expected reachable, seen as 10.244.0.2 or 10.244.0.9; observed unknown: the probe did "
            "not run (ssh: timeout)\n      reproduce: probe a b",
        ),
        (
            REACH,
            obs(retransmits=2),
            "expected reachable, seen as 10.244.0.2 or 10.244.0.9; observed reachable, seen as "
            f"10.244.0.2, after 2 SYN retransmit(s); {rm.OFFLOAD_HINT}\n      reproduce: probe a b",
        ),
    ],
)
def test_a_wrong_cell_says_what_was_expected_and_observed(
    expect: rm.Expect, observed: rm.Observation | None, text: str
) -> None:
    assert str(rm.Mismatch("a", "b", expect, observed)) == f"a -> b: {text}"


def test_a_long_error_is_cut_to_120_characters() -> None:
    detail = "e" * 130
    got = str(rm.Mismatch("a", "b", DOWN, obs(True, "x", unknown=True, detail=detail)))
    assert f"({'e' * 120})" in got
    got = str(rm.Mismatch("a", "b", REACH, obs(False, None, detail=detail)))
    assert f"({'e' * 120})" in got


def matrix() -> rm.Matrix:
    m = rm.pod_matrix([P1, P3, P4], rm.Faults(frozen=frozenset({"node3"})), title="pods")
    m.observed[("node1-p0", "node2-p0")] = obs(connect_s=0.002, answered_by="node2-p0")
    m.observed[("node2-p0", "node1-p0")] = obs(
        seen="10.10.10.242", connect_s=0.004, answered_by="node1-p0"
    )
    m.observed[("node1-p0", "node3-p0")] = obs(False, None, detail="timeout")
    m.observed[("node3-p0", "node1-p0")] = obs(unknown=True, detail="suspended")
    m.observed[("node2-p0", "node3-p0")] = obs(
        seen="10.244.1.2", connect_s=0.001, answered_by="node3-p0"
    )
    return m


def test_the_printed_table_has_rows_columns_legend_times_sources_and_wrong_cells() -> None:
    assert matrix().render().splitlines() == [
        "pods",
        "           0  1  2",
        "node1-p0      .  x",
        "node2-p0   N     R",
        "node3-p0   x  ?   ",
        "columns: 0=node1-p0 (10.244.0.2), 1=node2-p0 (10.244.1.2), 2=node3-p0 (10.244.2.2)",
        rm.LEGEND,
        "connect times: 3 cells, median 2.0 ms, max 4.0 ms",
        "observed sources (the client address each receiver reported):",
        "  node1-p0: 10.244.0.2 (1 cell)",
        "  node2-p0: 10.10.10.242 (1 cell), 10.244.1.2 (1 cell)",
        "  node3-p0: 10.244.0.2 (1 cell)",
        "3 wrong cell(s):",
        "  - node2-p0 -> node1-p0: expected reachable, seen as 10.244.1.2, answered by node1-p0; "
        "observed reachable, seen as 10.10.10.242, answered by node1-p0",
        "      reproduce: probe a b",
        "  - node2-p0 -> node3-p0: expected unreachable; observed reachable, seen as 10.244.1.2, "
        "answered by node3-p0",
        "      reproduce: probe a b",
        "  - node3-p0 -> node2-p0: expected no probe (its source is down); observed not probed",
    ]


def test_a_table_without_timings_or_sources_says_none() -> None:
    m = rm.pod_matrix([P1, P3])
    m.observed[("node1-p0", "node2-p0")] = obs(False, None)
    m.observed[("node2-p0", "node1-p0")] = obs(seen="10.244.1.2")
    m.observed[("node2-p0", "node1-p0")] = obs(seen="10.244.1.2")
    lines = m.render().splitlines()
    assert not any(line.startswith("connect times") for line in lines)
    assert "  node1-p0: none" in lines
    assert "  node2-p0: 10.244.1.2 (1 cell)" in lines


def test_the_json_has_every_cell_with_its_expectation_observation_and_symbol() -> None:
    m = rm.pod_matrix([P1, P3])
    m.observed[("node1-p0", "node2-p0")] = obs(answered_by="node2-p0")
    text = m.to_json()
    assert text.startswith('{\n "title": "pod -> pod",\n "sources": [\n  {\n   "name"')
    data = json.loads(text)
    assert data["cells"] == [
        {
            "source": "node1-p0",
            "target": "node2-p0",
            "expected": {
                "reachable": True,
                "sources": ["10.244.0.2"],
                "responders": ["node2-p0"],
                "why": OK,
            },
            "observed": {
                "reachable": True,
                "seen_source": "10.244.0.2",
                "reproduce": "probe a b",
                "detail": "",
                "seconds": 0.0,
                "connect_s": None,
                "retransmits": 0,
                "unknown": False,
                "answered_by": "node2-p0",
                "answer": "",
            },
            "symbol": ".",
        },
        {
            "source": "node2-p0",
            "target": "node1-p0",
            "expected": {
                "reachable": True,
                "sources": ["10.244.1.2"],
                "responders": ["node1-p0"],
                "why": OK,
            },
            "observed": None,
            "symbol": "?",
        },
    ]
    assert data["sources"][1] == {
        "name": "node2-p0",
        "node": "node2",
        "ip": "10.244.1.2",
        "owned": [],
    }


def test_a_node_whose_route_source_it_may_not_use_admits_no_observation() -> None:
    node = rm.Endpoint("node1", "node1", "10.10.10.241", ("10.244.0.1",))
    m = rm.node_matrix(
        [node],
        [P1, P3],
        route_sources={("node1", "node1-p0"): "10.244.0.1", ("node1", "node2-p0"): "192.168.121.5"},
    )
    assert m.expected[("node1", "node1-p0")].sources == frozenset({"10.244.0.1"})
    assert m.expected[("node1", "node2-p0")].sources == frozenset(
        {"(none: route source 192.168.121.5 is not an address this node may use)"}
    )
    m2 = rm.node_matrix([node], [P1], route_sources={})
    assert m2.expected[("node1", "node1-p0")].sources == frozenset(
        {"(none: route source unknown is not an address this node may use)"}
    )


def test_connect_times_give_the_median_and_the_worst_and_sources_are_counted() -> None:
    m = rm.pod_matrix([P1, P3, P4])
    for (src, dst), seconds in zip(
        sorted(m.expected), [0.001, 0.1, 0.2, 0.3, 0.05, 0.06], strict=True
    ):
        seen = "10.244.9.9" if src == "node1-p0" else None
        m.observed[(src, dst)] = obs(seen=seen, connect_s=seconds)
    lines = m.render().splitlines()
    assert "connect times: 6 cells, median 100.0 ms, max 300.0 ms" in lines
    assert "  node1-p0: 10.244.9.9 (2 cells)" in lines
