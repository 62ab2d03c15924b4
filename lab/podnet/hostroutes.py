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


class HostRoutes(Backend):
    name = "host-routes"
    description = "CNI bridge + host-local, a /subnet_len per node, host-gw style routes"
    family = "routing"
    provisioning = "provision.podnet.hostroutes"

    def dataplane(self, lab: Lab) -> str:
        return "host-gw"

    def validate(self, lab: Lab) -> Iterator[Problem]:
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
