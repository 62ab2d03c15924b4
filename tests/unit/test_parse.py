"""The parsers of host and vagrant output (lab/hosts/parse.py), fed with real outputs captured
from this lab (tests/data/vagrant/), and to the letter: what each reads and what it skips."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.hosts import parse
from lab.hosts.parse import (
    ACCT_V3,
    TCP_LISTEN,
    UDP_UNCONNECTED,
    ProcessCpu,
    VagrantOutputError,
    cpu_deltas,
    parse_acct_v3,
    parse_cgroup_cpu,
    parse_ip_addr_addresses,
    parse_ip_addr_networks,
    parse_proc_net,
    parse_ssh_config,
    parse_vagrant_status,
    socket_table_ports,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "vagrant"
STATES = {
    "status-running.txt": {"node1": "running", "node2": "running"},
    "status-not-created.txt": {"node1": "not_created", "node2": "not_created"},
    "status-shutoff.txt": {"node1": "shutoff", "node2": "shutoff"},
    "status-paused.txt": {"node1": "paused", "node2": "running"},
}


@pytest.mark.parametrize(("name", "states"), sorted(STATES.items()))
def test_vagrant_status_in_every_state(name: str, states: dict[str, str]) -> None:
    parsed = parse_vagrant_status((DATA / name).read_text())
    assert {n: s.state for n, s in parsed.items()} == states
    assert {s.provider for s in parsed.values()} == {"libvirt"}


def test_an_error_inside_machine_readable_output_is_raised_not_swallowed() -> None:
    # vagrant's own documented shape of an error in machine-readable mode
    out = (
        "1424099042,,error-exit,Vagrant::Errors::MachineNotFound,The machine with the name "
        "'api' was not found configured for\\nthis Vagrant environment.\n"
    )
    with pytest.raises(VagrantOutputError, match="MachineNotFound"):
        parse_vagrant_status(out)


def test_multi_host_ssh_config() -> None:
    targets = parse_ssh_config((DATA / "ssh-config.txt").read_text())
    assert sorted(targets) == ["node1", "node2"]
    node1 = targets["node1"]
    assert node1.user == "vagrant"
    assert node1.port == 22
    assert node1.hostname.startswith("192.168.121.")
    assert node1.identity_files[0].endswith("/netlab-VAGRANTSLASH-debian12/0/libvirt/vagrant_key")
    assert ("StrictHostKeyChecking", "no") in node1.options


def test_ssh_config_without_a_hostname_is_an_error() -> None:
    with pytest.raises(ValueError, match="lacks hostname"):
        parse_ssh_config("Host node1\n  User vagrant\n  Port 22\n")


IP_ADDR = [
    {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {
        "ifname": "eth0",
        "addr_info": [
            {"family": "inet", "local": "192.0.2.2", "prefixlen": 24},
            {"family": "inet6", "local": "fd00::2", "prefixlen": 64},
        ],
    },
    {
        "ifname": "virbr0",
        "addr_info": [{"family": "inet", "local": "192.168.122.1", "prefixlen": 24}],
    },
]


def test_ip_addr_networks_and_addresses() -> None:
    nets = parse_ip_addr_networks(IP_ADDR, exclude_prefixes=("lo", "virbr"))
    assert [str(n) for n in nets] == ["192.0.2.0/24"]
    addrs = parse_ip_addr_addresses(IP_ADDR)
    assert [str(a) for a in addrs["eth0"]] == ["192.0.2.2"]


def test_cgroup_cpu_usage_per_group_and_what_grew() -> None:
    from lab.hosts.parse import cpu_deltas, parse_cgroup_cpu

    before = parse_cgroup_cpu(
        "cpu.stat 71300000\n"
        "system.slice/cpu.stat 60400000\n"
        "system.slice/ssh.service/cpu.stat 29400000\n"
        "k8s.io/cpu.stat \n"  # read as the cgroup went away: skipped
        "init.scope/cpu.stat 2900000\n"
    )
    assert before == {"/": 71.3, "system.slice": 60.4, "system.slice/ssh.service": 29.4,
                      "init.scope": 2.9}  # fmt: skip
    after = {**before, "/": 80.0, "system.slice/ssh.service": 31.0, "k8s.io": 0.6}
    assert cpu_deltas(before, after, at_least=0.5) == [
        ("/", pytest.approx(8.7)),
        ("system.slice/ssh.service", pytest.approx(1.6)),
        ("k8s.io", 0.6),
    ]
    assert parse_cgroup_cpu("cpu.stat ١٢\nx 5\n") == {}
    # a growth of exactly `at_least` is shown; equal growths in name order; shrinking never
    grown = cpu_deltas({"b": 1.0, "a": 1.0, "c": 3.0}, {"b": 1.5, "a": 1.5, "c": 2.0}, 0.5)
    assert grown == [("a", 0.5), ("b", 0.5)]
    assert parse_cgroup_cpu("  a/b/cpu.stat 1500000  \n") == {"a/b": 1.5}


# --- process accounting (bench/guest_procs.py) ------------------------------------------------


def acct_record(comm: bytes, utime: int, stime: int, version: int = 3) -> bytes:
    """One struct acct_v3 as the kernel writes it (the fields not read left zero)."""
    return ACCT_V3.pack(0, version, 0, 0, 0, 0, 1, 0, 0, 0.0, utime, stime, 0, 0, 0, 0, 0, 0, comm)


def test_acct_records_add_up_per_command_most_cpu_first() -> None:
    data = (
        acct_record(b"runc", 12, 3)  # 0.15 s
        + acct_record(b"runc", 5, 0)
        + acct_record(b"ip", 1, 1)
        + acct_record(b"sh", 0, 2)
        + acct_record(b"old", 50, 50, version=2)  # another format: skipped
        + acct_record(b"big", (2 << 13) | 3, 0)  # comp_t: 3 * 8**2 = 192 ticks
        + b"\x00" * 63  # a torn record at the end: skipped
    )
    assert parse_acct_v3(data) == [
        ProcessCpu("big", 1, 1.92),
        ProcessCpu("runc", 2, 0.2),
        ProcessCpu("ip", 1, 0.02),
        ProcessCpu("sh", 1, 0.02),
    ]


def test_an_acct_command_name_is_read_to_its_nul_and_bytes_that_are_not_utf8_still_count() -> None:
    # a task names itself (prctl PR_SET_NAME): any bytes, up to 16 with no NUL when it is full
    data = (
        acct_record(b"kube\xffproxy", 1, 0)
        + acct_record(b"containerd-shim-", 2, 0)
        + acct_record(b"ip", 3, 0)
    )
    assert parse_acct_v3(data) == [
        ProcessCpu("ip", 1, 0.03),
        ProcessCpu("containerd-shim-", 1, 0.02),
        ProcessCpu("kube\ufffdproxy", 1, 0.01),
    ]


def test_acct_of_a_real_suite_run_names_the_shims_and_cni_plugins() -> None:
    # the first 100 records of one node during `pytest e2e -n 4` on the CI lab
    rows = parse_acct_v3((DATA.parent / "acct" / "suite-node1.acct").read_bytes())
    by_comm = {r.comm: r for r in rows}
    assert sum(r.runs for r in rows) == 100
    assert {"containerd-shim", "bridge", "host-local", "portmap", "loopback"} <= set(by_comm)
    assert by_comm["bridge"] == ProcessCpu("bridge", 6, pytest.approx(1.45))
    assert rows[0].comm == "bridge"
    assert [r.seconds for r in rows] == sorted((r.seconds for r in rows), reverse=True)


# --- a container's network namespace read with `cat` (tests/data/k8s/SOURCES.md) -----------

K8S_DATA = DATA.parent / "k8s"


@pytest.mark.parametrize("name", ["nginx-1.19-proc-net.txt", "nginx-1.19-proc-net-el7.txt"])
def test_a_pods_namespace_read_with_cat_has_its_interfaces_and_one_address(name: str) -> None:
    """Kernel 6.x (recorded) merges fib_trie's Local table into Main; CentOS 7's 3.10 keeps the
    `/32 host LOCAL` leaves in Local apart from Main: either gives the pod's address."""
    view = parse_proc_net((K8S_DATA / name).read_text())
    assert view.interfaces == ("lo", "eth0")
    assert view.addresses == {"eth0": (IPv4Address("10.244.1.4"),)}
    assert view.all == (IPv4Address("10.244.1.4"),)


