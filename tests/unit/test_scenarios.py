"""The network-model scenarios against a strict fake of the driver protocol: what they ask,
how they judge what they get. The same scenarios run on VMs with every real driver."""

from __future__ import annotations

import threading
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from e2e import scenarios
from e2e.drivers.base import Container, ExecResult, Pod
from lab.model.labfile import load_lab
from lab.net import reachability as rm
from tests.fakes import FakeDriver, Step, script

ROOT = Path(__file__).resolve().parents[2]
# a flannel pod's namespace (eth0 10.244.1.4/24) as `cat` shows it: tests/data/k8s/SOURCES.md
PROC_NET = (ROOT / "tests" / "data" / "k8s" / "nginx-1.19-proc-net.txt").read_text()
HOST_NET = """Inter-|   Receive |  Transmit
 face |bytes    packets|bytes    packets
    lo:       0       0        0       0
  eth0:    9000      90     9000      90
  eth1:    9000      90     9000      90
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t00280A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
Main:
  +-- 10.10.40.0/24 2 0 2
     |-- 10.10.40.241
        /32 host LOCAL
  +-- 127.0.0.0/8 2 0 2
     |-- 127.0.0.1
        /32 host LOCAL
"""
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")
ECHO = (Container("echo", ("echo-server",)),)
PODS = [
    Pod("a", "node1", IPv4Address("10.244.0.2"), ECHO, None),
    Pod("b", "node2", IPv4Address("10.244.1.2"), ECHO, None),
]


def seen(source: str | None, *, ok: bool = True, unknown: bool = False) -> rm.Observation:
    return rm.Observation(
        ok, source if ok else None, "reproduce it", "" if ok else "timed out", unknown=unknown
    )


def ok(stdout: str = "", code: int = 0) -> ExecResult:
    return ExecResult(code, stdout, "", "reproduce it")


def test_the_pod_matrix_is_observed_in_one_batched_call_and_judged_per_cell() -> None:
    driver = FakeDriver(CI)
    driver.observations = {"a->b": seen("10.244.0.2"), "b->a": seen("10.10.10.242")}
    matrix = scenarios.pod_matrix(driver, PODS)
    assert driver.asked == [["a->b", "b->a"]]
    assert matrix.symbol("a", "b") == "."
    assert matrix.symbol("b", "a") == "N"
    assert matrix.title == "pod -> pod [fake]"


def test_a_cell_whose_probe_did_not_run_is_neither_reachable_nor_unreachable() -> None:
    driver = FakeDriver(CI)
    driver.observations = {
        "a->b": seen(None, ok=False, unknown=True),
        "b->a": seen(None, ok=False, unknown=True),
    }
    frozen = rm.Faults(frozen=frozenset({"node2"}))
    matrix = scenarios.pod_matrix(driver, PODS, frozen)
    # b's node is suspended: its probe cannot run, which is what that fault predicts
    assert matrix.symbol("b", "a") == "x"
    # a's probe should have run (and failed on the network): unknown is a mismatch
    assert matrix.symbol("a", "b") == "?"
    assert [(m.source, m.target) for m in matrix.mismatches()] == [("a", "b")]


def test_an_inert_fault_shows_as_cells_that_reach() -> None:
    driver = FakeDriver(CI)
    driver.observations = {"a->b": seen("10.244.0.2"), "b->a": seen("10.244.1.2")}
    matrix = scenarios.pod_matrix(driver, PODS, rm.Faults(frozen=frozenset({"node2"})))
    assert (matrix.symbol("a", "b"), matrix.symbol("b", "a")) == ("R", "R")


def route_get(src: str, dev: str = "eth1") -> str:
    """`ip -4 route get` as iproute2 prints it (a pod IP routed to another node)."""
    return f"10.244.1.2 via 10.10.10.242 dev {dev} src {src} uid 0 \n    cache \n"


def addrs(*pairs: tuple[str, str]) -> str:
    """`ip -o -4 addr show` as iproute2 prints it."""
    return "".join(
        f"{n}: {i}    inet {a}/24 brd 10.0.0.255 scope global {i}\\       valid_lft forever\n"
        for n, (i, a) in enumerate(pairs, start=2)
    )


def node_steps(node: str, src_for: dict[str, str], owned: str) -> list[Step]:
    steps = [
        Step(node, ("ip", "-4", "route", "get", ip), route_get(src)) for ip, src in src_for.items()
    ]
    return [*steps, Step(node, ("ip", "-o", "-4", "addr", "show"), owned)]


