"""The tunnel proof's scenario (e2e/tunnelproof.py) against strict fakes: what it asks each node
and in which order (rules and a first reading, the tagged cells, a second reading with the
routes, the rules removed), that the rules go whatever happens, and how it judges."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e import tunnelproof
from lab.common.commands import Command, render_remote
from lab.model.labfile import load_lab
from lab.net import reachability as rm
from lab.podnet import proof
from tests.fakes import FakeDriver, Step, script, two_pods_per_node

ROOT = Path(__file__).resolve().parents[2]
VX = load_lab(ROOT / "labs" / "ci-debian12-vxlan.yaml")
PODS = two_pods_per_node()
RUN = "r1-fake"
CARRIER = proof.carrier_of(VX, 8080)
RULES = proof.rules_by_node(VX, CARRIER, proof.node_pairs(VX.node_names, RUN))
TARGETS = {"node1": ("10.244.1.2", "10.244.1.3"), "node2": ("10.244.0.2", "10.244.0.3")}
PEER = {"node1": "10.10.20.242", "node2": "10.10.20.241"}


def saved(node: str, tx: int, rx: int) -> str:
    """`iptables-save -c -t mangle` with the node's rules at `tx` (leaving) and `rx`
    (arriving) packets."""
    lines = ["*mangle", ":PREROUTING ACCEPT [90:9000]", ":POSTROUTING ACCEPT [80:8000]"]
    for rule in RULES[node]:
        count = tx if rule.comment.endswith("/tx") else rx
        spec = " ".join(w if w != rule.comment else f'"{w}"' for w in rule.spec)
        lines.append(f"[{count}:{count * 98}] -A {rule.chain} {spec}")
    return "\n".join([*lines, "COMMIT", ""])


def steps(node: str, counted: tuple[int, int], device: tuple[str, str], route: str) -> list[Step]:
    """The node's two round trips: rules added and read; read again (the rules at `counted`
    (tx, rx) packets), the routes, the rules removed."""
    reads = proof.read_counters(CARRIER)
    return [
        *(Step(node, proof.add_rule(r).argv) for r in RULES[node]),
        Step(node, reads[0].argv, saved(node, 0, 0)),
        Step(node, reads[1].argv, device[0]),
        Step(node, reads[0].argv, saved(node, *counted)),
        Step(node, reads[1].argv, device[1]),
        *(Step(node, proof.route_to(ip).argv, route.format(ip=ip)) for ip in TARGETS[node]),
        *(Step(node, proof.delete_rule(r).argv) for r in RULES[node]),
    ]


def answered(driver: FakeDriver) -> None:
    for cells in tunnelproof.crossing_cells(proof.node_pairs(VX.node_names, RUN), PODS).values():
        for c in cells:
            source = c.source if isinstance(c.source, str) else str(c.source.ip)
            driver.observations[c.id] = rm.Observation(True, source, f"reproduce {c.id}")


TUNNELLED = "{ip} via 10.244.1.0 dev flannel.1 src 10.244.0.0 uid 0 \n    cache \n"


def test_each_pairs_cells_carry_its_tag_from_every_pod_and_the_node() -> None:
    cells = tunnelproof.crossing_cells(proof.node_pairs(VX.node_names, RUN), PODS)
    one_two = cells[f"nltp.{RUN}.node1.node2"]
    assert [c.id for c in one_two] == [
        "a1->b1/tunnel",
        "a1->b2/tunnel",
        "a2->b1/tunnel",
        "a2->b2/tunnel",
        "node1->b1/tunnel",
        "node1->b2/tunnel",
    ]
    assert {(c.proto, c.payload, c.dport) for c in one_two} == {
        ("udp", f"nltp.{RUN}.node1.node2\n", 8080)
    }
    assert one_two[0].cell("/proc/1/ns/net").as_json()["send"] == f"nltp.{RUN}.node1.node2\n"


def test_a_healthy_lab_is_proven_in_two_round_trips_per_node_and_leaves_no_rule() -> None:
    fake = script(
        *steps("node1", (6, 6), ("100\n100\n", "190\n150\n"), TUNNELLED),
        *steps("node2", (6, 6), ("100\n100\n", "150\n190\n"), TUNNELLED),
    )
    driver = FakeDriver(VX, fake)
    answered(driver)
    assert tunnelproof.prove_crossings(driver, VX, PODS, RUN) == []
    fake.done()
    assert [len(batch) for batch in driver.asked] == [12], "one batch of every cell"


def test_packets_around_the_tunnel_fail_the_pair_with_its_route() -> None:
    bypass = "{ip} via 10.10.20.242 dev eth1 src 10.10.20.241 uid 0 \n    cache \n"
    # node1's packets to node2 cross plain on eth1: neither its tx rule nor node2's rx rule
    # counts them, nor do the devices; node2's answers and its own cells take the tunnel
    node1 = steps("node1", (0, 6), ("100\n100\n", "100\n150\n"), bypass)
    node2 = steps("node2", (6, 0), ("100\n100\n", "150\n100\n"), TUNNELLED)
    driver = FakeDriver(VX, script(*node1, *node2))
    answered(driver)
    problems = tunnelproof.prove_crossings(driver, VX, PODS, RUN)
    assert all(p.startswith("node1 -> node2: ") for p in problems), problems
    assert len(problems) == 4
    assert "(through eth1, not flannel.1)" in problems[0]
    assert "`10.244.1.2 via 10.10.20.242 dev eth1 src 10.10.20.241`" in problems[0]


def test_the_rules_go_even_when_the_probes_raise() -> None:
    node_steps = {
        n: [
            *(Step(n, proof.add_rule(r).argv) for r in RULES[n]),
            Step(n, proof.read_counters(CARRIER)[0].argv, saved(n, 0, 0)),
            Step(n, proof.read_counters(CARRIER)[1].argv, "1\n1\n"),
            *(Step(n, proof.delete_rule(r).argv) for r in RULES[n]),
        ]
        for n in ("node1", "node2")
    }
    fake = script(*node_steps["node1"], *node_steps["node2"])
    driver = FakeDriver(VX, fake)  # no observation scripted: observe raises
    with pytest.raises(AssertionError, match="no observation scripted"):
        tunnelproof.prove_crossings(driver, VX, PODS, RUN)
    fake.done()


def test_a_rule_that_cannot_be_added_is_named_and_nothing_is_probed() -> None:
    node1 = steps("node1", (0, 0), ("1\n1\n", "1\n1\n"), TUNNELLED)
    node1[0] = Step("node1", node1[0].argv, exit_code=2)
    node2 = steps("node2", (0, 0), ("1\n1\n", "1\n1\n"), TUNNELLED)
    driver = FakeDriver(VX, script(*node1, *node2))
    problems = tunnelproof.prove_crossings(driver, VX, PODS, RUN)
    assert driver.asked == []
    add = render_remote(Command(proof.add_rule(RULES["node1"][0]).argv))
    assert problems == [
        f"could not add a counting rule on node1: exit 2: python -m lab ssh {VX.name} node1 -- "
        f"'{add}'"
    ]


def test_a_datagram_without_an_answer_is_sent_once_more_then_named() -> None:
    fake = script(
        *steps("node1", (7, 6), ("100\n100\n", "190\n150\n"), TUNNELLED),
        *steps("node2", (6, 6), ("100\n100\n", "150\n190\n"), TUNNELLED),
    )
    driver = FakeDriver(VX, fake)
    answered(driver)
    lost = "node1->b2/tunnel"
    driver.observations[lost] = rm.Observation(False, None, "reproduce it", "TimeoutError")
    problems = tunnelproof.prove_crossings(driver, VX, PODS, RUN)
    assert [len(batch) for batch in driver.asked] == [12, 1]
    assert problems == [
        "node1 -> node2: 1 of 6 tagged datagrams got no answer from their target pod:\n"
        "      node1->b2/tunnel: TimeoutError\n        reproduce: reproduce it"
    ]


def test_an_answer_from_another_pod_is_no_answer_and_one_that_names_nobody_is() -> None:
    target = PODS[2]
    cell = tunnelproof.crossing_cells(proof.node_pairs(VX.node_names, RUN), PODS)[
        f"nltp.{RUN}.node1.node2"
    ][0]
    assert cell.target == target
    named = rm.Observation(True, "10.244.0.2", "r", answered_by=target.name)
    nobody = rm.Observation(True, "10.244.0.2", "r", answered_by=None)
    other = rm.Observation(True, "10.244.0.2", "r", answered_by="b2")
    lost = rm.Observation(False, None, "r", "TimeoutError")
    assert [tunnelproof.answered(cell, o) for o in (named, nobody, other, lost)] == [
        True,
        True,
        False,
        False,
    ]
    found = tunnelproof.pair_probes(
        proof.node_pairs(VX.node_names, RUN)[0], [cell], {cell.id: other}, {}
    )
    assert found.unanswered == (f"{cell.id}: answered by b2, not b1\n        reproduce: r",)


def test_a_pairs_probes_count_the_answered_name_the_rest_and_keep_the_routes_read() -> None:
    pair = proof.node_pairs(VX.node_names, RUN)[0]
    cells = tunnelproof.crossing_cells([pair], PODS)[pair.tag]
    b1, b2 = "10.244.1.2", "10.244.1.3"
    long = "  " + "e" * 200 + "  "
    seen = {
        cells[0].id: rm.Observation(True, "10.244.0.2", "r0", answered_by="b1"),
        cells[1].id: rm.Observation(False, None, "r1", long),
        cells[2].id: rm.Observation(False, None, "r2", " \n"),
        cells[3].id: rm.Observation(True, "10.244.0.3", "r3"),
        cells[4].id: rm.Observation(True, "10.10.20.241", "r4"),
        cells[5].id: rm.Observation(True, "10.10.20.241", "r5", answered_by="b1"),
    }
    routes = {b1: f"{b1} via 10.244.1.0 dev flannel.1", b2: ""}
    assert tunnelproof.pair_probes(pair, cells, seen, routes) == proof.PairProbes(
        pair,
        6,
        3,
        (
            f"a1->b2/tunnel: {'e' * 160}\n        reproduce: r1",  # the detail's first 160
            "a2->b1/tunnel: no answer\n        reproduce: r2",
            "node1->b2/tunnel: answered by b1, not b2\n        reproduce: r5",
        ),
        # the route to each answered or not cell's target, where it was read
        (routes[b1], routes[b1], routes[b1]),
    )


def test_a_rule_left_behind_is_named_and_an_unread_route_only_goes_unshown() -> None:
    node1 = steps("node1", (6, 6), ("100\n100\n", "190\n150\n"), TUNNELLED)
    node1[-1] = Step("node1", node1[-1].argv, exit_code=1)
    route = next(i for i, s in enumerate(node1) if s.argv[:3] == ("ip", "-4", "route"))
    node1[route] = Step("node1", node1[route].argv, exit_code=2)
    node2 = steps("node2", (6, 6), ("100\n100\n", "150\n190\n"), TUNNELLED)
    driver = FakeDriver(VX, script(*node1, *node2))
    answered(driver)
    problems = tunnelproof.prove_crossings(driver, VX, PODS, RUN)
    delete = render_remote(Command(proof.delete_rule(RULES["node1"][-1]).argv))
    assert problems == [
        f"a counting rule was left on node1: exit 1: python -m lab ssh {VX.name} node1 -- "
        f"'{delete}'"
    ]


def test_on_host_gw_the_counting_rules_match_the_echo_servers_plain_udp() -> None:
    hostgw = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    carrier = proof.carrier_of(hostgw, 8080)
    rules = proof.rules_by_node(hostgw, carrier, proof.node_pairs(hostgw.node_names, RUN))
    reads = proof.read_counters(carrier)
    fake = script(
        *(
            step
            for n in ("node1", "node2")
            for step in (
                *(Step(n, proof.add_rule(r).argv, exit_code=2) for r in rules[n]),
                *(Step(n, c.argv) for c in reads),
                *(Step(n, c.argv) for c in reads),
                *(Step(n, proof.route_to(ip).argv) for ip in TARGETS[n]),
                *(Step(n, proof.delete_rule(r).argv) for r in rules[n]),
            )
        )
    )
    driver = FakeDriver(hostgw, fake)
    problems = tunnelproof.prove_crossings(driver, hostgw, PODS, RUN)
    fake.done()
    assert driver.asked == []
    assert len(problems) == sum(len(r) for r in rules.values())
    assert all(" -p udp --dport 8080 " in p for p in problems), problems
