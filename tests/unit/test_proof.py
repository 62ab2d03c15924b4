"""The tunnel proven by its packets (lab/podnet/proof.py): the counting rules as exact argv,
the readers fed with what the tunnel lab's nodes printed (tests/data/vxlan/proof-*.txt, see
SOURCES.md), and the judgement of a node pair: a healthy pair passes; a pair whose packets went
around the tunnel (a host-gw route on the private NIC) fails naming that route, however much
other traffic moved the device's counters meanwhile."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lab.common.commands import Output, cmd, render_remote
from lab.model.labfile import load_lab
from lab.podnet import proof

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "vxlan"
VX = load_lab(ROOT / "labs" / "ci-debian12-vxlan.yaml")
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")
TUNNEL = proof.carrier_of(VX, 8080)
PAIRS = proof.node_pairs(VX.node_names, "r793b24-cri")  # the recorded run's tags
ONE_TWO, TWO_ONE = PAIRS
TX12, RX12 = f"{ONE_TWO.tag}/tx", f"{ONE_TWO.tag}/rx"
TX21, RX21 = f"{TWO_ONE.tag}/tx", f"{TWO_ONE.tag}/rx"
HEALTHY_ROUTE = "10.244.1.4 via 10.244.1.0 dev flannel.1 src 10.244.0.0"
# `ip -4 route get` on node1 once node2's pod subnet is routed via eth1 (iproute2 6.1's text,
# as the healthy recording shows it)
BYPASS_TEXT = "10.244.1.4 via 10.10.20.242 dev eth1 src 10.10.20.241 uid 0 \n    cache \n"
BYPASS_ROUTE = "10.244.1.4 via 10.10.20.242 dev eth1 src 10.10.20.241"


def recorded(name: str) -> str:
    return (DATA / f"proof-{name}.txt").read_text()


def reading(node: str, when: str) -> proof.Counters:
    """A node's reading before or after the tunnel test's probes in a suite run."""
    outputs = [Output(0, recorded(f"healthy-{node}-{when}-{i}")) for i in range(2)]
    return proof.parse_counters(TUNNEL, outputs)


def healthy() -> tuple[dict[str, proof.Counters], dict[str, proof.Counters]]:
    nodes = ("node1", "node2")
    return {n: reading(n, "before") for n in nodes}, {n: reading(n, "after") for n in nodes}


def device(counters: proof.Counters) -> tuple[int, int]:
    assert counters.device is not None
    return counters.device


def bypassed() -> dict[str, proof.Counters]:
    """The readings after the probes had node1 routed node2's pods around the tunnel: what
    node1 sends node2 moves neither node1's tx rule and flannel.1 tx counter, nor node2's rx
    rule and flannel.1 rx counter; the other direction moves as it did in the recording."""
    before, after = healthy()
    b1, a1, b2, a2 = before["node1"], after["node1"], before["node2"], after["node2"]
    return {
        "node1": proof.Counters(
            {TX12: b1.rules[TX12], RX21: a1.rules[RX21]}, (device(b1)[0], device(a1)[1])
        ),
        "node2": proof.Counters(
            {RX12: b2.rules[RX12], TX21: a2.rules[TX21]}, (device(a2)[0], device(b2)[1])
        ),
    }


def test_the_carrier_is_the_backends_tunnel_or_the_private_nic_as_it_is() -> None:
    assert proof.Carrier("eth1", 8472, "flannel.1", 8080) == TUNNEL
    assert proof.carrier_of(CI, 8080) == proof.Carrier("eth1", None, None, 8080)
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")  # real flannel, its vxlan backend
    assert proof.carrier_of(guide, 8080) == proof.Carrier("eth1", 8472, "flannel.1", 8080)
    fl = guide.pod_network.flannel
    assert fl is not None
    host_gw = replace(
        guide, pod_network=replace(guide.pod_network, flannel=replace(fl, backend="host-gw"))
    )
    assert proof.carrier_of(host_gw, 8080) == proof.Carrier("eth1", None, None, 8080)
    assert TUNNEL.what() == "encapsulated packets (UDP 8472) on eth1"


def test_every_ordered_pair_has_a_tag_of_its_own() -> None:
    assert [(p.source, p.target, p.tag) for p in PAIRS] == [
        ("node1", "node2", "nltp.r793b24-cri.node1.node2"),
        ("node2", "node1", "nltp.r793b24-cri.node2.node1"),
    ]
    with pytest.raises(ValueError, match="at most 100 characters"):
        proof.pair_tag("r 1", "node1", "node2")
    with pytest.raises(ValueError, match="at most 100 characters"):
        proof.pair_tag("r" * 90, "node1", "node2")


def test_the_counting_rules_match_the_pairs_encapsulated_packets_on_the_private_nic() -> None:
    tx, rx = proof.counting_rules(VX, TUNNEL, ONE_TWO)
    tag = ONE_TWO.tag
    assert (tx.node, rx.node) == ("node1", "node2")
    assert render_remote(proof.add_rule(tx)) == (
        "sudo -n iptables -w -t mangle -I POSTROUTING 1 -o eth1 -s 10.10.20.241 -d 10.10.20.242 "
        f"-p udp --dport 8472 -m string --algo bm --string {tag} -m comment --comment {tag}/tx"
    )
    assert render_remote(proof.delete_rule(rx)) == (
        "sudo -n iptables -w -t mangle -D PREROUTING -i eth1 -s 10.10.20.241 -d 10.10.20.242 "
        f"-p udp --dport 8472 -m string --algo bm --string {tag} -m comment --comment {tag}/rx"
    )
    by_node = proof.rules_by_node(VX, TUNNEL, PAIRS)
    assert {n: [r.comment for r in rules] for n, rules in by_node.items()} == {
        "node1": [TX12, RX21],
        "node2": [RX12, TX21],
    }


def test_on_a_routing_backend_the_rules_count_the_probe_datagrams_as_they_are() -> None:
    plain = proof.carrier_of(CI, 8080)
    tx, _ = proof.counting_rules(CI, plain, proof.node_pairs(CI.node_names, "r1")[0])
    assert tx.spec[:6] == ("-o", "eth1", "-p", "udp", "--dport", "8080")
    assert proof.read_counters(plain) == (proof.read_counters(TUNNEL)[0],)
    assert plain.what() == "plain UDP packets to port 8080 on eth1"


def test_across_a_router_the_pairs_are_the_nodes_and_the_rules_their_segments_addresses() -> None:
    """The router VM of a routed underlay is no node: it sends no probe and takes no rule; the
    encapsulated packets keep the two nodes' addresses across it (it routes, it does not NAT)."""
    routed = load_lab(ROOT / "labs" / "ci-debian12-routed-vxlan.yaml")
    carrier = proof.carrier_of(routed, 8080)
    assert (carrier.nic, carrier.port, carrier.device) == ("eth1", 8472, "flannel.1")
    pairs = proof.node_pairs(routed.node_names, "r1")
    assert [(p.source, p.target) for p in pairs] == [("node1", "node2"), ("node2", "node1")]
    tx, rx = proof.counting_rules(routed, carrier, pairs[0])
    assert (tx.node, rx.node) == ("node1", "node2")
    assert tx.spec[:6] == ("-o", "eth1", "-s", "10.10.50.241", "-d", "10.10.51.242")
    assert rx.spec[:6] == ("-i", "eth1", "-s", "10.10.50.241", "-d", "10.10.51.242")
    bgp = load_lab(ROOT / "labs" / "ci-debian12-routed-bgp.yaml")
    assert proof.carrier_of(bgp, 8080).port is None


