"""The e2e checks that need no VM: subnet bookkeeping."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from e2e.checks import node_subnet_problems, pod_subnet_problems
from e2e.drivers.base import Pod

SUBNETS = {"node1": (IPv4Network("10.244.0.0/24"),), "node2": (IPv4Network("10.244.1.0/24"),)}


def test_a_pod_ip_in_another_nodes_subnet_is_named() -> None:
    stray = Pod("nl-a", "node2", IPv4Address("10.244.0.5"), ())
    home = Pod("nl-b", "node1", IPv4Address("10.244.0.6"), ())
    assert pod_subnet_problems([stray, home], SUBNETS) == [
        "nl-a on node2 has 10.244.0.5, which is in node1's subnet; node2 hands out 10.244.1.0/24"
    ]


def test_node_subnets_must_be_disjoint_and_inside_the_cluster_cidr() -> None:
    cidr = IPv4Network("10.244.0.0/16")
    assert node_subnet_problems(cidr, SUBNETS) == []
    bad = {**SUBNETS, "node3": (IPv4Network("10.244.1.128/25"),), "node4": ()}
    assert node_subnet_problems(IPv4Network("10.244.0.0/23"), bad) == [
        "node4 hands out no pod subnet",
        "node2's subnet 10.244.1.0/24 overlaps node3's subnet 10.244.1.128/25",
    ]
