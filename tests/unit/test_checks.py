"""The scenarios' pure parts and the comparisons: subnets judged against what the nodes report
and what the lab allots, DF refusal evidence, matrices that must cover the lab."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from e2e import checks, scenarios
from e2e.drivers.base import Pod
from lab.model.labfile import load_lab
from lab.net import reachability as rm

ROOT = Path(__file__).resolve().parents[2]
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")
REPORTED = {"node1": (IPv4Network("10.244.0.0/24"),), "node2": (IPv4Network("10.244.1.0/24"),)}


def pod(name: str, node: str, ip: str) -> Pod[None]:
    return Pod(name, node, IPv4Address(ip), (), None)


def test_subnets_as_reported_and_allotted_pass() -> None:
    pods = [pod("a", "node1", "10.244.0.5"), pod("b", "node2", "10.244.1.5")]
    assert scenarios.subnet_problems(CI, pods, REPORTED) == []


def test_a_pod_ip_in_another_nodes_subnet_is_named() -> None:
    stray = pod("nl-a", "node2", "10.244.0.5")
    assert scenarios.subnet_problems(CI, [stray], REPORTED) == [
        "nl-a on node2 has 10.244.0.5, which is in node1's subnet; node2 hands out 10.244.1.0/24"
    ]


def test_a_node_handing_out_another_subnet_than_the_lab_allots_is_named() -> None:
    """The expectation is the lab file's allocation, not what the harness rendered."""
    swapped = {"node1": REPORTED["node2"], "node2": REPORTED["node1"]}
    assert scenarios.subnet_problems(CI, [], swapped) == [
        "node1 hands out 10.244.1.0/24; the lab file allots it 10.244.0.0/24",
        "node2 hands out 10.244.0.0/24; the lab file allots it 10.244.1.0/24",
    ]


def test_overlapping_missing_and_outside_subnets_are_named() -> None:
    bad = {
        "node1": (IPv4Network("10.244.0.0/24"),),
        "node2": (IPv4Network("10.244.0.128/25"), IPv4Network("10.99.0.0/24")),
        "node3": (),
    }
    problems = scenarios.subnet_problems(GUIDE, [], bad)  # flannel: no planned allocation
    assert problems == [
        "node2: subnet 10.99.0.0/24 is outside the cluster pod CIDR 10.244.0.0/16",
        "node3 hands out no pod subnet (no address on its pod bridge)",
        "node1's subnet 10.244.0.0/24 overlaps node2's subnet 10.244.0.128/25",
    ]


@pytest.mark.parametrize(
    ("output", "mtu"),
    [
        (
            "PING 10.244.1.2 (10.244.1.2) 1473(1501) bytes of data.\n"
            "ping: local error: message too long, mtu=1500\n",
            1500,
        ),
        ("ping: local error: Message too long, mtu=1450", 1450),
        ("From 10.244.0.1 icmp_seq=1 Frag needed and DF set (mtu = 1450)", 1450),
        ("1 packets transmitted, 0 received, 100% packet loss, time 0ms", None),
        ("ping: sendmsg: Operation not permitted", None),
        ("", None),
    ],
)
def test_a_df_refusal_needs_evidence_naming_the_mtu(output: str, mtu: int | None) -> None:
    assert scenarios.df_refusal_mtu(output) == mtu


def test_the_fleet_must_cross_nodes_and_hold_a_pod() -> None:
    assert scenarios.fleet_slots(CI, 1) == [("node1", 0), ("node2", 0)]
    with pytest.raises(ValueError, match="--pods-per-node must be at least 1, got 0"):
        scenarios.fleet_slots(CI, 0)
    one_node = load_lab(ROOT / "labs" / "ci-debian12.yaml").__class__(
        **{**CI.__dict__, "nodes": CI.nodes[:1]}
    )
    with pytest.raises(ValueError, match="needs at least two nodes"):
        scenarios.fleet_slots(one_node, 4)


def test_the_matrix_sizes_come_from_the_lab() -> None:
    slots = scenarios.fleet_slots(GUIDE, 2)
    assert scenarios.expected_cells(slots, len(GUIDE.nodes)) == (30, 18)


def test_a_matrix_smaller_than_the_lab_implies_fails_even_when_every_cell_passed() -> None:
    empty = rm.Matrix("pod -> pod", (), ())
    with pytest.raises(pytest.fail.Exception, match="0 cells, but the lab implies 12"):
        checks.expect_matrix(empty, 12)
    with pytest.raises(pytest.fail.Exception, match="0 cells, but the lab implies 0"):
        checks.expect_matrix(empty, 0)