def test_recorded_counters_read_back_per_rule_and_device() -> None:
    """A suite run's readings (one stale rule of an earlier test on node2 is not ours)."""
    before, after = healthy()
    assert before["node1"].rules == {TX12: 0, RX21: 0}
    assert after["node1"].rules == {TX12: 6, RX21: 6}
    assert after["node2"].rules == {"nltp-exp": 0, RX12: 6, TX21: 6}
    assert (before["node1"].device, after["node1"].device) == ((146, 148), (163, 165))
    assert proof.parse_rule_counts('[1:2] -A X -m comment --comment "a b\n') == {}
    assert proof.parse_device_counters("12\n") is None
    assert proof.parse_counters(TUNNEL, [Output(1, ""), Output(0, "1\n2\n")]) == proof.Counters(
        {}, (1, 2)
    )


def test_recorded_routes_name_their_device() -> None:
    assert proof.route_line(recorded("healthy-node1-route")) == HEALTHY_ROUTE
    assert proof.route_line(BYPASS_TEXT) == BYPASS_ROUTE
    assert proof.route_device(BYPASS_ROUTE) == "eth1"
    assert proof.route_device(HEALTHY_ROUTE) == "flannel.1"
    assert proof.route_line("") == ""


def judged(
    pair: proof.Pair,
    answered: int,
    route: str = HEALTHY_ROUTE,
    after: dict[str, proof.Counters] | None = None,
    **edits: object,
) -> list[str]:
    before, recorded_after = healthy()
    probes = proof.PairProbes(pair, answered, answered, routes=(route, route))
    for name, value in edits.items():
        probes = proof.PairProbes(**{**probes.__dict__, name: value})
    return proof.pair_problems(VX, TUNNEL, probes, before, after or recorded_after)


