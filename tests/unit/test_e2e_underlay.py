"""The underlay's scenarios (e2e/underlay.py) and faults (e2e/faults.py): the path MTU search
and the hop probes as one POSIX sh each, their output parsed; a short path named with the
largest size that crosses and the hop after which one byte more is lost; a slow link judged
by the cells it holds up; the router's fault commands, undone exactly; the registry offers the
underlay faults to routed labs only."""

from __future__ import annotations

import subprocess
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from e2e import faults, underlay
from e2e.drivers.base import ExecResult, Pod
from lab.common.commands import cmd
from lab.model.labfile import load_lab
from lab.net import reachability as rm
from tests.fakes import FakeDriver, Step, script

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
        '#!/bin/sh\nsize=0\nwhile [ $# -gt 1 ]; do [ "$1" = -s ] && size=$2; shift; done\n'
        f"[ $((size + 28)) -le {largest} ]\n"
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


# --- the searches wired to a node and a pod, and BGP read from a node ---------------------------


class PathDriver(FakeDriver):
    """Answers the node's and the pod's commands from `answers` (argv -> stdout), in order."""

    def __init__(self, lab: Any, answers: dict[tuple[str, ...], str]) -> None:
        super().__init__(lab)
        self.answers = answers
        self.ran: list[tuple[str, tuple[str, ...], float]] = []

    def exec_on_node(self, node: str, argv: tuple[str, ...], timeout: float = 30) -> Any:
        self.ran.append((node, argv, timeout))
        return result(self.answers[argv])

    def netns_exec(self, pod: Any, argv: tuple[str, ...], timeout: float = 30) -> Any:
        self.ran.append((pod.name, argv, timeout))
        return result(self.answers[argv])


def test_a_node_pair_is_searched_from_the_first_to_the_seconds_private_ip_at_the_nics_mtu() -> None:
    target = VX.node("node2").ip
    search = underlay.search_argv(576, 1500, target)
    hops = underlay.hops_argv(1401, target)
    driver = PathDriver(VX, {search: "fail 1500\nok 576\nok 1400\nfail 1401\nlargest 1400\n",
                             hops: HOPS})  # fmt: skip
    found = underlay.node_path_mtu(driver, VX, "node1", "node2")
    assert driver.ran == [("node1", search, 120), ("node1", hops, 60)]
    assert (found.source, found.target, found.level, found.expected, found.largest) == (
        "node1", "node2", "node", 1500, 1400
    )  # fmt: skip


def test_a_pod_pair_is_searched_in_the_pod_and_located_from_its_node_past_a_tunnel() -> None:
    a = Pod("pod-a", "node1", IPv4Address("10.244.0.2"), (), None)
    b = Pod("pod-b", "node2", IPv4Address("10.244.1.2"), (), None)
    search = underlay.search_argv(576, 1450, b.ip)
    hops = underlay.hops_argv(1351 + 50, VX.node("node2").ip)  # one byte more, and VXLAN's 50
    driver = PathDriver(VX, {search: "fail 1450\nok 576\nok 1350\nfail 1351\nlargest 1350\n",
                             hops: HOPS})  # fmt: skip
    found = underlay.pod_path_mtu(driver, VX, a, b)
    assert driver.ran == [("pod-a", search, 120), ("node1", hops, 60)]
    assert (found.source, found.target, found.level, found.expected, found.largest) == (
        "pod-a", "pod-b", "pod", 1450, 1350
    )  # fmt: skip


BIRDC = ("birdc", "show", "protocols")
BIRD_ROUTES = ("ip", "-j", "-4", "route", "show", "proto", "bird")


def test_a_silent_bird_and_its_missing_routes_are_both_named() -> None:
    steps = script(Step("node1", BIRDC, exit_code=1), Step("node1", BIRD_ROUTES, stdout="[]"))
    silent, missing = underlay.bgp_problems(FakeDriver(BGP, steps), BGP, "node1")
    steps.done()
    assert "bird does not answer `birdc show protocols`" in silent
    assert missing.startswith("node1: no route to node2's pod subnet 10.244.1.0/24 learned by BGP")


