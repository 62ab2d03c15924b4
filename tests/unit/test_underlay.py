"""The routed underlay (lab/model/underlay.py and its lab-file checks): segments, the router
VM's addresses and NICs, the route a node needs across the router; every problem of a bad
`network.segments` at once, naming field, value and fix; instances that move the segments
with the private block; the Vagrant JSON with a router VM and a libvirt network per segment;
host-gw refused across the router with flannel's reason."""

from __future__ import annotations

import copy
import dataclasses
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.hosts.hostcheck import lab_libvirt_networks
from lab.hosts.hypervisor import TCG
from lab.hosts.os import base as os_profiles
from lab.hosts.vagrantfile import private_network_name, private_networks, render_vagrant
from lab.model import instance, underlay
from lab.model.config import Node, check_lab
from lab.model.labfile import load_lab

ROOT = Path(__file__).resolve().parents[2]
VX = load_lab(ROOT / "labs" / "ci-debian12-routed-vxlan.yaml")
BGP = load_lab(ROOT / "labs" / "ci-debian12-routed-bgp.yaml")
FLAT = load_lab(ROOT / "labs" / "ci-debian12.yaml")
RAW = yaml.safe_load((ROOT / "labs" / "ci-debian12-routed-vxlan.yaml").read_text())


def problems(edit: dict[str, Any]) -> list[str]:
    raw = copy.deepcopy(RAW)
    for path, value in edit.items():
        *parents, key = path.split(".")
        where = raw
        for part in parents:
            where = where[int(part)] if part.isdigit() else where[part]
        if value is None:
            del where[key]
        else:
            where[key] = value
    lab, found = check_lab(raw, "x.yaml")
    assert (lab is None) == bool(found)
    return [str(p) for p in found]


# --- the model --------------------------------------------------------------------------------


def test_each_node_sits_on_its_segment_and_reaches_the_others_through_the_router() -> None:
    node1, node2 = VX.node("node1"), VX.node("node2")
    assert [s.name for s in (underlay.segment_of(VX, node1), underlay.segment_of(VX, node2))] == [
        "rack1",
        "rack2",
    ]
    assert not underlay.same_segment(VX, node1, node2)
    assert underlay.gateway_of(VX, node1) == IPv4Address("10.10.50.254")
    assert str(underlay.underlay_route(VX, node2)) == "10.10.50.0/23 via 10.10.51.254 dev eth1"
    assert underlay.prefixlen(VX, node2) == 24
    assert underlay.machine_names(VX) == ("node1", "node2", "tor")
    router = underlay.router_node(VX)
    assert (router.name, router.ip, router.cpus, router.memory_mib) == (
        "tor",
        IPv4Address("10.10.50.254"),
        1,
        512,
    )
    assert [underlay.router_nic(VX, s) for s in VX.network.segments] == ["eth1", "eth2"]
    assert underlay.hop_between(VX, node1, node2) == (
        "node1 (rack1) -> tor eth1 10.10.50.254 / eth2 10.10.51.254 -> node2 (rack2)"
    )


def test_the_router_machine_has_the_cpus_and_memory_the_lab_file_gives_it() -> None:
    raw = copy.deepcopy(RAW)
    raw["network"]["router"] = {"name": "tor", "cpus": 2, "memory_mib": 768}
    lab, found = check_lab(raw, "x.yaml")
    assert lab is not None, found
    router = underlay.router_node(lab)
    assert (router.name, router.cpus, router.memory_mib) == ("tor", 2, 768)


def test_a_hop_to_a_node_off_every_segment_is_reported_without_a_router() -> None:
    # not a node of a valid lab (validation refuses it), but a report must not break on it
    stray = Node("stray", IPv4Address("192.0.2.1"))
    node1 = VX.node("node1")
    assert underlay.hop_between(VX, node1, stray) == "node1 -> stray (one layer-2 segment)"
    assert underlay.hop_between(VX, stray, node1) == "stray -> node1 (one layer-2 segment)"


def test_a_flat_lab_has_one_segment_no_router_and_no_underlay_route() -> None:
    node = FLAT.node("node1")
    assert not FLAT.network.routed
    assert underlay.segment_of(FLAT, node) is None
    assert underlay.underlay_route(FLAT, node) is None
    assert underlay.same_segment(FLAT, node, FLAT.node("node2"))
    assert underlay.machine_names(FLAT) == ("node1", "node2")
    assert underlay.hop_between(FLAT, node, FLAT.node("node2")) == (
        "node1 -> node2 (one layer-2 segment)"
    )
    with pytest.raises(ValueError, match="has no routed underlay"):
        underlay.router_node(FLAT)