def test_an_address_without_a_connected_route_and_a_second_interface_are_kept() -> None:
    text = (
        "Inter-|   Receive |  Transmit\n face |bytes|bytes\n    lo: 0 0\n  eth0: 1 1\n"
        "  net1: 2 2\n"
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t0000F40A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "eth0\t0001F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "Local:\n  +-- 10.244.1.0/24 2 0 2\n     |-- 10.244.1.4\n        /32 host LOCAL\n"
        "     |-- 10.244.1.255\n        /32 link BROADCAST\n"
        "  |-- 192.0.2.9\n     /32 host LOCAL\n  |-- 127.0.0.1\n     /32 host LOCAL\n"
    )
    view = parse_proc_net(text)
    assert view.interfaces == ("lo", "eth0", "net1")
    # the longest connected route holds it (the /24, not the /16); none holds 192.0.2.9
    assert view.addresses == {
        "eth0": (IPv4Address("10.244.1.4"),),
        "?": (IPv4Address("192.0.2.9"),),
    }


def test_route_words_with_the_top_bit_set_read_as_unsigned() -> None:
    # little-endian words: a last octet of 128 or more sets the top bit (10.244.1.128/25, a /32)
    text = (
        "Inter-|   Receive |  Transmit\n face |bytes|bytes\n    lo: 0 0\n  eth0: 1 1\n"
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t8001F40A\t00000000\t0001\t0\t0\t0\t80FFFFFF\t0\t0\t0\n"
        "eth0\tC80200C0\t00000000\t0005\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n"
        "Main:\n  +-- 10.244.1.128/25 2 0 2\n     |-- 10.244.1.130\n        /32 host LOCAL\n"
        "  |-- 192.0.2.200\n     /32 host LOCAL\n"
    )
    assert parse_proc_net(text).addresses == {
        "eth0": (IPv4Address("10.244.1.130"), IPv4Address("192.0.2.200"))
    }


