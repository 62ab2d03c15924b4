"""The shipped lab files (labs/*.yaml) side by side: the host-side networks of labs of different
names never share or overlap a range (vagrant-libvirt refuses an address held under another
name, so one lab's networks would stop another's `up`), and the guide lab keeps the guide's
own addresses. Pod and service CIDRs live inside the VMs and may repeat across labs."""

from __future__ import annotations

import dataclasses
import itertools
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from lab.hosts.hostcheck import (
    lab_libvirt_networks,
    libvirt_subnet_problems,
    parse_libvirt_network_xml,
)
from lab.model.config import Lab
from lab.model.labfile import load_lab

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted((ROOT / "labs").glob("*.yaml"))
LABS = {path.stem: load_lab(path) for path in FILES}
VAGRANT_LIBVIRT_DEFAULT = IPv4Network("192.168.121.0/24")


def host_network_clashes(labs: dict[str, Lab]) -> list[str]:
    """Every pair of host-side (libvirt) networks of two labs of different names that overlap.
    Files of one lab name are variants of one lab (one set of libvirt networks, by name)."""
    clashes = []
    for (a_file, a), (b_file, b) in itertools.combinations(sorted(labs.items()), 2):
        if a.name == b.name:
            continue
        for a_field, _, a_net in lab_libvirt_networks(a):
            for b_field, _, b_net in lab_libvirt_networks(b):
                if a_net.overlaps(b_net):
                    clashes.append(
                        f"{a_file} {a_field} {a_net} overlaps {b_file} {b_field} {b_net}"
                    )
    return clashes


def test_no_two_shipped_labs_share_or_overlap_a_host_side_network() -> None:
    assert len(LABS) >= 4
    assert host_network_clashes(LABS) == []


def test_the_clash_check_sees_private_and_management_ranges_but_not_pod_cidrs() -> None:
    guide, ci = LABS["guide-centos7"], LABS["ci-debian12"]
    assert guide.pod_network.cidr == ci.pod_network.cidr, "pod CIDRs repeat: inside the VMs"
    old_ci = dataclasses.replace(
        ci, network=dataclasses.replace(ci.network, private=IPv4Network("10.10.10.0/24"))
    )
    assert host_network_clashes({"guide-centos7": guide, "ci-debian12": old_ci}) == [
        "ci-debian12 network.private 10.10.10.0/24 overlaps guide-centos7 network.private "
        "10.10.10.0/24"
    ]
    wide = dataclasses.replace(
        ci, network=dataclasses.replace(ci.network, management=IPv4Network("10.10.0.0/16"))
    )
    assert host_network_clashes({"guide-centos7": guide, "wide": wide}) == [
        "guide-centos7 network.private 10.10.10.0/24 overlaps wide network.management 10.10.0.0/16"
    ]


def test_files_of_one_lab_name_are_variants_of_one_lab() -> None:
    """A variant (other mirrors) is the same lab: its VMs and libvirt networks are the same."""
    by_name: dict[str, list[Lab]] = {}
    for lab in LABS.values():
        by_name.setdefault(lab.name, []).append(lab)
    for labs in by_name.values():
        assert {(lab.network, lab.nodes, lab.vm) for lab in labs} == {
            (labs[0].network, labs[0].nodes, labs[0].vm)
        }


def test_no_shipped_lab_uses_vagrant_libvirts_default_network() -> None:
    for name, lab in LABS.items():
        for field, _, net in lab_libvirt_networks(lab):
            assert not net.overlaps(VAGRANT_LIBVIRT_DEFAULT), f"{name} {field} {net}"


def test_the_guide_lab_keeps_the_guides_addresses() -> None:
    guide = LABS["guide-centos7"]
    assert guide.network.private == IPv4Network("10.10.10.0/24")
    assert [(n.name, n.ip) for n in guide.nodes] == [
        ("k8s-master", IPv4Address("10.10.10.241")),
        ("k8s-node1", IPv4Address("10.10.10.242")),
        ("k8s-node2", IPv4Address("10.10.10.243")),
    ]


def test_a_lab_whose_range_moved_meets_its_old_libvirt_network_before_any_vm() -> None:
    """ci-debian12 moved from 10.10.10.0/24: on a host that still holds its old network, `up`
    and `preflight` say so (vagrant-libvirt would refuse the name with another address)."""
    ci = LABS["ci-debian12"]
    old = parse_libvirt_network_xml(
        "<network><name>netlab-ci-debian12_priv</name>"
        "<ip address='10.10.10.1' netmask='255.255.255.0'/></network>"
    )
    (problem,) = libvirt_subnet_problems(ci, [old])
    assert problem.field == "network.private"
    assert "'netlab-ci-debian12_priv' still holds 10.10.10.0/24 from an earlier up" in str(problem)
    assert "python -m lab destroy ci-debian12" in str(problem)
    current = parse_libvirt_network_xml(
        "<network><name>netlab-ci-debian12_priv</name>"
        "<ip address='10.10.40.1' prefix='24'/></network>"
    )
    assert libvirt_subnet_problems(ci, [current]) == []