def test_node_to_pod_expects_exactly_the_route_source_the_node_picks() -> None:
    node1 = node_steps(
        "node1",
        {"10.244.0.2": "10.244.0.1", "10.244.1.2": "10.10.10.241"},
        addrs(("eth0", "192.168.121.10"), ("eth1", "10.10.10.241"), ("cni0", "10.244.0.1")),
    )
    node2 = node_steps(
        "node2",
        {"10.244.0.2": "192.168.121.11", "10.244.1.2": "10.244.1.1"},  # a route via mgmt
        addrs(("eth0", "192.168.121.11"), ("eth1", "10.10.10.242"), ("cni0", "10.244.1.1")),
    )
    driver = FakeDriver(CI, script(*node1, *node2))
    driver.observations = {
        "node1->a": seen("10.244.0.1"),
        "node1->b": seen("192.168.121.10"),  # SNAT to its own management address
        "node2->a": seen("192.168.121.11"),
        "node2->b": seen("10.244.1.1"),
    }
    matrix = scenarios.node_matrix(driver, CI, PODS)
    assert [[matrix.symbol(n, p) for p in ("a", "b")] for n in ("node1", "node2")] == [
        [".", "N"],
        ["N", "."],
    ]
    text = matrix.render()
    assert "route source 192.168.121.11 is not an address this node may use" in text


def test_pod_identity_compares_the_pods_view_the_runtime_and_the_peer() -> None:
    driver = FakeDriver(CI)
    oneline = ("ip", "-o", "-4", "addr", "show")
    driver.execs[("a", "echo", oneline)] = ok(
        "1: lo    inet 127.0.0.1/8 scope host lo\n"
        "3: eth0    inet 10.244.0.2/24 brd 10.244.0.255 scope global eth0\n"
        "3: eth0    inet 10.244.0.99/24 scope global secondary eth0\n"
    )
    driver.observations = {"identity": seen("10.10.10.241")}
    problems = scenarios.pod_identity_problems(driver, PODS[0], PODS[1])
    assert len(problems) == 2
    assert problems[0].startswith("a has 2 IPv4 addresses on its interfaces")
    assert problems[1].startswith("peer b saw a as 10.10.10.241, not 10.244.0.2")


def test_containers_in_different_namespaces_and_a_dead_localhost_are_named() -> None:
    driver = FakeDriver(CI)
    guide = driver.guide_pod()
    pod = Pod("g", "node1", IPv4Address("10.244.0.7"), guide.containers, None)
    ns = ("readlink", "/proc/self/ns/net")
    proc_net = ("cat", "/proc/net/dev", "/proc/net/route", "/proc/net/fib_trie")
    # the recorded pod, moved to node1's subnet: 10.244.0.7 on the connected route 10.244.0.0/24
    pod_view = PROC_NET.replace("10.244.1.4", "10.244.0.7").replace("0001F40A", "0000F40A")
    driver.execs[("g", "busybox", ns)] = ok("net:[4026532200]\n")
    driver.execs[("g", "nginx", ns)] = ok("net:[4026531992]\n")
    driver.execs[("g", "busybox", proc_net)] = ok(pod_view)
    driver.execs[("g", "nginx", proc_net)] = ok(HOST_NET)  # the node's own namespace
    driver.execs[("g", "busybox", scenarios.local_fetch_argv(80))] = ok("", 1)
    problems = scenarios.shared_netns_problems(driver, pod, guide)
    assert [p.split(":")[0] for p in problems] == [
        "containers are in different network namespaces",
        "containers see different addresses",
        "containers see different interfaces",
        "busybox did not reach nginx on localhost",
    ]
    assert "'nginx': (IPv4Address('10.10.40.241'),)" in problems[1]
    assert "'busybox': ('lo', 'eth0'), 'nginx': ('lo', 'eth0', 'eth1')" in problems[2]


def test_a_container_whose_namespace_cannot_be_read_is_named_with_how_to_reproduce() -> None:
    driver = FakeDriver(CI)
    guide = driver.guide_pod()
    pod = Pod("g", "node1", IPv4Address("10.244.1.4"), guide.containers, None)
    ns = ("readlink", "/proc/self/ns/net")
    proc_net = ("cat", "/proc/net/dev", "/proc/net/route", "/proc/net/fib_trie")
    driver.execs[("g", "busybox", ns)] = ok("net:[4026532200]\n")
    driver.execs[("g", "nginx", ns)] = ok("net:[4026532200]\n")
    driver.execs[("g", "busybox", proc_net)] = ok(PROC_NET)
    driver.execs[("g", "nginx", proc_net)] = ok("cat: /proc/net/fib_trie: No such file\n", 1)
    driver.execs[("g", "busybox", scenarios.local_fetch_argv(80))] = ok("Welcome to nginx!")
    problems = scenarios.shared_netns_problems(driver, pod, guide)
    assert problems[0] == (
        "cannot read nginx's network namespace (exit 1: cat: /proc/net/fib_trie: No such file)"
        "\n    reproduce: reproduce it"
    )
    driver.execs[("g", "nginx", proc_net)] = ok(PROC_NET)
    assert scenarios.shared_netns_problems(driver, pod, guide) == []


