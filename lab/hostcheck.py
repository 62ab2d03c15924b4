"""What a host must offer a lab before anything is created (pure): address ranges no libvirt
network of another name holds (vagrant-libvirt refuses them), KVM where the lab needs it,
free memory, and every URL and registry the lab names reachable. The probes that fill these
checks live in adapters and are passed in, so each check is unit-tested with fakes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network

from lab.config import Lab, Problem
from lab.render import management_network_name, private_network_name


@dataclass(frozen=True)
class LibvirtNetwork:
    name: str
    subnets: tuple[IPv4Network, ...]  # its IPv4 ranges


def parse_libvirt_network_xml(text: str) -> LibvirtNetwork:
    """`virsh net-dumpxml` / virNetwork.XMLDesc -> name and IPv4 ranges."""
    root = ET.fromstring(text)
    name = (root.findtext("name") or "").strip()
    subnets = []
    for ip in root.findall("ip"):
        if ip.get("family", "ipv4") != "ipv4" or not ip.get("address"):
            continue
        mask = ip.get("prefix") or ip.get("netmask") or "24"
        subnets.append(IPv4Network(f"{ip.get('address')}/{mask}", strict=False))
    return LibvirtNetwork(name, tuple(subnets))


def lab_libvirt_networks(lab: Lab) -> tuple[tuple[str, str, IPv4Network], ...]:
    """(field, libvirt network name, range) of every network vagrant-libvirt creates for it."""
    return (
        ("network.management", management_network_name(lab), lab.network.management),
        ("network.private", private_network_name(lab), lab.network.private),
    )


def libvirt_subnet_problems(lab: Lab, existing: Iterable[LibvirtNetwork]) -> list[Problem]:
    """Ranges of the lab that a libvirt network of another name already holds.

    vagrant-libvirt refuses a network whose address exists under another name
    (NetworkNameAndAddressMismatch), e.g. its own default `vagrant-libvirt` network on
    192.168.121.0/24 or another lab's; an overlapping range fails when libvirt starts it. The
    host-interface check cannot see these (it skips libvirt's virbr* bridges)."""
    problems = []
    for field, name, subnet in lab_libvirt_networks(lab):
        for net in existing:
            if net.name == name:
                continue  # the lab's own network, from an earlier up
            for held in net.subnets:
                if held.overlaps(subnet):
                    problems.append(
                        Problem(
                            field,
                            str(subnet),
                            f"libvirt network {net.name!r} already holds {held}: vagrant-libvirt "
                            "refuses a network whose address exists under another name "
                            "(NetworkNameAndAddressMismatch)",
                            f"pick a free range for {field}, or remove {net.name!r} if nothing "
                            f"uses it (virsh net-destroy {net.name}; virsh net-undefine "
                            f"{net.name})",
                        )
                    )
    return problems
