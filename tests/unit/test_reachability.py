"""The truth table: expected from config, compared cell by cell, printed whole."""

from __future__ import annotations

from lab.net import reachability as rm

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


def test_a_mismatch_names_who_should_have_answered_and_as_whom_the_source_is_seen() -> None:
    expect = rm.Expect(
        True,
        frozenset({"10.244.0.5", "10.10.40.241"}),
        responders=frozenset({"web-1", "web-0"}),
        source_of=frozenset({("web-1", "10.10.40.241"), ("web-0", "10.244.0.5")}),
    )
    seen = rm.Observation(True, "10.244.9.9", "repro", answered_by="web-7")
    assert str(rm.Mismatch("a", "svc", expect, seen)) == (
        "a -> svc: expected reachable, seen as 10.244.0.5 (answered by web-0) or 10.10.40.241 "
        "(answered by web-1), answered by web-0 or web-1; observed reachable, seen as "
        "10.244.9.9, answered by web-7\n      reproduce: repro"
    )
    plain = rm.Expect(True, frozenset({"10.244.0.5", "10.10.40.241"}))
    assert str(rm.Mismatch("a", "b", plain, None)) == (
        "a -> b: expected reachable, seen as 10.10.40.241 or 10.244.0.5; observed not probed"
    )


def test_with_sources_per_responder_only_the_answering_pods_sources_are_allowed() -> None:
    expect = rm.Expect(
        True,
        frozenset({"10.9.9.9"}),  # replaced by source_of
        source_of=frozenset({("web-0", "10.244.0.5"), ("web-1", "10.10.40.241")}),
    )
    assert expect.allowed_sources("web-0") == frozenset({"10.244.0.5"})
    assert expect.allowed_sources("web-2") == frozenset()
    assert rm.Expect(True, frozenset({"10.9.9.9"})).allowed_sources("web-0") == {"10.9.9.9"}


def test_a_cell_is_judged_by_the_sources_allowed_for_the_pod_that_answered() -> None:
    a = rm.Endpoint("a", "node1", "10.244.0.5")
    svc = rm.Endpoint("svc", "node2", "10.96.0.20")
    expect = rm.Expect(
        True,
        responders=frozenset({"web-0", "web-1"}),
        source_of=frozenset({("web-0", "10.244.0.5"), ("web-1", "10.10.40.241")}),
    )
    m = rm.Matrix("svc", (a,), (svc,), {("a", "svc"): expect})
    m.observed[("a", "svc")] = rm.Observation(True, "10.244.0.5", "r", answered_by="web-0")
    assert m.symbol("a", "svc") == "."
    m.observed[("a", "svc")] = rm.Observation(True, "10.244.0.5", "r", answered_by="web-1")
    assert m.symbol("a", "svc") == "N"  # web-1's answers come masqueraded: not this source