def test_routes_that_could_not_be_read_count_as_none_learned() -> None:
    learned = '[{"dst": "10.244.1.0/24", "gateway": "10.10.52.254", "dev": "eth1"}]'
    steps = script(
        Step("node1", BIRDC, exit_code=1), Step("node1", BIRD_ROUTES, stdout=learned, exit_code=1)
    )
    problems = underlay.bgp_problems(FakeDriver(BGP, steps), BGP, "node1")
    assert problems[-1].startswith("node1: no route to node2's pod subnet 10.244.1.0/24")


# --- the hop probes run, parsed exactly --------------------------------------------------------


def fake_hop_ping(tmp_path: Path, router: str, largest: int) -> Path:
    """A `ping` on PATH for a path node -> `router` -> target: TTL 1 expires at the router; a
    DF packet of at most `largest` bytes (payload + 28) is answered by the target, larger ones
    are lost after the router."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ping = bin_dir / "ping"
    ping.write_text(
        "#!/bin/sh\nsize=0; ttl=64\n"
        'while [ $# -gt 1 ]; do case "$1" in -s) size=$2;; -t) ttl=$2;; esac; shift; done\n'
        f'if [ "$ttl" -le 1 ]; then echo "From {router} icmp_seq=1 Time to live exceeded"\n'
        f"elif [ $((size + 28)) -le {largest} ]; then "
        'echo "$((size + 8)) bytes from $1: icmp_seq=1 ttl=63 time=0.4 ms"; fi\n'
    )
    ping.chmod(0o755)
    return bin_dir


def test_the_hop_probe_is_one_sh_command_with_the_size_the_target_and_the_hops() -> None:
    target = IPv4Address("10.10.51.242")
    assert underlay.hops_argv(1401, target) == (
        "sh", "-c", underlay.HOPS, "netlab-hops", "1401", "10.10.51.242", "4"
    )  # fmt: skip
    assert underlay.hops_argv(600, target, 2)[4:] == ("600", "10.10.51.242", "2")


def test_the_hop_script_probes_each_ttl_and_keeps_who_answered(tmp_path: Path) -> None:
    env = {"PATH": f"{fake_hop_ping(tmp_path, '10.10.50.254', 1400)}:/usr/bin:/bin"}
    target = IPv4Address("10.10.51.242")
    lost = subprocess.run(
        underlay.hops_argv(1401, target, 3), capture_output=True, text=True, env=env, check=True
    )
    assert lost.stdout == (
        "ttl 1\nFrom 10.10.50.254 icmp_seq=1 Time to live exceeded\nttl 2\nttl 3\n"
    )
    assert underlay.parse_hops(lost.stdout) == (
        underlay.Hop(1, "10.10.50.254", "time to live exceeded"),
        underlay.Hop(2, None, ""),
        underlay.Hop(3, None, ""),
    )
    crossed = subprocess.run(
        underlay.hops_argv(1400, target, 2), capture_output=True, text=True, env=env, check=True
    )
    assert underlay.parse_hops(crossed.stdout) == (
        underlay.Hop(1, "10.10.50.254", "time to live exceeded"),
        underlay.Hop(2, "10.10.51.242", "reply"),
    )


def test_hop_output_before_the_first_ttl_line_and_odd_lines_are_ignored() -> None:
    text = (
        "From 10.10.50.254 icmp_seq=1 Time to live exceeded\n"
        "1401 bytes from 10.10.51.242: icmp_seq=1 ttl=63\n"
        "ttl x\n"
        "  ttl 1  \n"
        "ttl 2\n"
        "From 10.10.50.254 icmp_seq=1 Frag needed and DF set (mtu = 1400)\n"
        "ttl 3\n"
        "1401 bytes from 10.10.51.242: icmp_seq=1 ttl=63 time=2.1 ms\n"
    )
    assert underlay.parse_hops(text) == (
        underlay.Hop(1, None, ""),
        underlay.Hop(2, "10.10.50.254", "frag needed and df set (mtu = 1400)"),
        underlay.Hop(3, "10.10.51.242", "reply"),
    )


def test_a_hop_outside_the_lab_or_one_that_said_frag_needed_is_named_so() -> None:
    outside = (underlay.Hop(1, "10.10.50.254", "time to live exceeded"),
               underlay.Hop(2, "192.0.2.7", "time to live exceeded"))  # fmt: skip
    assert underlay.lost_after(VX, outside) == (
        "it reaches hop 2 192.0.2.7 (outside the lab) and is lost after it: the narrow link is "
        "the next one out of outside the lab"
    )
    frag = (underlay.Hop(1, "10.10.50.241", "frag needed and df set (mtu = 1400)"),)
    assert underlay.lost_after(VX, frag) == (
        "it reaches hop 1 10.10.50.241 (node1) (frag needed and df set (mtu = 1400)) and is "
        "lost after it: the narrow link is the next one out of node1"
    )
    crossed = (underlay.Hop(1, "10.10.51.242", "reply"),)
    assert underlay.lost_after(VX, crossed) == (
        "it crossed when probed hop by hop (the loss is intermittent)"
    )


def test_past_the_router_a_target_that_is_no_node_is_named_by_its_address() -> None:
    hops = (underlay.Hop(1, "10.10.50.254", "time to live exceeded"),)
    assert underlay.lost_after(VX, hops, IPv4Address("10.10.51.99")) == (
        "it reaches hop 1 10.10.50.254 (tor eth1) and is lost after it: the narrow link is "
        "tor eth2 (toward rack2), between tor and 10.10.51.99"
    )


# --- the search's outcomes, exactly ------------------------------------------------------------


class Locate:
    """A `locate` that records what it was asked and answers HOPS."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], float]] = []

    def __call__(self, argv: tuple[str, ...], timeout: float) -> ExecResult:
        self.calls.append((argv, timeout))
        return result(HOPS)


