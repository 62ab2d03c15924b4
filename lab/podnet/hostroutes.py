"""The host-routes backend (the guide's routing family, flannel host-gw style, without
flanneld): the CNI bridge plugin with host-local on a /subnet_len per node, allotted by the
lab file, and on every node a route to each other node's pod subnet via that node's private
IP, kept by systemd-networkd. Works only where every node shares the private network's
layer 2 (flannel's host-gw: "not on the same subnet")."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any

from lab.common.commands import cmd
from lab.model.problems import Problem
from lab.model.underlay import segment_of
from lab.podnet.base import Backend, Restart, register, routed_mtu_problems
from lab.podnet.bridge import bridge_conflist, render_cni_conflist_text

if TYPE_CHECKING:
    from lab.model.config import Lab, Node


@dataclass(frozen=True)
class Route:
    destination: IPv4Network
    via: IPv4Address
    device: str

    def __str__(self) -> str:
        return f"{self.destination} via {self.via} dev {self.device}"


def render_pod_routes(lab: Lab, node: Node) -> tuple[Route, ...]:
    """Host-gw: a route to every other node's pod subnet via that node's private IP."""
    subnets = HOST_ROUTES.planned_subnets(lab)
    assert subnets is not None
    return tuple(
        Route(subnets[peer.name], peer.ip, lab.vm.private_nic)
        for peer in lab.nodes
        if peer.name != node.name
    )


def same_segment_problems(lab: Lab) -> Iterator[Problem]:
    """host-gw routes a pod subnet "via" the other node's private IP, a next hop the kernel
    accepts only on a connected subnet: every node must share one layer-2 segment (flannel's
    host-gw "requires direct layer2 connectivity between hosts"; across a router flanneld
    logs "Error adding route to SUBNET via IP ...: network is unreachable")."""
    segments = {n.name: segment_of(lab, n) for n in lab.nodes}
    first = lab.nodes[0] if lab.nodes else None
    if first is None or len({s.name for s in segments.values() if s is not None}) < 2:
        return
    home = segments[first.name]
    assert home is not None
    away = [n for n in lab.nodes if segments[n.name] != home]
    yield Problem(
        "pod_network.driver",
        lab.pod_network.driver,
        "host-gw needs every node on the same layer-2 segment: "
        + ", ".join(
            f"{n.name} ({n.ip}, segment {segments[n.name].name})"  # type: ignore[union-attr]
            for n in away
        )
        + f" is not on the same subnet as {first.name} ({first.ip}, segment {home.name}); "
        "the kernel refuses a route via a gateway across the router ('Nexthop has invalid "
        "gateway') and flanneld's host-gw logs 'Error adding route ... network is "
        "unreachable'",
        "use driver: vxlan (a tunnel crosses the router) or driver: bgp (the router learns "
        "the pod routes), or put every node on one segment",
    )


class HostRoutes(Backend):
    name = "host-routes"
    description = "CNI bridge + host-local, a /subnet_len per node, host-gw style routes"
    family = "routing"
    provisioning = "provision.podnet.hostroutes"

    def dataplane(self, lab: Lab) -> str:
        return "host-gw"

    def validate(self, lab: Lab) -> Iterator[Problem]:
        yield from same_segment_problems(lab)
        yield from routed_mtu_problems(lab)

    def conflist(self, lab: Lab, node: Node, nic_mtu: int | None) -> dict[str, Any]:
        subnets = self.planned_subnets(lab)
        assert subnets is not None
        return bridge_conflist(lab, subnets[node.name], self.pod_mtu(lab), "0.0.0.0/0", {})

    def render_files(self, lab: Lab, flannel_upstream: str | None) -> dict[str, str]:
        files = {}
        for node in lab.nodes:
            files[f"cni-{node.name}.conflist"] = render_cni_conflist_text(lab, node)
            files[f"routes-{node.name}.txt"] = "".join(
                f"{r}\n" for r in render_pod_routes(lab, node)
            )
        return files

    def expected_routes(self, lab: Lab, node: Node) -> tuple[str, ...]:
        return tuple(str(r) for r in render_pod_routes(lab, node))

    def restart(self, lab: Lab, node: Node) -> Restart:
        """The node's routes to the other nodes' pod subnets go; systemd-networkd configures
        the private NIC again (as at boot), routes included."""
        return Restart(
            inject=tuple(
                cmd("ip", "route", "del", str(r.destination)) for r in render_pod_routes(lab, node)
            ),
            heal=(cmd("networkctl", "reconfigure", lab.vm.private_nic),),
        )


HOST_ROUTES = register(HostRoutes())
