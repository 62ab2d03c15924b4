"""CIDR math (pure): node pod subnets, gateways, overlaps."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from ipaddress import IPv4Address, IPv4Network
from typing import TypeVar

K = TypeVar("K")
P = TypeVar("P")


def subnet_count(cidr: IPv4Network, subnet_len: int) -> int:
    return 1 << (subnet_len - cidr.prefixlen)


def node_subnets(cidr: IPv4Network, subnet_len: int, count: int) -> tuple[IPv4Network, ...]:
    """The first `count` /subnet_len subnets of `cidr`, in order (node i gets the i-th).

    This is the host-routes driver's static allocation; kubeadm's controller-manager hands out
    the same sequence to nodes in registration order.
    """
    if subnet_count(cidr, subnet_len) < count:
        raise ValueError(f"{cidr} holds fewer than {count} /{subnet_len} subnets")
    return tuple(itertools.islice(cidr.subnets(new_prefix=subnet_len), count))


def gateway(subnet: IPv4Network) -> IPv4Address:
    """The bridge (gateway) address of a node's pod subnet: its first host address."""
    return subnet.network_address + 1


def overlapping_pairs(
    named: Sequence[tuple[K, IPv4Network]],
) -> list[tuple[tuple[K, IPv4Network], tuple[K, IPv4Network]]]:
    """Every pair (earlier, later) of networks that overlap, in input order."""
    return [(a, b) for a, b in itertools.combinations(named, 2) if a[1].overlaps(b[1])]


def allocation_problems(
    cidr: IPv4Network,
    subnets: Mapping[str, Sequence[IPv4Network]],
    missing: Callable[[str], P],
    outside: Callable[[str, IPv4Network], P],
    overlap: Callable[[str, IPv4Network, str, IPv4Network], P],
) -> list[P]:
    """Per-node pod subnets: every node has one, each inside `cidr`, no two nodes' overlap.
    The caller words each kind of problem (a string, a Problem); they come node by node,
    overlaps last."""
    problems: list[P] = []
    for node, nets in subnets.items():
        if not nets:
            problems.append(missing(node))
        problems += [outside(node, net) for net in nets if not net.subnet_of(cidr)]
    owned = [(node, net) for node, nets in subnets.items() for net in nets]
    problems += [overlap(a, x, b, y) for (a, x), (b, y) in overlapping_pairs(owned) if a != b]
    return problems


def containing(address: IPv4Address, networks: Iterable[tuple[K, IPv4Network]]) -> K | None:
    for key, net in networks:
        if address in net:
            return key
    return None