TARGET = IPv4Address("10.10.51.242")


def search(stdout: str, code: int = 0, locate: Locate | None = None) -> underlay.PathMtu:
    return underlay.search_path_mtu(
        lambda argv, t: result(stdout, code), VX, "node1", "node2", TARGET, "node", 1500,
        locate, TARGET, 50,
    )  # fmt: skip


def test_a_path_at_the_expected_mtu_is_not_located() -> None:
    locate = Locate()
    found = search("ok 1500\nlargest 1500\n", locate=locate)
    assert found == underlay.PathMtu(
        "node1", "node2", "node", 1500, 1500, True, "", "ssh node1 -- sh -c ..."
    )
    assert not found.short
    assert locate.calls == []


def test_a_search_that_did_not_finish_is_not_located_even_if_its_output_looks_done() -> None:
    locate = Locate()
    found = search("ok 1500\nlargest 1500\n", code=124, locate=locate)
    assert found == underlay.PathMtu(
        "node1", "node2", "node", 1500, None, False, "", "ssh node1 -- sh -c ..."
    )
    assert found.short
    assert locate.calls == []
    assert str(found) == (
        "node1 -> node2 (node): the path MTU search did not finish\n"
        "    reproduce: ssh node1 -- sh -c ..."
    )


def test_when_nothing_crossed_the_smallest_size_plus_the_tunnel_is_located() -> None:
    locate = Locate()
    found = search("fail 1500\nfail 576\nlargest none\n", locate=locate)
    assert (found.largest, found.finished, found.short) == (None, True, True)
    assert locate.calls == [(underlay.hops_argv(576 + 50, TARGET), 60)]
    assert str(found) == (
        "node1 -> node2 (node): nothing crossed, the lab implies 1500: don't-fragment packets "
        "of 576-1500 bytes are lost without a 'fragmentation needed' (a black hole); a "
        "626-byte underlay packet: it reaches hop 1 10.10.50.254 (tor eth1) and is lost after "
        "it: the narrow link is tor eth2 (toward rack2), between tor and node2\n"
        "    reproduce: ssh node1 -- sh -c ..."
    )


def test_a_short_path_without_a_locator_says_no_hop() -> None:
    found = underlay.search_path_mtu(
        lambda argv, t: result("fail 1500\nok 576\nok 1400\nfail 1401\nlargest 1400\n"),
        VX, "node1", "node2", TARGET, "node", 1500, None, TARGET,
    )  # fmt: skip
    assert found.where == ""
    assert str(found) == (
        "node1 -> node2 (node): path MTU 1400, the lab implies 1500: don't-fragment packets of "
        "1401-1500 bytes are lost without a 'fragmentation needed' (a black hole)\n"
        "    reproduce: ssh node1 -- sh -c ..."
    )