# --- validation: every problem at once, field, value, fix --------------------------------------


def test_every_problem_of_the_segments_is_named_at_once() -> None:
    found = problems(
        {
            "network.segments": [
                {"name": "Rack_1", "cidr": "10.10.50.0/24"},
                {"name": "rack2", "cidr": "10.10.50.128/25"},
                {"name": "rack3", "cidr": "10.10.60.0/24"},
            ],
            "nodes": [
                {"name": "node1", "ip": "10.10.50.254"},
                {"name": "node2", "ip": "10.10.51.7"},
            ],
        }
    )
    assert found == [
        "nodes[0].ip = '10.10.50.254': is segment Rack_1's last host address, which the router "
        "VM 'tor' takes; pick an address between 10.10.50.2 and 10.10.50.253",
        "nodes[1].ip = '10.10.51.7': is on no segment of network.segments (Rack_1 "
        "10.10.50.0/24, rack2 10.10.50.128/25, rack3 10.10.60.0/24): a node of a routed "
        "underlay sits on one of its segments; pick an address inside one of them",
        "network.segments[0].name = 'Rack_1': must be a short label (lowercase letters, digits, "
        "'-'; at most 15): it names the segment's libvirt network; try 'rack-1'",
        "network.segments[2].cidr = '10.10.60.0/24': is outside network.private 10.10.50.0/23 "
        "(the block the segments are cut from: instances move it as one); pick a range inside "
        "10.10.50.0/23, or widen network.private",
        "network.segments[2].cidr = '10.10.60.0/24': holds no node: segment rack3 would only "
        "connect the router to nothing; put a node on it (nodes[*].ip) or remove the segment",
        "network.segments[1].cidr = '10.10.50.128/25': overlaps network.segments[0].cidr "
        "10.10.50.0/24; segments must be disjoint",
    ]


def test_one_segment_a_router_without_segments_and_a_router_named_like_a_node() -> None:
    assert problems({"network.segments": [{"name": "rack1", "cidr": "10.10.50.0/23"}]}) == [
        "network.segments = ['rack1']: one segment is the flat network: a routed underlay has "
        "two or more, with the router between them; add a segment, or remove network.segments "
        "for a flat lab",
    ]
    assert problems({"network.segments": None}) == [
        "network.router: is the router between the segments of a routed underlay; this lab has "
        "no network.segments (one flat segment, no router); remove network.router, or add "
        "network.segments"
    ]
    assert problems({"network.router": {"name": "node2", "memory_mib": 100}}) == [
        "network.router.name = 'node2': is also a node's name: the router is a VM of its own; "
        "name it e.g. 'node2-tor'",
        "network.router.memory_mib = 100: must be at least 512",
    ]


def test_a_node_on_the_host_bridge_or_the_network_address_of_its_segment() -> None:
    assert problems({"nodes": [{"name": "node1", "ip": "10.10.50.1"}, RAW["nodes"][1]]}) == [
        "nodes[0].ip = '10.10.50.1': is segment rack1's first address, which libvirt gives the "
        "host bridge; pick an address from 10.10.50.2 on"
    ]
    assert problems({"nodes": [RAW["nodes"][0], {"name": "node2", "ip": "10.10.51.0"}]}) == [
        "nodes[1].ip = '10.10.51.0': is the network address of segment rack2 10.10.51.0/24; "
        "pick a host address between 10.10.51.2 and 10.10.51.253"
    ]


def test_host_gw_on_a_routed_underlay_is_refused_with_flannels_reason() -> None:
    found = problems({"pod_network.driver": "host-routes", "pod_network.mtu": 1500})
    assert found == [
        "pod_network.driver = 'host-routes': host-gw needs every node on the same layer-2 "
        "segment: node2 (10.10.51.242, segment rack2) is not on the same subnet as node1 "
        "(10.10.50.241, segment rack1); the kernel refuses a route via a gateway across the "
        "router ('Nexthop has invalid gateway') and flanneld's host-gw logs 'Error adding route "
        "... network is unreachable'; use driver: vxlan (a tunnel crosses the router) or "
        "driver: bgp (the router learns the pod routes), or put every node on one segment"
    ]
    assert problems({"pod_network.driver": "bgp", "pod_network.mtu": 1500}) == []


def test_the_routed_labs_are_valid_and_keep_an_os_that_provisions_them() -> None:
    assert problems({}) == []
    assert VX.network.routed
    assert BGP.network.routed


