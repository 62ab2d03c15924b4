"""The small parsers of host and vagrant output, and the host-capacity check, to the letter:
what each reads, what it skips, and every figure a refusal gives."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.hosts import parse
from lab.hosts.capacity import HostResources, check_capacity, parse_cgroup_memory_room_mib
from lab.model.labfile import load_lab
from lab.model.problems import Problem

ROOT = Path(__file__).resolve().parents[2]


def test_ip_addr_networks_skip_excluded_interfaces_and_other_families() -> None:
    links = [
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
        {"addr_info": [{"family": "inet", "local": "10.0.0.5", "prefixlen": 24}]},
        {"ifname": "eth0"},
        {
            "ifname": "eth1",
            "addr_info": [
                {"family": "inet6", "local": "fe80::1", "prefixlen": 64},
                {"family": "inet", "local": "10.0.0.9", "prefixlen": 24},
                {"family": "inet", "local": "192.168.1.2", "prefixlen": 16},
            ],
        },
    ]
    assert parse.parse_ip_addr_networks(links, ("lo",)) == (
        IPv4Network("10.0.0.0/24"),
        IPv4Network("192.168.0.0/16"),
    )
    assert parse.parse_ip_addr_addresses([{"ifname": "eth0"}, links[3]]) == {
        "eth0": (),
        "eth1": (IPv4Address("10.0.0.9"), IPv4Address("192.168.1.2")),
    }


@pytest.mark.parametrize("prefixes", [("virbr", "netlab", "lo"), ("N", "X"), ("None",), ("XX",)])
def test_a_link_without_a_name_matches_no_excluded_prefix(prefixes: tuple[str, ...]) -> None:
    # a link `ip -j addr` gives without an ifname is read as the name "", which no prefix
    # (not even one that reads like a placeholder) excludes
    links = [{"addr_info": [{"family": "inet", "local": "10.0.0.5", "prefixlen": 24}]}]
    assert parse.parse_ip_addr_networks(links, prefixes) == (IPv4Network("10.0.0.0/24"),)


def test_one_line_addresses_strip_the_peer_and_colon_and_skip_odd_lines() -> None:
    text = (
        "1: lo    inet 127.0.0.1/8 scope host lo\n"
        "5: eth0@if6    inet 10.244.1.5/24 brd 10.244.1.255 scope global eth0\n"
        "5: eth0@if6    inet 10.244.1.6/24 scope global secondary eth0\n"
        "7: eth1:    inet 10.10.10.2/24\n"
        "8: bad    inet 10.0.0.300/24 scope global bad\n"
        "9: eth2    inet6 fe80::1/64 scope link\n"
        "10: eth3    inet\n"
        "11: eth4 inet 10.0.0.4/8\n"
        "12: v10@br@lab    inet 10.1.0.1/24\n"  # a VLAN on a link named br@lab: the name is v10
        "13: wlanX:    inet 10.2.0.1/24\n"
    )
    assert parse.parse_ip_oneline_addresses(text) == {
        "lo": (IPv4Address("127.0.0.1"),),
        "eth0": (IPv4Address("10.244.1.5"), IPv4Address("10.244.1.6")),
        "eth1": (IPv4Address("10.10.10.2"),),
        "bad": (),
        "eth4": (IPv4Address("10.0.0.4"),),
        "v10": (IPv4Address("10.1.0.1"),),
        "wlanX": (IPv4Address("10.2.0.1"),),
    }


@pytest.mark.parametrize(
    ("text", "mtu"),
    [
        (
            "3: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP,M-DOWN> mtu 1450 qdisc noqueue "
            "state UP mode DEFAULT group default qlen 1000\\    link/ether 0a:58:0a:f4:01:05",
            1450,
        ),
        ("5: eth0: <BROADCAST,MULTICAST,UP> mtu 9000 qlen 1000", 9000),  # busybox
        # no MTU to read: a number after another key is not one
        ("7: eth1: <BROADCAST,MULTICAST> qdisc noop qlen 1000", None),
        ("7: eth1: <BROADCAST,MULTICAST> mtu auto qlen 1000", None),
        ('Device "eth9" does not exist.', None),
    ],
    ids=["iproute2", "busybox", "no-mtu", "mtu-not-a-number", "no-device"],
)
def test_link_mtu_is_the_number_after_mtu(text: str, mtu: int | None) -> None:
    assert parse.parse_link_mtu(text) == mtu


def test_route_get_gives_the_source_and_device_of_the_first_route() -> None:
    assert parse.parse_route_get([{"prefsrc": "10.244.0.1", "dev": "cni0"}, {"dev": "x"}]) == (
        "10.244.0.1",
        "cni0",
    )
    assert parse.parse_route_get([{"dev": "eth1"}]) == (None, "eth1")
    assert parse.parse_route_get([{"prefsrc": "10.0.0.1"}]) == ("10.0.0.1", None)
    assert parse.parse_route_get([]) == (None, None)


def test_machine_readable_lines_unescape_and_skip_what_is_not_one() -> None:
    out = (
        "\n"
        "1700000000,node1,state,running\n"
        "warning from a plugin, not a row\n"
        "1700000000,node1\n"
        "1700000000,,ui,info,a%!(VAGRANT_COMMA) b\\nc\\rd\n"
        "1700000000,node2,metadata\n"
    )
    assert parse.parse_machine_readable(out) == [
        ("node1", "state", ("running",)),
        ("", "ui", ("info", "a, b\nc\rd")),
        ("node2", "metadata", ()),
    ]
    with pytest.raises(parse.VagrantOutputError, match=r"^Vagrant failed, really$"):
        parse.parse_machine_readable("1,,error-exit,Vagrant failed%!(VAGRANT_COMMA) really\n")
    # the error class and its message, one space apart
    with pytest.raises(
        parse.VagrantOutputError,
        match=r"^Vagrant::Errors::MachineNotFound The machine was not found$",
    ):
        parse.parse_machine_readable(
            "1,,error-exit,Vagrant::Errors::MachineNotFound,The machine was not found\n"
        )


def test_vagrant_status_keeps_machines_in_order_with_their_provider() -> None:
    out = (
        "1,,ui,warn,a plugin's warning before any machine\n"
        "1,node2,provider-name,libvirt\n"
        "1,node2,state,running\n"
        "1,node1,state,not_created\n"
        "1,,state,ignored\n"
        "1,node3,state\n"
    )
    assert parse.parse_vagrant_status(out) == {
        "node2": parse.MachineState("node2", "running", "libvirt"),
        "node1": parse.MachineState("node1", "not_created", ""),
    }


def test_ssh_config_blocks_keep_unknown_keys_and_every_identity_file() -> None:
    out = (
        "# comment\n"
        "Host node1\n"
        '  HostName "192.168.121.10"\n'
        "  User vagrant\n"
        "  Port 22\n"
        "  IdentityFile /a\n"
        "  # a comment inside a block is no option\n"
        '  identityfile "/home/me/my labs/.vagrant/private_key"\n'
        "  StrictHostKeyChecking no\n"
        "\n"
        "Host node2\n"
        "  hostname 192.168.121.11\n  user Xavier\n  port 2222\n"
    )
    assert parse.parse_ssh_config(out) == {
        "node1": parse.SshTarget(
            "node1",
            "192.168.121.10",
            22,
            "vagrant",
            ("/a", "/home/me/my labs/.vagrant/private_key"),
            (("StrictHostKeyChecking", "no"),),
        ),
        "node2": parse.SshTarget("node2", "192.168.121.11", 2222, "Xavier", (), ()),
    }
    with pytest.raises(ValueError, match=r"^ssh-config for 'n' lacks hostname, port$"):
        parse.parse_ssh_config("Host n\n  User u\n")


# --- capacity ------------------------------------------------------------------------------

CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")  # 2 nodes x 1 vCPU x 1024 MiB


def test_cgroup_room_rounds_down_to_whole_mib_and_is_never_negative() -> None:
    assert parse_cgroup_memory_room_mib("3145728\n", "1048577") == 1
    assert parse_cgroup_memory_room_mib("1048576", "2097152") == 0
    assert parse_cgroup_memory_room_mib("max", "1") is None


def test_a_lab_that_exactly_fits_the_host_is_accepted() -> None:
    assert check_capacity(CI, HostResources(1, 2048)) == []
    assert check_capacity(CI, HostResources(1, None)) == []


def test_a_host_short_of_cpus_or_memory_gets_the_figures() -> None:
    assert check_capacity(CI, HostResources(1, 2047, "a test host")) == [
        Problem(
            "vm.memory_mib",
            2048,
            "the lab's 2 VMs need 2048 MiB together (node1 1024, node2 1024), but this host "
            "has 2047 MiB available (a test host)",
            "lower the memory, free some on the host, or use a bigger host",
        )
    ]
    two = dataclasses.replace(CI, vm=dataclasses.replace(CI.vm, cpus=2))
    assert check_capacity(two, HostResources(1, None)) == [
        Problem(
            "vm.cpus",
            2,
            "node1, node2 would each get 2 vCPUs, but this host has 1 CPU(s)",
            "lower it to at most 1",
        )
    ]


def test_a_node_that_overrides_cpus_or_memory_is_named_itself() -> None:
    nodes = (
        dataclasses.replace(CI.nodes[0], cpus=2, memory_mib=512),
        dataclasses.replace(CI.nodes[1], cpus=1),
    )
    lab = dataclasses.replace(CI, nodes=nodes, vm=dataclasses.replace(CI.vm, cpus=4))
    assert check_capacity(lab, HostResources(1, 1535)) == [
        Problem(
            "nodes[0].cpus",
            2,
            "node1 would get 2 vCPUs, but this host has 1 CPU(s)",
            "lower it to at most 1",
        ),
        Problem(
            "nodes[*].memory_mib",
            1536,
            "the lab's 2 VMs need 1536 MiB together (node1 512, node2 1024), but this host has "
            "1535 MiB available (MemAvailable in /proc/meminfo)",
            "lower the memory, free some on the host, or use a bigger host",
        ),
    ]
    assert check_capacity(lab, HostResources(2, 1536)) == []