def test_a_pod_pair_under_flannel_expects_its_vxlan_mtu() -> None:
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    a = Pod("pod-a", "k8s-node1", IPv4Address("10.244.1.2"), (), None)
    b = Pod("pod-b", "k8s-node2", IPv4Address("10.244.2.2"), (), None)
    search = underlay.search_argv(576, 1450, b.ip)
    driver = PathDriver(guide, {search: "ok 1450\nlargest 1450\n"})
    found = underlay.pod_path_mtu(driver, guide, a, b)
    assert driver.ran == [("pod-a", search, 120)]
    assert (found.expected, found.largest, found.short) == (1450, 1450, False)


# --- latency, classified at the threshold ------------------------------------------------------


def test_a_cell_is_slow_from_the_threshold_on_and_failed_when_unreached_or_untimed() -> None:
    m = matrix({("node1-a", "node1-b"): 0.1, ("node1-a", "node2-a"): 0.0999})
    m.observed[("node2-a", "node1-a")] = rm.Observation(False, "x", "repro", connect_s=0.3)
    m.observed[("node2-a", "node1-b")] = rm.Observation(True, "x", "repro", connect_s=None)
    assert underlay.classify(m, 0.1) == underlay.Slowness(
        slow=(("node1-a", "node1-b"),),
        fast=(("node1-a", "node2-a"), ("node1-b", "node1-a"), ("node1-b", "node2-a")),
        failed=(("node2-a", "node1-a"), ("node2-a", "node1-b")),
        threshold_s=0.1,
    )


def test_the_threshold_is_named_in_milliseconds() -> None:
    cross = {c: False for c in matrix({}).expected}
    slow = matrix({("node1-a", "node1-b"): 1.5})
    assert underlay.latency_problems(slow, cross, 1.0, "tor eth2") == [
        "node1-a -> node1-b: does not cross tor eth2 but took 1000 ms or more to connect"
    ]


# --- BGP read from a healthy node ---------------------------------------------------------------

NODE1_BIRD = """BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     09:10:15.315
netlab_blocks Static     master4    up     09:10:15.315
netlab_kernel Kernel     master4    up     09:10:15.315
Node_10_10_52_254 BGP        ---        up     09:10:16.256  Established
"""
NODE1_ROUTES = '[{"dst": "10.244.1.0/24", "gateway": "10.10.52.254", "dev": "eth1"}]'


def test_a_node_whose_session_is_established_and_routes_learned_has_no_bgp_problem() -> None:
    steps = script(
        Step("node1", BIRDC, stdout=NODE1_BIRD), Step("node1", BIRD_ROUTES, stdout=NODE1_ROUTES)
    )
    assert underlay.bgp_problems(FakeDriver(BGP, steps), BGP, "node1") == []
    steps.done()


def test_a_session_that_is_down_is_named_from_birdcs_answer() -> None:
    down = NODE1_BIRD.replace("up     09:10:16.256  Established", "down   09:10:25.989")
    steps = script(
        Step("node1", BIRDC, stdout=down), Step("node1", BIRD_ROUTES, stdout=NODE1_ROUTES)
    )
    (problem,) = underlay.bgp_problems(FakeDriver(BGP, steps), BGP, "node1")
    assert problem.startswith(
        "node1: BGP session Node_10_10_52_254 to tor 10.10.52.254 (AS 64512) is down, not "
        "Established: "
    )


def test_the_search_is_one_sh_command_with_both_ends_and_the_target() -> None:
    assert underlay.search_argv(576, 1450, IPv4Address("10.244.1.2")) == (
        "sh", "-c", underlay.SEARCH, "netlab-pmtu", "576", "1450", "10.244.1.2"
    )  # fmt: skip


def test_the_search_output_is_read_line_by_line_ignoring_what_is_no_probe() -> None:
    text = (
        "  fail 1500  \n"
        "ok\n"
        "ok many\n"
        "warning: ping: sendmsg\n"
        "fail 1400 extra\n"
        "ok 576\n"
        "largest 1038\n"
    )
    assert underlay.parse_search(text) == underlay.Search(1038, ((1500, False), (576, True)))
    assert underlay.parse_search("largest\n") == underlay.Search(None, ())
    assert underlay.parse_search("") is None