DEV_HEADER = (
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
)
ROUTE_HEADER = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
)


def test_loopback_is_left_out_wherever_it_sorts_among_the_addresses() -> None:
    # fib_trie lists leaves in address order: 127.0.0.1 comes before a 192.168.x.x pod
    text = (
        DEV_HEADER + "    lo: 0 0\n  eth0: 1 1\n"
        + ROUTE_HEADER + "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "Main:\n  |-- 127.0.0.1\n     /32 host LOCAL\n"
        "  +-- 192.168.1.0/24 2 0 2\n     |-- 192.168.1.4\n        /32 host LOCAL\n"
    )  # fmt: skip
    assert parse_proc_net(text).addresses == {"eth0": (IPv4Address("192.168.1.4"),)}


def test_an_interface_is_named_by_what_comes_before_the_first_colon() -> None:
    # a name holds neither ':' nor whitespace, but may hold '|' (the header's column mark)
    text = DEV_HEADER + "    lo: 0 0\n   a|b: 1 1\n  eth0: 2 3:4\n" + ROUTE_HEADER + "Main:\n"
    assert parse_proc_net(text).interfaces == ("lo", "a|b", "eth0")


def test_a_route_with_host_bits_is_read_as_its_network() -> None:
    text = (
        DEV_HEADER + "  eth0: 1 1\n"
        + ROUTE_HEADER + "eth0\t0401F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "Main:\n  |-- 10.244.1.9\n     /32 host LOCAL\n"
    )  # fmt: skip
    assert parse_proc_net(text).addresses == {"eth0": (IPv4Address("10.244.1.9"),)}


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("", "['/proc/net/dev', '/proc/net/route', '/proc/net/fib_trie']"),
        ("Inter-|\n face |\n    lo: 0\nMain:\n", "['/proc/net/route']"),
        (
            "OCI runtime exec failed: exec failed: container_linux.go:370: starting container "
            'process caused: exec: "cat": executable file not found in $PATH: unknown\n',
            "['/proc/net/dev', '/proc/net/route', '/proc/net/fib_trie']",
        ),
    ],
)
def test_anything_but_the_three_files_is_an_error_not_an_empty_namespace(
    text: str, missing: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"no {missing}")) as info:
        parse_proc_net(text)
    assert str(info.value) == (
        f"not the output of `cat /proc/net/dev /proc/net/route /proc/net/fib_trie`: no {missing}"
    )


def test_a_route_line_whose_destination_or_gateway_is_not_hex_is_an_error() -> None:
    bad = (
        "Inter-|\n face |\nIface\tDestination\tGateway\neth0 zz 00000000 1 0 0 0 00FFFFFF\nMain:\n"
    )
    with pytest.raises(ValueError, match="/proc/net/route: cannot read the line 'eth0 zz"):
        parse_proc_net(bad)
    gateway = bad.replace("eth0 zz 00000000", "eth0 00000000 0101F40G")
    with pytest.raises(
        ValueError,
        match=r"^/proc/net/route: cannot read the line 'eth0 00000000 0101F40G 1 0 0 0 00FFFFFF'$",
    ):
        parse_proc_net(gateway)


def test_cgroup_cpu_reads_the_last_word_as_the_usage_whatever_the_path_holds() -> None:
    text = (
        "cpu.stat 4000000\n"
        "system.slice/my service.service/cpu.stat 1500000\n"
        "kubepods/podX/cpu.stat 250000\n"
        "gone/cpu.stat\n"
    )
    assert parse_cgroup_cpu(text) == {
        "/": 4.0,
        "system.slice/my service.service": 1.5,
        "kubepods/podX": 0.25,
    }