def test_a_healthy_pair_passes_with_at_least_one_counted_packet_per_answer() -> None:
    assert judged(ONE_TWO, 6) == []
    assert judged(TWO_ONE, 6) == []
    assert judged(ONE_TWO, 5) == []  # a lower bound: more counted is fine
    assert "only 6 sent by node1" in judged(ONE_TWO, 7)[0]


def test_a_pair_routed_around_the_tunnel_fails_with_the_route_it_took() -> None:
    problems = judged(ONE_TWO, 6, BYPASS_ROUTE, bypassed())
    assert len(problems) == 4, problems
    assert problems[0] == (
        "node1 -> node2: 6 tagged datagram(s) answered, but only 0 sent by node1 to 10.10.20.242 "
        "as encapsulated packets (UDP 8472) on eth1: the pods' packets did not take the tunnel; "
        "node1's route to the target pods: "
        "`10.244.1.4 via 10.10.20.242 dev eth1 src 10.10.20.241` (through eth1, not flannel.1)"
    )
    assert "only 0 received by node2 from 10.10.20.241" in problems[1]
    assert "node1's flannel.1 sent 0 packet(s) during the probes" in problems[2]
    assert "node2's flannel.1 received 0 packet(s)" in problems[3]
    assert judged(TWO_ONE, 6, after=bypassed()) == [], "the other direction takes the tunnel"


def test_other_traffic_on_the_device_does_not_hide_a_bypass() -> None:
    """-n 4: other tests move flannel.1's counters; only the tagged rules prove the pair."""
    after = bypassed()
    busy = after["node1"].device
    assert busy is not None
    after["node1"] = proof.Counters(after["node1"].rules, (busy[0] + 500, busy[1] + 500))
    problems = judged(ONE_TWO, 6, BYPASS_ROUTE, after)
    assert [p.split(": ")[1].split(",")[0] for p in problems] == [
        "6 tagged datagram(s) answered",
        "6 tagged datagram(s) answered",
        "node2's flannel.1 received 0 packet(s) during the probes",
    ]


def test_unanswered_cells_and_missing_readings_are_named() -> None:
    lost = judged(ONE_TWO, 5, unanswered=("node1->p/tunnel: timed out",), sent=6)
    assert lost == [
        "node1 -> node2: 1 of 6 tagged datagrams got no answer from their target pod:\n"
        "      node1->p/tunnel: timed out"
    ]
    none = judged(ONE_TWO, 0, BYPASS_ROUTE)
    assert len(none) == 1
    assert "no tagged datagram was answered" in none[0]
    assert "(through eth1, not flannel.1)" in none[0]
    after = {**healthy()[1], "node2": proof.Counters({}, None)}
    assert judged(ONE_TWO, 6, after=after) == [
        f"node1 -> node2: node2 has no reading of its counting rule {RX12} "
        "(it was not added, or it went away during the probes): the crossing is not proven",
        "node1 -> node2: node2's flannel.1 packet counters could not be read",
    ]


def test_encapsulated_packets_that_skip_the_device_are_named() -> None:
    before, after = healthy()
    assert before["node1"].device is not None
    after["node1"] = proof.Counters(after["node1"].rules, before["node1"].device)
    problems = judged(ONE_TWO, 6, after=after)
    assert len(problems) == 1
    assert (
        "node1's flannel.1 sent 0 packet(s) during the probes, fewer than the pair's 6"
        in (problems[0])
    )
    assert "crossed encapsulated but not through flannel.1" in problems[0]