def test_four_segments_are_the_most_the_router_has_nics_for() -> None:
    cidrs = [
        "10.10.50.0/26",
        "10.10.50.64/26",
        "10.10.50.128/26",
        "10.10.50.192/26",
        "10.10.51.0/26",
    ]
    ips = ["10.10.50.10", "10.10.50.70", "10.10.50.130", "10.10.50.200", "10.10.51.10"]
    segments = [{"name": f"rack{i}", "cidr": cidr} for i, cidr in enumerate(cidrs, 1)]
    nodes = [{"name": f"node{i}", "ip": ip} for i, ip in enumerate(ips, 1)]
    assert problems({"network.segments": segments[:4], "nodes": nodes[:4]}) == []
    assert problems({"network.segments": segments, "nodes": nodes}) == [
        "network.segments = ['rack1', 'rack2', 'rack3', 'rack4', ...]: has 5 segments; the "
        "router VM has a NIC for at most 4; use at most 4 segments"
    ]


def test_a_segment_name_is_at_most_15_characters_and_the_suggestion_drops_a_trailing_dash() -> None:
    def named(first: str) -> list[str]:
        return problems(
            {
                "network.segments": [
                    {"name": first, "cidr": "10.10.50.0/24"},
                    {"name": "rack2", "cidr": "10.10.51.0/24"},
                ]
            }
        )

    assert named("rack-number-one") == []  # 15: the longest a libvirt network name here takes
    assert named("rack-number-on-x") == [
        "network.segments[0].name = 'rack-number-on-x': must be a short label (lowercase "
        "letters, digits, '-'; at most 15): it names the segment's libvirt network; try "
        "'rack-number-on'"
    ]


def test_a_duplicate_segment_name_points_at_the_first_segment_of_that_name() -> None:
    found = problems(
        {
            "network.segments": [
                {"name": "rack1", "cidr": "10.10.50.0/25"},
                {"name": "rack2", "cidr": "10.10.51.0/24"},
                {"name": "rack1", "cidr": "10.10.50.128/25"},
            ],
            "nodes": [
                {"name": "node1", "ip": "10.10.50.10"},
                {"name": "node2", "ip": "10.10.51.10"},
                {"name": "node3", "ip": "10.10.50.130"},
            ],
        }
    )
    assert found == [
        "network.segments[2].name = 'rack1': duplicates network.segments[0].name; give every "
        "segment its own name"
    ]


def two_racks(second: str, node2_ip: str) -> list[str]:
    return problems(
        {
            "network.segments": [
                {"name": "rack1", "cidr": "10.10.50.0/24"},
                {"name": "rack2", "cidr": second},
            ],
            "nodes": [{"name": "node1", "ip": "10.10.50.10"}, {"name": "node2", "ip": node2_ip}],
        }
    )


def test_a_29_is_the_smallest_segment_and_its_edges_are_no_node_addresses() -> None:
    assert two_racks("10.10.51.0/29", "10.10.51.3") == []
    assert two_racks("10.10.51.0/29", "10.10.51.0") == [
        "nodes[1].ip = '10.10.51.0': is the network address of segment rack2 10.10.51.0/29; "
        "pick a host address between 10.10.51.2 and 10.10.51.5"
    ]
    assert two_racks("10.10.51.0/29", "10.10.51.7") == [
        "nodes[1].ip = '10.10.51.7': is the broadcast address of segment rack2 10.10.51.0/29; "
        "pick a host address between 10.10.51.2 and 10.10.51.5"
    ]
    # a /30 is named once, as a segment too small; its node's address is not judged on it
    assert two_racks("10.10.51.0/30", "10.10.51.0") == [
        "network.segments[1].cidr = '10.10.51.0/30': is too small for a segment; use a /29 or "
        "larger"
    ]


def test_the_router_name_and_cpus_are_checked_as_a_nodes_are() -> None:
    assert problems({"network.router": {"name": "Tor_1", "cpus": 0}}) == [
        "network.router.name = 'Tor_1': hostname must be a DNS-1123 label (lowercase letters, "
        "digits, '-'; start and end with a letter or digit; at most 63 characters): kubeadm "
        "rejects it otherwise; try 'tor-1'",
        "network.router.cpus = 0: must be between 1 and 256",
    ]


def test_an_os_path_without_a_routed_underlay_names_the_families_that_have_one() -> None:
    found = problems({"os.family": "el7"})
    assert [p for p in found if p.startswith("network.")] == [
        "network.segments = ['rack1', 'rack2']: the el7 path does not provision a routed "
        "underlay (the nodes' routes to the other segments, the router VM); remove "
        "network.segments, or use os.family debian12"
    ]


