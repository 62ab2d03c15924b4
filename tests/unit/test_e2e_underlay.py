"""The underlay's scenarios (e2e/underlay.py) and faults (e2e/faults.py): the path MTU search
and the hop probes as one POSIX sh each, their output parsed; a short path named with the
largest size that crosses and the hop after which one byte more is lost; a slow link judged
by the cells it holds up; the router's fault commands, undone exactly; the registry offers the
underlay faults to routed labs only."""

from __future__ import annotations

import subprocess
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from e2e import faults, underlay
from e2e.drivers.base import ExecResult
from lab.common.commands import cmd
from lab.model.labfile import load_lab
from lab.net import reachability as rm

ROOT = Path(__file__).resolve().parents[2]
VX = load_lab(ROOT / "labs" / "ci-debian12-routed-vxlan.yaml")
BGP = load_lab(ROOT / "labs" / "ci-debian12-routed-bgp.yaml")
FLAT = load_lab(ROOT / "labs" / "ci-debian12.yaml")
FLAT_VX = load_lab(ROOT / "labs" / "ci-debian12-vxlan.yaml")


def fake_ping(tmp_path: Path, largest: int) -> Path:
    """A `ping` on PATH that answers a DF probe of at most `largest` bytes (payload + 28)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ping"
    script.write_text(
        "#!/bin/sh\nsize=0\nwhile [ $# -gt 1 ]; do [ \"$1\" = -s ] && size=$2; shift; done\n"
        f'[ $((size + 28)) -le {largest} ]\n'
    )
    script.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("largest", [1500, 1400, 1350, 577, 576, 100])
def test_the_search_script_finds_the_largest_size_that_crosses(
    tmp_path: Path, largest: int
) -> None:
    path = f"{fake_ping(tmp_path, largest)}:/usr/bin:/bin"
    argv = underlay.search_argv(576, 1500, IPv4Address("10.0.0.2"))
    done = subprocess.run(argv, capture_output=True, text=True, env={"PATH": path}, check=True)
    found = underlay.parse_search(done.stdout)
    assert found is not None
    assert found.largest == (None if largest < 576 else min(largest, 1500))
    assert len(found.probes) <= 2 + 10  # both ends, then a binary search of 924 sizes
    if largest >= 1500:
        assert found.probes == ((1500, True),)


def test_an_unfinished_search_is_not_a_result() -> None:
    assert underlay.parse_search("fail 1500\nok 576\n") is None
    assert underlay.parse_search("fail 1500\nfail 576\nlargest none\n") == underlay.Search(
        None, ((1500, False), (576, False))
    )


HOPS = """ttl 1
From 10.10.50.254 icmp_seq=1 Time to live exceeded
ttl 2
ttl 3
ttl 4
"""


def test_the_hop_after_which_a_packet_is_lost_is_named_from_ttl_probes() -> None:
    hops = underlay.parse_hops(HOPS)
    assert [h.address for h in hops] == ["10.10.50.254", None, None, None]
    assert underlay.lost_after(VX, hops, IPv4Address("10.10.51.242")) == (
        "it reaches hop 1 10.10.50.254 (tor eth1) and is lost after it: the narrow link is "
        "tor eth2 (toward rack2), between tor and node2"
    )
    assert underlay.lost_after(VX, hops) == (
        "it reaches hop 1 10.10.50.254 (tor eth1) and is lost after it: the narrow link is "
        "the next one out of tor eth1"
    )
    assert underlay.lost_after(VX, underlay.parse_hops("ttl 1\nttl 2\n")) == (
        "no hop answered: lost on the source's own link, before the first hop"
    )
    crossed = "ttl 1\n1401 bytes from 10.10.51.242: icmp_seq=1 ttl=63 time=2.1 ms\n"
    assert underlay.parse_hops(crossed)[0].answer == "reply"
    assert "intermittent" in underlay.lost_after(VX, underlay.parse_hops(crossed))


def result(stdout: str, code: int = 0) -> ExecResult:
    return ExecResult(code, stdout, "", "ssh node1 -- sh -c ...")


def test_a_short_path_is_named_with_its_size_and_its_hop() -> None:
    calls: list[tuple[str, ...]] = []

    def run(argv: tuple[str, ...], timeout: float) -> ExecResult:
        calls.append(argv)
        return result("fail 1500\nok 576\nok 1038\nok 1400\nfail 1401\nlargest 1400\n")

    def locate(argv: tuple[str, ...], timeout: float) -> ExecResult:
        calls.append(argv)
        return result(HOPS)

    target = IPv4Address("10.10.51.242")
    found = underlay.search_path_mtu(
        run, VX, "node1", "node2", target, "node", 1500, locate, target
    )
    assert found.short
    assert found.largest == 1400
    assert calls[1] == underlay.hops_argv(1401, target)
    assert str(found) == (
        "node1 -> node2 (node): path MTU 1400, the lab implies 1500: don't-fragment packets of "
        "1401-1500 bytes are lost without a 'fragmentation needed' (a black hole); a 1401-byte "
        "underlay packet: it reaches hop 1 10.10.50.254 (tor eth1) and is lost after it: the "
        "narrow link is tor eth2 (toward rack2), between tor and node2\n    reproduce: ssh "
        "node1 -- sh -c ..."
    )


def test_inside_a_tunnel_the_hop_is_probed_with_the_size_the_underlay_carries() -> None:
    calls: list[tuple[str, ...]] = []

    def run(argv: tuple[str, ...], timeout: float) -> ExecResult:
        return result("fail 1450\nok 576\nok 1350\nfail 1351\nlargest 1350\n")

    def locate(argv: tuple[str, ...], timeout: float) -> ExecResult:
        calls.append(argv)
        return result(HOPS)

    target = IPv4Address("10.10.51.242")
    found = underlay.search_path_mtu(
        run, VX, "pod-a", "pod-b", IPv4Address("10.244.1.2"), "pod", 1450, locate, target, 50
    )
    assert (found.largest, calls) == (1350, [underlay.hops_argv(1401, target)])
    assert "a 1401-byte underlay packet: it reaches hop 1" in found.where


def test_a_full_path_is_one_probe_and_says_so() -> None:
    found = underlay.search_path_mtu(
        lambda argv, t: result("ok 1450\nlargest 1450\n"),
        VX,
        "pod-a",
        "pod-b",
        IPv4Address("10.244.1.2"),
        "pod",
        1450,
    )
    assert not found.short
    assert str(found) == "pod-a -> pod-b (pod): path MTU 1450, as the lab implies"
    broken = underlay.search_path_mtu(
        lambda argv, t: result("", 124), VX, "a", "b", IPv4Address("10.0.0.1"), "node", 1500
    )
    assert broken.short
    assert "did not finish" in str(broken)


def matrix(times: dict[tuple[str, str], float | None]) -> rm.Matrix:
    eps = [rm.Endpoint(n, n.split("-")[0], "10.0.0.1") for n in ("node1-a", "node1-b", "node2-a")]
    m = rm.pod_matrix(eps)
    for cell in m.expected:
        t = times.get(cell, 0.002)
        m.observed[cell] = rm.Observation(t is not None, "x", "repro", connect_s=t)
    return m


def test_a_slow_link_must_slow_exactly_the_cells_that_cross_it() -> None:
    cross = {c: "node2-a" in c and "node1" in " ".join(c) for c in matrix({}).expected}
    slow = {c: 0.25 for c, crosses in cross.items() if crosses}
    assert underlay.latency_problems(matrix(slow), cross, 0.1, "tor eth2") == []
    wrong = {**slow, ("node1-a", "node1-b"): 0.3, ("node2-a", "node1-a"): None}
    wrong[("node1-b", "node2-a")] = 0.001
    assert underlay.latency_problems(matrix(wrong), cross, 0.1, "tor eth2") == [
        "node2-a -> node1-a: not reached while tor eth2 was slow (a slow link must not cut)",
        "node1-b -> node2-a: crosses tor eth2 but connected in under 100 ms",
        "node1-a -> node1-b: does not cross tor eth2 but took 100 ms or more to connect",
    ]


# --- the router's faults -----------------------------------------------------------------------


def test_the_narrow_hop_lowers_the_mtu_filters_icmp_and_drops_what_it_cannot_carry() -> None:
    fault = faults.narrow_hop(VX, "node2")
    assert fault.name == "narrow hop (MTU 1400, no ICMP) at tor eth2 (toward rack2)"
    tag = ("-m", "comment", "--comment", "netlab-fault")
    assert fault.inject_commands == (
        cmd("ip", "link", "set", "eth2", "mtu", "1400"),
        cmd("iptables", "-t", "filter", "-I", "OUTPUT", "-p", "icmp", "--icmp-type",
            "fragmentation-needed", "-j", "DROP", *tag),
        cmd("iptables", "-t", "filter", "-I", "FORWARD", "-o", "eth2", "-m", "length",
            "--length", "1401:65535", "-j", "DROP", *tag),
        cmd("iptables", "-t", "raw", "-I", "PREROUTING", "-i", "eth2", "-m", "length",
            "--length", "1401:65535", "-j", "DROP", *tag),
    )  # fmt: skip
    undo = [c.argv for c in fault.heal_commands[:3]]
    assert undo == [(*c.argv[:3], "-D", *c.argv[4:]) for c in fault.inject_commands[1:]]
    assert fault.heal_commands[-1] == cmd("ip", "link", "set", "eth2", "mtu", "1500")
    assert fault.expected == rm.Faults()  # small packets cross: the matrix cannot see it


def test_the_vxlan_port_dropped_cuts_exactly_the_pairs_across_the_hop() -> None:
    fault = faults.vxlan_port_dropped(VX, "node2")
    assert fault.expected == rm.Faults(cut=frozenset({frozenset({"node1", "node2"})}))
    (drop,) = fault.inject_commands
    assert drop.argv[:8] == ("iptables", "-I", "FORWARD", "-o", "eth2", "-p", "udp", "--dport")
    assert drop.argv[8] == "8472"
    assert fault.heal_commands[0].argv[1] == "-D"


def test_netem_delays_and_drops_on_the_routers_nic_toward_the_victim() -> None:
    fault = faults.link_netem(BGP, "node2")
    assert fault.inject_commands == (
        cmd("tc", "qdisc", "replace", "dev", "eth2", "root", "netem", "delay", "300ms",
            "loss", "10%"),
    )  # fmt: skip
    assert fault.heal_commands == (cmd("tc", "qdisc", "del", "dev", "eth2", "root"),)
    assert faults.crosses_hop(BGP, "node2", "node1", "node2")
    assert not faults.crosses_hop(BGP, "node2", "node2", "node2")


def test_the_underlay_faults_apply_to_routed_labs_only() -> None:
    assert faults.faults_for(VX) == [
        "containerd-restarted", "fdb-entry-lost", "node-hard-rebooted", "node-suspended",
        "pod-network-restarted", "private-link-down", "vxlan-port-dropped",
    ]  # fmt: skip
    assert "vxlan-port-dropped" not in faults.faults_for(BGP)  # nothing of it crosses there
    assert faults.faults_for(BGP, "path") == ["hop-mtu-blackhole"]
    assert faults.faults_for(BGP, "latency") == ["link-netem"]
    for flat in (FLAT, FLAT_VX):
        assert faults.faults_for(flat, "path") == faults.faults_for(flat, "latency") == []
        assert "vxlan-port-dropped" not in faults.faults_for(flat)
    with pytest.raises(ValueError, match="has no routed underlay"):
        faults.narrow_hop(FLAT, "node2")