def test_the_counters_and_the_route_are_read_with_these_commands() -> None:
    stats = "/sys/class/net/flannel.1/statistics"
    assert proof.read_counters(TUNNEL) == (
        cmd("iptables-save", "-c", "-t", "mangle"),
        cmd("cat", f"{stats}/tx_packets", f"{stats}/rx_packets"),
    )
    assert proof.route_to(IPv4Address("10.244.1.4")) == cmd(
        "ip", "-4", "route", "get", "10.244.1.4"
    )


def test_a_route_through_the_tunnel_device_is_quoted_as_it_is() -> None:
    end = (
        "as encapsulated packets (UDP 8472) on eth1: the pods' packets did not take the tunnel; "
        f"node1's route to the target pods: `{HEALTHY_ROUTE}`"
    )
    assert judged(ONE_TWO, 7) == [
        f"node1 -> node2: 7 tagged datagram(s) answered, but only 6 sent by node1 to "
        f"10.10.20.242 {end}",
        f"node1 -> node2: 7 tagged datagram(s) answered, but only 6 received by node2 from "
        f"10.10.20.241 {end}",
    ]


def test_without_a_tunnel_the_route_is_quoted_with_no_device_to_compare() -> None:
    plain = proof.carrier_of(CI, 8080)
    pair = proof.node_pairs(CI.node_names, "r1")[0]
    route = "10.244.1.4 via 10.10.40.242 dev eth1 src 10.10.40.241"
    probes = proof.PairProbes(pair, 3, 3, routes=(route, route))
    zero = {
        "node1": proof.Counters({f"{pair.tag}/tx": 0}, None),
        "node2": proof.Counters({f"{pair.tag}/rx": 0}, None),
    }
    end = (
        "as plain UDP packets to port 8080 on eth1: the pods' packets did not take the private "
        f"NIC; node1's route to the target pods: `{route}`"
    )
    assert proof.pair_problems(CI, plain, probes, zero, zero) == [
        f"node1 -> node2: 3 tagged datagram(s) answered, but only 0 sent by node1 to "
        f"10.10.40.242 {end}",
        f"node1 -> node2: 3 tagged datagram(s) answered, but only 0 received by node2 from "
        f"10.10.40.241 {end}",
    ]


def test_a_rule_counts_what_it_gained_during_the_probes_not_what_it_held() -> None:
    before, after = healthy()
    # a rule that had counted 10 before the probes and 12 after counted 2 of the pair's 6
    before["node1"] = proof.Counters({**before["node1"].rules, TX12: 10}, before["node1"].device)
    after["node1"] = proof.Counters({**after["node1"].rules, TX12: 12}, after["node1"].device)
    probes = proof.PairProbes(ONE_TWO, 6, 6, routes=(HEALTHY_ROUTE,))
    (problem,) = proof.pair_problems(VX, TUNNEL, probes, before, after)
    assert problem.startswith(
        "node1 -> node2: 6 tagged datagram(s) answered, but only 2 sent by node1"
    )


def test_a_node_read_after_but_not_before_has_no_reading_of_its_rule_or_device() -> None:
    before, after = healthy()
    del before["node1"]
    probes = proof.PairProbes(ONE_TWO, 6, 6, routes=(HEALTHY_ROUTE,))
    assert proof.pair_problems(VX, TUNNEL, probes, before, after) == [
        f"node1 -> node2: node1 has no reading of its counting rule {TX12} (it was not added, "
        "or it went away during the probes): the crossing is not proven",
        "node1 -> node2: node1's flannel.1 packet counters could not be read",
    ]
    before, after = healthy()
    del after["node2"]
    assert proof.pair_problems(VX, TUNNEL, probes, before, after) == [
        f"node1 -> node2: node2 has no reading of its counting rule {RX12} (it was not added, "
        "or it went away during the probes): the crossing is not proven",
        "node1 -> node2: node2's flannel.1 packet counters could not be read",
    ]