PING = ("ping", "-n", "-M", "do", "-W", "3", "-i", "0.2")


@pytest.mark.parametrize(
    ("mtu", "fits", "too_big", "expect"),
    [
        (1500, ok("2 received"), ok("ping: local error: message too long, mtu=1500", 1), []),
        (
            1500,
            ok("2 received"),
            ok("1 packets transmitted, 0 received", 1),
            ["failed without evidence of a refusal"],
        ),
        (1500, ok("2 received"), ok("1 received"), ["went through: DF is not honoured"]),
        (
            1500,
            ok("Frag needed and DF set (mtu = 1450)", 1),
            ok("ping: local error: message too long, mtu=1500", 1),
            ["1472-byte DF ping (packet = MTU 1500)"],
        ),
        (
            1400,
            ok("2 received"),
            ok("ping: local error: message too long, mtu=1400", 1),
            ["eth0 MTU is 1400; the lab's pod network MTU is 1500"],
        ),
    ],
)
def test_the_mtu_check_needs_the_labs_mtu_a_crossing_and_refusal_evidence(
    mtu: int, fits: ExecResult, too_big: ExecResult, expect: list[str]
) -> None:
    driver = FakeDriver(CI)
    a, b = PODS
    driver.execs[("a", None, ("ip", "-o", "link", "show", "eth0"))] = ok(
        f"2: eth0@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu {mtu} qdisc noqueue state UP"
    )
    payload = mtu - 28
    driver.execs[("a", None, (*PING, "-c", "2", "-s", str(payload), "10.244.1.2"))] = fits
    driver.execs[("a", None, (*PING, "-c", "1", "-s", str(payload + 1), "10.244.1.2"))] = too_big
    problems = scenarios.mtu_problems(driver, CI, a, b)
    assert len(problems) == len(expect), problems
    for problem, fragment in zip(problems, expect, strict=True):
        assert fragment in problem


def test_side_by_side_runs_the_check_on_every_pod_and_names_each_ones_problems() -> None:
    seen: list[str] = []

    def check(pod: Pod[None]) -> list[str]:
        seen.append(pod.name)
        return [f"lease of {pod.ip} left", "veth left"] if pod.node == "node2" else []

    problems = scenarios.side_by_side(PODS, check)
    assert sorted(seen) == sorted(p.name for p in PODS)
    assert problems == [
        f"b ({PODS[1].ip}) on node2: lease of {PODS[1].ip} left",
        f"b ({PODS[1].ip}) on node2: veth left",
    ]
    assert scenarios.side_by_side(PODS, lambda pod: []) == []


def test_every_node_is_made_side_by_side_once_and_a_failed_node_raises_its_own_error() -> None:
    started: list[str] = []
    gate = threading.Barrier(2, timeout=5)  # both nodes in flight at once, or this times out

    def make(node: str) -> str:
        started.append(node)
        gate.wait()
        if node == "node2":
            raise RuntimeError("node2: ADD failed")
        return f"life of {node}"

    lives = scenarios.EveryNodeOnFirstUse(make, ["node1", "node2"])
    assert lives["node1"] == "life of node1"
    for _ in range(2):
        with pytest.raises(RuntimeError, match="node2: ADD failed"):
            lives["node2"]
    with pytest.raises(KeyError):
        lives["node3"]
    assert sorted(started) == ["node1", "node2"], "each node made once"


def test_a_udp_matrix_asks_every_cell_over_udp_and_judges_it_alike() -> None:
    driver = FakeDriver(CI)
    driver.observations = {
        "a->b/udp": rm.Observation(True, "10.244.0.2", "reproduce it", answered_by="b"),
        "b->a/udp": rm.Observation(True, "10.10.40.242", "reproduce it", answered_by="a"),
    }
    matrix = scenarios.pod_matrix(driver, PODS, proto="udp")
    assert driver.asked == [["a->b/udp", "b->a/udp"]]
    assert {(c.proto, c.host, c.dport) for c in driver.probed} == {
        ("udp", "10.244.1.2", 8080),
        ("udp", "10.244.0.2", 8080),
    }
    assert matrix.title == "pod -> pod (UDP) [fake]"
    assert matrix.symbol("a", "b") == "."
    assert matrix.symbol("b", "a") == "N"
