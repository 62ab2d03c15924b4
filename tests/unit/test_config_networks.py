"""A lab's networks and its pod subnets, each problem pinned to the letter: where a range is no
place for a lab, and how many /subnet_len node subnets a pod CIDR holds, on both sides of every
bound, with a hint the user can follow."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.unit.test_config_checks import problems_with

ROOT = Path(__file__).resolve().parents[2]
CI = yaml.safe_load((ROOT / "labs" / "ci-debian12.yaml").read_text())
ONE_NODE = [{"name": "node1", "ip": "10.10.40.241"}]


def problems_of(edits: dict[str, object]) -> list[str]:
    return problems_with(CI, edits)


def test_a_network_that_starts_private_and_reaches_into_public_space() -> None:
    # 10.0.0.0/7 is 10/8 and 11/8: it begins in a private range but does not stay in it
    assert problems_of({"network.management": "10.0.0.0/7"}) == [
        "network.management = '10.0.0.0/7': reaches beyond the private range it starts in "
        "(public addresses): a lab network must be private; use a range inside 10.0.0.0/8, "
        "172.16.0.0/12 or 192.168.0.0/16 (or a documented test range), e.g. 192.168.121.0/24",
        "network.management = '10.0.0.0/7': overlaps network.private 10.10.40.0/24; the pod, "
        "service, private and management networks must be pairwise disjoint",
        "pod_network.cidr = '10.244.0.0/16': overlaps network.management 10.0.0.0/7; the pod, "
        "service, private and management networks must be pairwise disjoint",
        "services.cidr = '10.96.0.0/12': overlaps network.management 10.0.0.0/7; the pod, "
        "service, private and management networks must be pairwise disjoint",
    ]


def too_small(cidr: str, nodes: int, widest: int) -> list[str]:
    return [
        f"pod_network.cidr = '{cidr}': is too small for {nodes} node subnet(s): the longest "
        f"node subnet is a /30; use a /{widest} or larger, e.g. 10.244.0.0/16 (flannel's "
        "default)"
    ]


@pytest.mark.parametrize(
    ("edits", "problems"),
    [
        # two nodes need one bit past the pod CIDR: a /29 holds two /30s, a /30 none
        ({"pod_network.cidr": "10.244.0.0/29", "pod_network.subnet_len": 30}, []),
        ({"pod_network.cidr": "10.244.0.0/30"}, too_small("10.244.0.0/30", 2, 29)),
        # one node still needs its subnet longer than the CIDR: a /29 holds it, a /30 does not
        (
            {"nodes": ONE_NODE, "pod_network.cidr": "10.244.0.0/29", "pod_network.subnet_len": 30},
            [],
        ),
        (
            {"nodes": ONE_NODE, "pod_network.cidr": "10.244.0.0/30"},
            too_small("10.244.0.0/30", 1, 29),
        ),
    ],
    ids=["2-nodes-slash29", "2-nodes-slash30", "1-node-slash29", "1-node-slash30"],
)
def test_the_shortest_pod_cidr_for_the_nodes(edits: dict[str, object], problems: list[str]) -> None:
    assert problems_of(edits) == problems


def bad_subnet_len(subnet_len: int, prefix: int, hint: str) -> list[str]:
    return [
        f"pod_network.subnet_len = {subnet_len}: must be longer than pod_network.cidr's "
        f"/{prefix} and at most 30; {hint}"
    ]


GUIDE_DEFAULT = "the guide's flannel default is 24"


@pytest.mark.parametrize(
    ("cidr", "subnet_len", "problems"),
    [
        # a /24 per node fits a /23 for two nodes: the guide's default is a hint to follow
        ("10.244.0.0/22", 22, bad_subnet_len(22, 22, GUIDE_DEFAULT)),
        ("10.244.0.0/23", 23, bad_subnet_len(23, 23, GUIDE_DEFAULT)),
        # from a /24 on it no longer fits: the hint is the range that does
        ("10.244.0.0/24", 24, bad_subnet_len(24, 24, "use a value from 25 to 30")),
        ("10.244.0.0/28", 24, bad_subnet_len(24, 28, "use a value from 29 to 30")),
        ("10.244.0.0/28", 31, bad_subnet_len(31, 28, "use a value from 29 to 30")),
        ("10.244.0.0/23", 24, []),
        ("10.244.0.0/24", 25, []),
    ],
)
def test_a_subnet_len_out_of_range_comes_with_a_hint_that_fits(
    cidr: str, subnet_len: int, problems: list[str]
) -> None:
    assert problems_of({"pod_network.cidr": cidr, "pod_network.subnet_len": subnet_len}) == (
        problems
    )


def test_a_pod_mtu_of_9000_is_within_the_fields_own_range() -> None:
    # 9000 is the field's own upper bound (jumbo frames); the private NIC's MTU is checked
    # apart, and says so in its own words
    found = problems_of({"pod_network.mtu": 9000})
    assert not [p for p in found if "must be between 576 and 9000" in p]
    assert [p for p in problems_of({"pod_network.mtu": 9001}) if "between 576 and 9000" in p]