def test_every_counter_that_grew_is_kept_by_default_however_little() -> None:
    assert cpu_deltas({"a": 1.0}, {"a": 1.5, "b": 0.25}) == [("a", 0.5), ("b", 0.25)]
    assert cpu_deltas({"a": 1.0}, {"a": 1.5, "b": 0.25}, at_least=0.5) == [("a", 0.5)]


def test_a_192_168_route_an_iface_named_interface_and_a_local_before_any_leaf() -> None:
    # 192.168.0.0 is 0x0000A8C0 in the kernel's order: past 2**31 as a word; an interface may
    # be called Iface1, printed flush left (only the route header has Destination); a LOCAL
    # line before any address leaf names nothing
    text = (
        "Inter-|   Receive |  Transmit\n face |bytes|bytes\n    lo: 0 0\nIface1: 1 1\n"
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "Iface1\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
        "Main:\n        /32 host LOCAL\n  +-- 192.168.0.0/16 2 0 2\n     |-- 192.168.7.9\n"
        "        /32 host LOCAL\n"
    )
    view = parse_proc_net(text)
    assert view.interfaces == ("lo", "Iface1")
    assert view.addresses == {"Iface1": (IPv4Address("192.168.7.9"),)}


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


# --- /proc/net/tcp and /proc/net/udp: is a pod's echo server listening yet -------------------

PROCNET = Path(__file__).resolve().parents[1] / "data" / "procnet"


def test_a_listening_tcp_socket_counts_and_a_connection_on_the_same_port_does_not() -> None:
    # recorded on a 6.x kernel: a server on 0.0.0.0:8080 with one accepted connection, and
    # before it started (only sshd's 2024 and TIME_WAIT leftovers)
    listening = (PROCNET / "tcp-echo.txt").read_text()
    before = (PROCNET / "tcp-none.txt").read_text()
    assert socket_table_ports(listening, TCP_LISTEN) == {2024, 8080}
    assert socket_table_ports(before, TCP_LISTEN) == {2024}
    assert 8080 in socket_table_ports(listening, "01")  # the accepted connection, ESTABLISHED


def test_a_bound_udp_socket_counts() -> None:
    assert socket_table_ports((PROCNET / "udp-echo.txt").read_text(), UDP_UNCONNECTED) == {8080}
    assert socket_table_ports((PROCNET / "udp-none.txt").read_text(), UDP_UNCONNECTED) == set()
    assert socket_table_ports((PROCNET / "udp-echo.txt").read_text(), TCP_LISTEN) == set()


def test_the_port_is_read_as_hex_after_the_last_colon() -> None:
    header = (PROCNET / "udp-none.txt").read_text()
    line = "   7: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n"
    assert socket_table_ports(header + line + "\n", TCP_LISTEN) == {80}
    # a blank line (two tables read in a row) is passed over, not the end of the table
    later = line.replace(":0050 ", ":1F90 ")
    assert socket_table_ports(header + line + "\n" + later, TCP_LISTEN) == {80, 8080}
    # the last colon: what is before it is the address, whatever it holds
    odd = line.replace(" 0100007F:0050 ", " 01:00:00:7F:0051 ")
    assert socket_table_ports(header + odd, TCP_LISTEN) == {81}


def test_a_long_first_line_is_quoted_to_80_characters() -> None:
    with pytest.raises(ValueError, match="not a /proc/net socket table") as err:
        socket_table_ports("x" * 79 + "yz", TCP_LISTEN)
    assert str(err.value) == f"not a /proc/net socket table: it starts with {'x' * 79 + 'y'!r}"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "it starts with ''"),
        ("nsenter: cannot open /var/run/netns/x: No such file\n", "it starts with 'nsenter: "),
        ("  sl  local_address rem_address\n", "it starts with 'sl  local_address rem_address'"),
        (
            "  sl  local_address rem_address   st\n   0: 00000000:1F90 00000000:0000\n",
            "cannot read the line '0: 00000000:1F90 00000000:0000'",
        ),
        (
            "  sl  local_address rem_address   st\n   0 00000000:1F90 00000000:0000 0A\n",
            "cannot read the line '0 00000000:1F90",
        ),
        (
            "  sl  local_address rem_address   st\n   0: 00000000 00000000:0000 0A\n",
            "cannot read the line '0: 00000000 00000000:0000 0A'",
        ),
        (
            "  sl  local_address rem_address   st\n   0: 00000000:1G90 00000000:0000 0A\n",
            "cannot read the port of '0: 00000000:1G90",
        ),
    ],
)
def test_what_is_not_a_socket_table_is_told_not_guessed(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        socket_table_ports(text, TCP_LISTEN)
