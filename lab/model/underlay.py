"""The node network as the lab file shapes it (pure): one flat layer-2 segment, or a routed
underlay (network.segments) with a router VM between the segments. Who shares a segment with
whom, the router's address and NIC on each segment, the route a node needs to the others, and
the router seen as a machine of the lab (its name, its address on its first segment).

The router VM is a real hop: its own kernel routes between the segments (ip_forward), so its
MTU, its filters (iptables) and its queues (tc netem) are the underlay's, and for the BGP
backend it is the top-of-rack peer (docs/routed-underlay.md). It takes the last host address
of every segment (Segment.router_address) and has one NIC per segment, eth1 for the first
(eth0 is Vagrant's management NIC), in the order the lab file lists them."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from lab.model.config import Lab, Node, Segment


@dataclass(frozen=True)
class UnderlayRoute:
    """A node's route to the rest of the node network: the whole private block via the router
    on its segment (its own segment stays on-link: the connected /prefix is longer)."""

    destination: IPv4Network
    via: IPv4Address
    device: str

    def __str__(self) -> str:
        return f"{self.destination} via {self.via} dev {self.device}"


def segment_of(lab: Lab, node: Node) -> Segment | None:
    """The segment `node` sits on (None on a flat lab)."""
    return next((s for s in lab.network.segments if node.ip in s.cidr), None)


def segment_named(lab: Lab, name: str) -> Segment:
    for seg in lab.network.segments:
        if seg.name == name:
            return seg
    raise KeyError(f"lab {lab.name!r} has no segment {name!r}")


def prefixlen(lab: Lab, node: Node) -> int:
    """The prefix length of the node's private address (its segment's, else network.private's)."""
    seg = segment_of(lab, node)
    return (seg.cidr if seg is not None else lab.network.private).prefixlen


def same_segment(lab: Lab, a: Node, b: Node) -> bool:
    """The two nodes share layer 2 (always on a flat lab)."""
    return segment_of(lab, a) == segment_of(lab, b)


def gateway_of(lab: Lab, node: Node) -> IPv4Address | None:
    """The router's address on the node's segment (None on a flat lab)."""
    seg = segment_of(lab, node)
    return None if seg is None else seg.router_address


def underlay_route(lab: Lab, node: Node) -> UnderlayRoute | None:
    """The route a node of a routed underlay needs to the other segments (None: flat)."""
    via = gateway_of(lab, node)
    if via is None:
        return None
    return UnderlayRoute(lab.network.private, via, lab.vm.private_nic)


def router_nic(lab: Lab, segment: Segment) -> str:
    """The router VM's NIC on `segment`: eth1 for the first segment, in lab-file order."""
    return f"eth{lab.network.segments.index(segment) + 1}"


def router_node(lab: Lab) -> Node:
    """The router as a machine of the lab: its name and its address on the first segment
    (what provisioning and the faults address it by; it runs no pods)."""
    if not lab.network.routed:
        raise ValueError(f"lab {lab.name!r} has no routed underlay (network.segments)")
    router = lab.network.router_vm
    return Node(
        router.name,
        lab.network.segments[0].router_address,
        cpus=router.cpus,
        memory_mib=router.memory_mib,
    )


def machine_names(lab: Lab) -> tuple[str, ...]:
    """Every VM of the lab: its nodes, then the router where there is one."""
    if lab.network.routed:
        return (*lab.node_names, lab.network.router_vm.name)
    return lab.node_names


def hop_between(lab: Lab, a: Node, b: Node) -> str:
    """The one-line path from `a` to `b` across the underlay, for reports: direct on a shared
    segment, else through the router's NICs on both segments."""
    sa, sb = segment_of(lab, a), segment_of(lab, b)
    if sa is None or sb is None or sa == sb:
        return f"{a.name} -> {b.name} (one layer-2 segment)"
    router = lab.network.router_vm.name
    return (
        f"{a.name} ({sa.name}) -> {router} {router_nic(lab, sa)} {sa.router_address} / "
        f"{router_nic(lab, sb)} {sb.router_address} -> {b.name} ({sb.name})"
    )
