"""The JSON the thin Vagrantfile loops over (pure): every VM (the nodes, and the router of a
routed underlay), its resources and private addresses, and the libvirt options; all IP math
happens here, none in Ruby. The libvirt networks of a lab are named here too (every object of
a lab starts with its prefix): one private network, or one per segment of a routed underlay."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from typing import Any

from lab.hosts.hypervisor import HypervisorChoice
from lab.model.config import Lab, Node, Segment
from lab.model.underlay import segment_of


def management_network_name(lab: Lab) -> str:
    """The libvirt network vagrant-libvirt creates for the lab's management NICs."""
    return f"{lab.prefix}mgmt"


def private_network_name(lab: Lab, node: Node | None = None) -> str:
    """The libvirt network of the node's private NIC: the lab's one flat network, or on a
    routed underlay the network of the node's segment (`node` None: the flat one)."""
    seg = None if node is None else segment_of(lab, node)
    return segment_network_name(lab, seg) if seg is not None else f"{lab.prefix}priv"


def segment_network_name(lab: Lab, segment: Segment) -> str:
    return f"{lab.prefix}seg-{segment.name}"


def private_networks(lab: Lab) -> tuple[tuple[str, IPv4Network], ...]:
    """(libvirt network name, range) of every private network the lab's VMs attach to."""
    if lab.network.routed:
        return tuple((segment_network_name(lab, s), s.cidr) for s in lab.network.segments)
    return ((private_network_name(lab), lab.network.private),)


def _attachment(network: str, ip: IPv4Address, cidr: IPv4Network) -> dict[str, Any]:
    return {
        "ip": str(ip),
        "netmask": str(cidr.netmask),
        "libvirt__network_name": network,
        "libvirt__dhcp_enabled": False,
        "libvirt__forward_mode": "none",
    }


def _node_entry(lab: Lab, node: Node) -> dict[str, Any]:
    seg = segment_of(lab, node)
    cidr = seg.cidr if seg is not None else lab.network.private
    return {
        "name": node.name,
        "cpus": lab.cpus(node),
        "memory": lab.memory_mib(node),
        "private_networks": [_attachment(private_network_name(lab, node), node.ip, cidr)],
    }


def _router_entry(lab: Lab) -> dict[str, Any]:
    """The router VM: one private NIC per segment (eth1, eth2, ... in lab-file order), on each
    the segment's last host address."""
    router = lab.network.router_vm
    return {
        "name": router.name,
        "cpus": router.cpus,
        "memory": router.memory_mib,
        "private_networks": [
            _attachment(segment_network_name(lab, s), s.router_address, s.cidr)
            for s in lab.network.segments
        ],
    }


def render_vagrant(lab: Lab, hv: HypervisorChoice) -> dict[str, Any]:
    """The JSON the thin Vagrantfile loops over. All IP math happens here, none in Ruby."""
    machines = [_node_entry(lab, node) for node in lab.nodes]
    if lab.network.routed:
        machines.append(_router_entry(lab))
    return {
        "lab": lab.name,
        "box": {"name": lab.vm.box, "version": lab.vm.box_version, "url": lab.vm.box_url},
        "boot_timeout": lab.vm.boot_timeout_s,
        "libvirt": {
            **hv.as_libvirt_options(),
            "default_prefix": lab.prefix,
            "management_network_name": management_network_name(lab),
            "management_network_address": str(lab.network.management),
            "graphics_type": "none",
            "video_type": "none",
            # a lab's disks are disposable: QEMU need not pass the guest's flushes (containerd's
            # and journald's fsyncs) to the host's disk; lost only if the host itself crashes
            "disk_driver_opts": {"cache": "unsafe"},
        },
        "nodes": machines,
    }