def test_every_family_that_provisions_a_routed_underlay_is_offered() -> None:
    # a second such family (a copy of debian12's profile, registered for this test only)
    os_profiles.register(dataclasses.replace(os_profiles.profile("debian12"), family="toyos"))
    try:
        found = problems({"os.family": "el7"})
    finally:
        os_profiles.unregister("toyos")
    assert [p for p in found if p.startswith("network.")] == [
        "network.segments = ['rack1', 'rack2']: the el7 path does not provision a routed "
        "underlay (the nodes' routes to the other segments, the router VM); remove "
        "network.segments, or use os.family debian12 or toyos"
    ]


# --- instances --------------------------------------------------------------------------------


def test_an_instance_moves_the_segments_and_the_router_with_the_private_block() -> None:
    made = instance.derive_instance(VX, "ci-debian12-routed-vxlan-t1", [])
    offset = int(made.network.private.network_address) - int(VX.network.private.network_address)
    assert made.network.private.prefixlen == 23
    assert offset != 0
    for old, new in zip(VX.network.segments, made.network.segments, strict=True):
        assert new.name == old.name
        assert int(new.cidr.network_address) - int(old.cidr.network_address) == offset
        assert new.router_address == old.router_address + offset
    assert [underlay.segment_of(made, n).name for n in made.nodes] == ["rack1", "rack2"]  # type: ignore[union-attr]
    assert not check_lab_problems(made)
    again = instance.from_record(VX, instance.parse_record(instance.render_record(made)))
    assert again.network == made.network
    assert again.nodes == made.nodes


def check_lab_problems(lab: Any) -> list[str]:
    from lab.model.config import validate_lab

    return [str(p) for p in validate_lab(lab)]


def test_an_instance_keeps_off_a_taken_range_for_the_whole_block() -> None:
    taken = [IPv4Network("10.10.52.0/24")]  # the next /23's first segment
    made = instance.derive_instance(VX, "x-t2", taken)
    assert not any(s.cidr.overlaps(taken[0]) for s in made.network.segments)
    assert not made.network.private.overlaps(VX.network.private)


# --- rendering --------------------------------------------------------------------------------


def test_the_vagrant_json_has_the_router_with_a_nic_per_segment_and_a_network_each() -> None:
    data = render_vagrant(VX, TCG)
    machines = {m["name"]: m for m in data["nodes"]}
    assert list(machines) == ["node1", "node2", "tor"]
    assert [
        (n["ip"], n["netmask"], n["libvirt__network_name"])
        for n in machines["tor"]["private_networks"]
    ] == [
        ("10.10.50.254", "255.255.255.0", "netlab-ci-debian12-routed-vxlan_seg-rack1"),
        ("10.10.51.254", "255.255.255.0", "netlab-ci-debian12-routed-vxlan_seg-rack2"),
    ]
    assert (machines["tor"]["cpus"], machines["tor"]["memory"]) == (1, 512)
    (nic,) = machines["node2"]["private_networks"]
    assert nic["libvirt__network_name"] == private_network_name(VX, VX.node("node2"))
    assert nic["libvirt__forward_mode"] == "none"  # the router VM is the only way across
    assert [name for name, _ in private_networks(VX)] == [
        "netlab-ci-debian12-routed-vxlan_seg-rack1",
        "netlab-ci-debian12-routed-vxlan_seg-rack2",
    ]
    assert [(f, str(n)) for f, _, n in lab_libvirt_networks(VX)] == [
        ("network.management", "192.168.140.0/24"),
        ("network.segments[0].cidr", "10.10.50.0/24"),
        ("network.segments[1].cidr", "10.10.51.0/24"),
    ]


def test_a_segment_is_found_by_its_name_and_an_unknown_one_named() -> None:
    assert underlay.segment_named(VX, "rack2") == VX.network.segments[1]
    with pytest.raises(KeyError) as missing:
        underlay.segment_named(VX, "rack9")
    assert missing.value.args == (f"lab {VX.name!r} has no segment 'rack9'",)


def test_host_gw_names_every_node_off_the_first_ones_segment() -> None:
    nodes = [*RAW["nodes"], {"name": "node3", "ip": "10.10.51.243"}]
    found = problems({"nodes": nodes, "pod_network.driver": "host-routes", "pod_network.mtu": 1500})
    assert found[0].startswith(
        "pod_network.driver = 'host-routes': host-gw needs every node on the same layer-2 "
        "segment: node2 (10.10.51.242, segment rack2), node3 (10.10.51.243, segment rack2) is "
        "not on the same subnet as node1 (10.10.50.241, segment rack1); "
    )


def test_the_private_network_of_no_node_is_the_flat_one_even_on_a_routed_lab() -> None:
    assert private_network_name(VX) == f"{VX.prefix}priv"
    assert private_network_name(VX, VX.node("node1")) == f"{VX.prefix}seg-rack1"
