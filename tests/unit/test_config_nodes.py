"""The node checks of a flat lab, each problem pinned to the letter (field, value, message and
fix): a duplicate name or address names the node it repeats, an address outside the private
network or on its network, broadcast or host-bridge address says which range to pick from, and
CPUs and memory outside their range say their bounds."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.test_config_checks import CI, problems_with

NODE1 = {"name": "node1", "ip": "10.10.40.241"}
NODE2 = {"name": "node2", "ip": "10.10.40.242"}


def node_problems(*nodes: dict[str, Any]) -> list[str]:
    return problems_with(CI, {"nodes": [dict(n) for n in nodes]})


def test_a_duplicate_name_or_address_names_the_first_node_that_has_it() -> None:
    assert node_problems(NODE1, {"name": "node1", "ip": "10.10.40.242"}) == [
        "nodes[1].name = 'node1': duplicates nodes[0].name; give every node its own name"
    ]
    assert node_problems(NODE1, NODE2, {"name": "node3", "ip": "10.10.40.241"}) == [
        "nodes[2].ip = '10.10.40.241': duplicates nodes[0].ip; give every node its own address"
    ]


@pytest.mark.parametrize(
    ("ip", "problem"),
    [
        (
            "10.10.41.5",
            "is outside network.private 10.10.40.0/24; pick an address in 10.10.40.0/24",
        ),
        (
            "10.10.40.0",
            "is the network address of 10.10.40.0/24; pick a host address between 10.10.40.2 "
            "and 10.10.40.254",
        ),
        (
            "10.10.40.255",
            "is the broadcast address of 10.10.40.0/24; pick a host address between "
            "10.10.40.2 and 10.10.40.254",
        ),
        (
            "10.10.40.1",
            "is 10.10.40.0/24's first address, which libvirt gives the host bridge; pick an "
            "address from 10.10.40.2 on",
        ),
        ("10.10.40.2", None),
        ("10.10.40.254", None),
    ],
    ids=["outside", "network", "broadcast", "host-bridge", "first-host", "last-host"],
)
def test_a_node_address_on_the_private_network(ip: str, problem: str | None) -> None:
    expected = [] if problem is None else [f"nodes[1].ip = '{ip}': {problem}"]
    assert node_problems(NODE1, {"name": "node2", "ip": ip}) == expected


def test_a_29_is_judged_for_its_node_addresses_and_a_30_only_as_too_small() -> None:
    nodes = [{"name": "node1", "ip": "10.10.40.240"}, {"name": "node2", "ip": "10.10.40.242"}]
    assert problems_with(CI, {"network.private": "10.10.40.240/29", "nodes": nodes}) == [
        "nodes[0].ip = '10.10.40.240': is the network address of 10.10.40.240/29; pick a host "
        "address between 10.10.40.242 and 10.10.40.246"
    ]
    assert problems_with(CI, {"network.private": "10.10.40.240/30", "nodes": nodes}) == [
        "network.private = '10.10.40.240/30': is too small for a lab; use a /29 or larger"
    ]


def test_cpus_and_memory_outside_their_bounds_say_the_bounds() -> None:
    assert node_problems(
        {**NODE1, "cpus": 0, "memory_mib": 511}, {**NODE2, "cpus": 257, "memory_mib": 1048577}
    ) == [
        "nodes[0].cpus = 0: must be between 1 and 256",
        "nodes[0].memory_mib = 511: must be at least 512",
        "nodes[1].cpus = 257: must be between 1 and 256",
        "nodes[1].memory_mib = 1048577: is more than 1 TiB (1048576 MiB): the unit is MiB; "
        "e.g. 2048 for 2 GiB",
    ]
    assert (
        node_problems(
            {**NODE1, "cpus": 1, "memory_mib": 512}, {**NODE2, "cpus": 256, "memory_mib": 1048576}
        )
        == []
    )


HOSTNAME = (
    "hostname must be a DNS-1123 label (lowercase letters, digits, '-'; start and end with a "
    "letter or digit; at most 63 characters): kubeadm rejects it otherwise"
)


def test_a_node_name_is_a_dns1123_label_of_at_most_63_characters() -> None:
    assert node_problems(NODE1, {**NODE2, "name": "Node_2"}) == [
        f"nodes[1].name = 'Node_2': {HOSTNAME}; try 'node-2'"
    ]
    assert node_problems(NODE1, {**NODE2, "name": "n" * 63}) == []
    # 64 characters: the suggestion is cut to 63, and the dash that would end it dropped
    assert node_problems(NODE1, {**NODE2, "name": "n" * 62 + "-x"}) == [
        f"nodes[1].name = '{'n' * 60}'… (64 characters): {HOSTNAME}; try '{'n' * 62}'"
    ]


def test_a_reserved_or_libvirt_name_is_refused_whatever_its_case_with_a_numbered_example() -> None:
    assert node_problems(NODE1, {**NODE2, "name": "LocalHost"}) == [
        f"nodes[1].name = 'LocalHost': {HOSTNAME}; try 'localhost'",
        "nodes[1].name = 'LocalHost': is a name every host's /etc/hosts (or its resolver) "
        "already gives to itself or to a multicast group: the nodes' hosts files would send it "
        "to two places; name the node otherwise, e.g. node2",
    ]
    assert node_problems({**NODE1, "name": "mgmt"}, {**NODE2, "name": "priv"}) == [
        "nodes[0].name = 'mgmt': would name the node's VM netlab-ci-debian12_mgmt, the name of "
        "the lab's management network in libvirt; name the node otherwise, e.g. node1",
        "nodes[1].name = 'priv': would name the node's VM netlab-ci-debian12_priv, the name of "
        "the lab's private network in libvirt; name the node otherwise, e.g. node2",
    ]


def test_a_node_whose_name_or_address_is_broken_leaves_the_other_nodes_checked() -> None:
    reserved = (
        "nodes[1].name = 'localhost': is a name every host's /etc/hosts (or its resolver) "
        "already gives to itself or to a multicast group: the nodes' hosts files would send it "
        "to two places; name the node otherwise, e.g. node2"
    )
    localhost = {**NODE2, "name": "localhost"}
    assert node_problems({**NODE1, "name": ["x"]}, localhost) == [
        "nodes[0].name = ['x']: must be text, not a list",
        reserved,
    ]
    assert node_problems({**NODE1, "ip": "x"}, localhost) == [
        "nodes[0].ip = 'x': is not an IPv4 address like 10.10.10.241 (Expected 4 octets in 'x')",
        reserved,
    ]


def test_a_lab_without_nodes_says_how_to_add_one() -> None:
    assert node_problems() == [
        "nodes = []: a lab needs at least one node; add one: - {name: node1, ip: ...}"
    ]