def test_a_device_that_moved_exactly_one_packet_per_answer_is_enough() -> None:
    before, after = healthy()
    b1, b2 = device(before["node1"]), device(before["node2"])
    after["node1"] = proof.Counters(after["node1"].rules, (b1[0] + 6, b1[1]))
    after["node2"] = proof.Counters(after["node2"].rules, (b2[0], b2[1] + 6))
    probes = proof.PairProbes(ONE_TWO, 6, 6, routes=(HEALTHY_ROUTE,))
    assert proof.pair_problems(VX, TUNNEL, probes, before, after) == []


def test_every_unanswered_datagram_and_every_distinct_route_is_listed() -> None:
    other = "10.244.1.5 via 10.10.20.242 dev eth1 src 10.10.20.241"
    probes = proof.PairProbes(
        ONE_TWO,
        3,
        0,
        unanswered=("a: timed out", "b: timed out", "c: timed out"),
        routes=(BYPASS_ROUTE, other, BYPASS_ROUTE),
    )
    assert proof.pair_problems(VX, TUNNEL, probes, *healthy()) == [
        "node1 -> node2: 3 of 3 tagged datagrams got no answer from their target pod:\n"
        "      a: timed out\n      b: timed out\n      c: timed out",
        "node1 -> node2: no tagged datagram was answered, so nothing shows how pod packets cross "
        "(encapsulated packets (UDP 8472) on eth1); node1's route to the target pods: "
        f"`{BYPASS_ROUTE}` (through eth1, not flannel.1); `{other}` (through eth1, not flannel.1)",
    ]
    unread = proof.PairProbes(ONE_TWO, 1, 0, unanswered=("a: timed out",))
    assert proof.pair_problems(VX, TUNNEL, unread, *healthy())[1].endswith(
        "node1's route to the target pods: (could not be read)"
    )


def test_a_route_without_a_device_names_none() -> None:
    assert proof.route_device("10.244.1.4 via 10.10.20.242") is None
    assert proof.route_device("") is None


def test_a_tag_of_exactly_the_limit_is_kept_and_one_more_character_is_refused() -> None:
    # "nltp." + run + ".node1.node2": 17 characters besides the run id
    assert len(proof.pair_tag("r" * 83, "node1", "node2")) == proof.TAG_MAX == 100
    with pytest.raises(ValueError, match="at most 100 characters") as refused:
        proof.pair_tag("r" * 84, "node1", "node2")
    assert str(refused.value) == (
        f"tunnel proof tag 'nltp.{'r' * 84}.node1.node2': at most 100 characters of letters, "
        "digits, '.', '_' and '-' (a shorter run id or node names)"
    )


def test_a_tag_keeps_capital_letters_underscores_and_dashes() -> None:
    assert proof.pair_tag("R7_b-2", "node1", "node2") == "nltp.R7_b-2.node1.node2"


def test_a_rule_whose_words_do_not_split_is_skipped_and_the_next_one_is_read() -> None:
    text = (
        "*mangle\n"
        '[1:84] -A POSTROUTING -m comment --comment "unclosed\n'
        f"[6:504] -A POSTROUTING -o eth1 -m comment --comment {TX12}\n"
        "COMMIT\n"
    )
    assert proof.parse_rule_counts(text) == {TX12: 6}


def test_rules_sharing_a_comment_add_their_packets() -> None:
    text = (
        f"[2:168] -A POSTROUTING -o eth1 -m comment --comment {TX12}\n"
        f"[3:252] -A PREROUTING -i eth1 -m comment --comment {TX12}\n"
    )
    assert proof.parse_rule_counts(text) == {TX12: 5}


def test_a_failed_or_missing_reading_counts_nothing() -> None:
    ruled = f"[6:504] -A POSTROUTING -o eth1 -m comment --comment {TX12}\n"
    assert proof.parse_counters(TUNNEL, []) == proof.Counters({}, None)
    assert proof.parse_counters(TUNNEL, [Output(1, ruled)]) == proof.Counters({}, None)
    # the rules read, the device's counters not asked for: no device reading, not an empty one
    assert proof.parse_counters(TUNNEL, [Output(0, ruled)]) == proof.Counters({TX12: 6}, None)


def test_without_a_tunnel_device_a_second_output_is_not_read_as_its_counters() -> None:
    plain = proof.carrier_of(CI, 8080)
    outputs = [Output(0, ""), Output(0, "12\n34\n")]
    assert proof.parse_counters(plain, outputs) == proof.Counters({}, None)
