"""The flannel-shaped VXLAN backend (the guide's tunnel family on the CI labs, without
flanneld): each node programmed as flannel v0.14.0's vxlan backend programs it
(backend/vxlan: flannel.1, VNI 1, port 8472, nolearning, bound to the private NIC with its IP;
the lease's .0/32 on the device; per remote node a permanent neighbour, an FDB entry and an
onlink route), its /run/flannel/subnet.env, its --ip-masq rules, and the bridge config its
CNI plugin delegates to. No flanneld runs: the leases are the lab file's allocation, the VTEP
MACs are derived from the node addresses, and systemd-networkd keeps it all across reboots.
Its kernel state is read and compared in lab/podnet/tunnel.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any

from lab.common.commands import cmd
from lab.model.problems import Problem
from lab.net import netmath
from lab.podnet.base import NIC_MTU, Backend, Restart, node_pod_subnets, register
from lab.podnet.bridge import bridge_conflist, render_cni_conflist_text

if TYPE_CHECKING:
    from lab.model.config import Lab, Node

VXLAN_DEVICE = "flannel.1"
VXLAN_VNI = 1
VXLAN_PORT = 8472
VXLAN_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14
VXLAN_POD_MTU = NIC_MTU - VXLAN_OVERHEAD


def flannel_mtu(nic_mtu: int | None) -> int:
    """flannel's FLANNEL_MTU: the kernel gives a VXLAN device its lower device's MTU - 50."""
    if nic_mtu is None:
        raise ValueError(
            "the private NIC's MTU is needed for the VXLAN pod MTU (could not read it)"
        )
    return nic_mtu - VXLAN_OVERHEAD


def vxlan_mtu_problems(lab: Lab, where: str = "pod_network.mtu") -> Iterator[Problem]:
    """A pod MTU the tunnel cannot carry (every VXLAN backend, flannel's too)."""
    mtu = lab.pod_network.mtu
    if mtu is not None and 576 <= mtu <= 9000 and mtu > VXLAN_POD_MTU:
        yield Problem(
            where,
            mtu,
            f"a VXLAN tunnel takes {VXLAN_OVERHEAD} bytes of the node network's {NIC_MTU}: pods "
            f"get at most {VXLAN_POD_MTU} (flannel's FLANNEL_MTU)",
            f"set pod_network.mtu: {VXLAN_POD_MTU}",
        )


def vtep_mac(node: Node) -> str:
    """A stable, locally administered unicast MAC for the node's VTEP: 0e:00 + its IPv4."""
    return "0e:00:" + ":".join(f"{b:02x}" for b in node.ip.packed)


@dataclass(frozen=True)
class Vtep:
    """One node's end of the tunnel: its VTEP MAC, its lease's .0 (on flannel.1) and the
    public address the other VTEPs send to (its private IP)."""

    node: str
    mac: str
    address: IPv4Address
    subnet: IPv4Network
    public_ip: IPv4Address


def vteps(lab: Lab) -> dict[str, Vtep]:
    subnets = node_pod_subnets(lab)
    return {
        n.name: Vtep(n.name, vtep_mac(n), subnets[n.name].network_address, subnets[n.name], n.ip)
        for n in lab.nodes
    }


def remote_vteps(lab: Lab, node: Node) -> tuple[Vtep, ...]:
    return tuple(v for name, v in vteps(lab).items() if name != node.name)


def render_vxlan_netdev(lab: Lab, node: Node) -> str:
    return (
        "# netlab: flannel v0.14.0's vxlan backend device, as flanneld creates it\n"
        f"[NetDev]\nName={VXLAN_DEVICE}\nKind=vxlan\nMACAddress={vtep_mac(node)}\n\n"
        f"[VXLAN]\nVNI={VXLAN_VNI}\nLocal={node.ip}\nDestinationPort={VXLAN_PORT}\n"
        "MacLearning=no\n"
    )


def render_vxlan_network(lab: Lab, node: Node) -> str:
    """flannel.1's address (the lease's .0/32) and, per remote node, what flanneld adds:
    neighbour (.0 -> VTEP MAC), FDB (VTEP MAC -> public IP), route (subnet via .0 onlink)."""
    own = vteps(lab)[node.name]
    parts = [
        "# netlab: flannel.1's address, and per remote node its neighbour, FDB entry and route\n"
        f"[Match]\nName={VXLAN_DEVICE}\n\n"
        f"[Network]\nAddress={own.address}/32\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n"
    ]
    for v in remote_vteps(lab, node):
        parts.append(f"\n[Neighbor]\nAddress={v.address}\nLinkLayerAddress={v.mac}\n")
        parts.append(f"\n[BridgeFDB]\nMACAddress={v.mac}\nDestination={v.public_ip}\n")
        parts.append(f"\n[Route]\nDestination={v.subnet}\nGateway={v.address}\nGatewayOnLink=yes\n")
    return "".join(parts)


def render_vxlan_underlay_dropin() -> str:
    """The private NIC's .network drop-in that stacks flannel.1 on it (its `link`)."""
    return f"# netlab: flannel.1 rides on this NIC\n[Network]\nVXLAN={VXLAN_DEVICE}\n"


def render_subnet_env(lab: Lab, node: Node, mtu: int) -> str:
    """/run/flannel/subnet.env as flanneld writes it (FLANNEL_SUBNET: the lease's .1)."""
    subnet = node_pod_subnets(lab)[node.name]
    return (
        f"FLANNEL_NETWORK={lab.pod_network.cidr}\n"
        f"FLANNEL_SUBNET={netmath.gateway(subnet)}/{subnet.prefixlen}\n"
        f"FLANNEL_MTU={mtu}\n"
        "FLANNEL_IPMASQ=true\n"
    )


def render_flannel_masq_rules(lab: Lab, node: Node) -> tuple[tuple[str, ...], ...]:
    """flanneld --ip-masq's POSTROUTING rules (network/iptables.go): no NAT inside the
    cluster network; pod traffic leaving it is masqueraded; traffic from outside to this
    node's subnet is left alone; to other nodes' subnets it is masqueraded."""
    net, own = str(lab.pod_network.cidr), str(node_pod_subnets(lab)[node.name])
    return (
        ("-s", net, "-d", net, "-j", "RETURN"),
        ("-s", net, "!", "-d", "224.0.0.0/4", "-j", "MASQUERADE", "--random-fully"),
        ("!", "-s", net, "-d", own, "-j", "RETURN"),
        ("!", "-s", net, "-d", net, "-j", "MASQUERADE", "--random-fully"),
    )


def render_vxlan_conflist(lab: Lab, subnet: IPv4Network, mtu: int) -> dict[str, Any]:
    """flannel's bridge delegate: the default gateway in the pod, a route to the cluster
    network (flanneld masquerades traffic leaving it: FLANNEL_IPMASQ=true)."""
    return bridge_conflist(lab, subnet, mtu, str(lab.pod_network.cidr), {"isDefaultGateway": True})


class Vxlan(Backend):
    name = "vxlan"
    description = "a flannel-shaped VXLAN pod network (flannel.1 as flannel v0.14.0 programs it)"
    family = "tunnel"
    provisioning = "provision.podnet.vxlan"
    programs_tunnel = True
    overhead = VXLAN_OVERHEAD

    def tunnel_device(self, lab: Lab) -> str:
        return VXLAN_DEVICE

    def tunnel_port(self, lab: Lab) -> int:
        return VXLAN_PORT

    def validate(self, lab: Lab) -> Iterator[Problem]:
        yield from vxlan_mtu_problems(lab)

    def conflist(self, lab: Lab, node: Node, nic_mtu: int | None) -> dict[str, Any]:
        return render_vxlan_conflist(lab, node_pod_subnets(lab)[node.name], flannel_mtu(nic_mtu))

    def render_files(self, lab: Lab, flannel_upstream: str | None) -> dict[str, str]:
        files = {}
        for node in lab.nodes:  # as on a node whose private NIC has the boxes' MTU
            files[f"cni-{node.name}.conflist"] = render_cni_conflist_text(lab, node, NIC_MTU)
            files[f"vxlan-{node.name}.netdev"] = render_vxlan_netdev(lab, node)
            files[f"vxlan-{node.name}.network"] = render_vxlan_network(lab, node)
        return files

    def restart(self, lab: Lab, node: Node) -> Restart:
        """The onlink routes through flannel.1 go; systemd-networkd configures flannel.1
        again (as at boot), routes included."""
        return Restart(
            inject=tuple(cmd("ip", "route", "del", str(v.subnet)) for v in remote_vteps(lab, node)),
            heal=(cmd("networkctl", "reconfigure", VXLAN_DEVICE),),
        )


VXLAN = register(Vxlan())
