"""The network-model scenarios against a strict fake of the driver protocol: what they ask,
how they judge what they get. The same scenarios run on VMs with every real driver."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from e2e import scenarios
from e2e.drivers.base import Container, ExecResult, Pod, PodRequest
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


class IndexedFleet(FakeDriver):
    """A driver whose fleet pod of index i runs one container named after i."""

    def fleet_containers(self, index: int = 0) -> tuple[Any, ...]:
        return (Container(f"echo{index}", ("echo-server",)),)


def test_each_fleet_slot_is_a_pod_named_by_run_driver_node_and_index() -> None:
    driver = IndexedFleet(CI)
    assert scenarios.fleet_requests(driver, "r1a2", [("node1", 0), ("node2", 1)]) == [
        PodRequest("nl-r1a2-fake-node1-p0", "node1", (Container("echo0", ("echo-server",)),)),
        PodRequest("nl-r1a2-fake-node2-p1", "node2", (Container("echo1", ("echo-server",)),)),
    ]
    assert scenarios.fleet_requests(driver, "r1a2", []) == []


def test_a_lab_of_one_node_has_no_fleet_and_says_why() -> None:
    one = dataclasses.replace(CI, nodes=CI.nodes[:1])
    why = (
        "lab ci-debian12 has 1 node(s) x 4 pod(s): the pod matrix needs at least two nodes, so "
        "that a cell crosses the pod network"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(why)}$"):
        scenarios.fleet_slots(one, 4)


def test_a_matrix_is_observed_over_tcp_unless_told() -> None:
    driver = FakeDriver(CI)
    driver.observations = {"a->b": seen("10.244.0.2"), "b->a": seen("10.244.1.2")}
    matrix = rm.pod_matrix([p.endpoint for p in PODS], rm.NO_FAULTS, title="t")
    by_name = {p.name: p for p in PODS}
    assert scenarios.observe(driver, matrix, dict(by_name), by_name) is matrix
    assert driver.asked == [["a->b", "b->a"]]
    assert [(c.source, c.target, c.proto) for c in driver.probed] == [
        (PODS[0], PODS[1], "tcp"),
        (PODS[1], PODS[0], "tcp"),
    ]
    assert set(matrix.observed) == {("a", "b"), ("b", "a")}


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


def test_a_nodes_routes_are_read_in_one_round_trip_failed_reads_counting_as_none() -> None:
    owned = addrs(
        ("eth0", "192.168.121.10"),
        ("eth1", "10.10.40.241"),
        ("cni0", "10.244.0.1"),
        ("flannel.1", "10.244.0.0"),
        ("cni0", "10.244.0.9"),
    )
    steps = [
        Step("node1", ("ip", "-4", "route", "get", "10.244.0.2"), route_get("10.244.0.1")),
        Step("node1", ("ip", "-4", "route", "get", "10.244.1.2"), route_get("10.10.40.241"), 2),
        Step("node1", ("ip", "-o", "-4", "addr", "show"), owned),
    ]
    ips = [IPv4Address("10.244.0.2"), IPv4Address("10.244.1.2")]
    routes = scenarios.node_routes(FakeDriver(CI, script(*steps)), CI, "node1", ips)
    assert routes == scenarios.NodeRoutes(
        "node1",
        {"10.244.0.2": "10.244.0.1", "10.244.1.2": None},
        ("10.10.40.241", "10.244.0.1", "10.244.0.9", "10.244.0.0"),
        "python -m lab ssh ci-debian12 node1 -- 'ip -4 route get 10.244.0.2'",
    )
    unread = Step("node1", ("ip", "-o", "-4", "addr", "show"), owned, exit_code=1)
    assert scenarios.node_routes(FakeDriver(CI, script(unread)), CI, "node1", []) == (
        scenarios.NodeRoutes(
            "node1", {}, ("10.10.40.241",), "python -m lab ssh ci-debian12 node1 -- 'ip -4 route'"
        )
    )


def test_node_to_pod_over_udp_probes_each_cell_over_udp() -> None:
    routes = {"10.244.0.2": "10.244.0.1", "10.244.1.2": "10.10.10.241"}
    node1 = node_steps("node1", routes, addrs(("eth1", "10.10.10.241"), ("cni0", "10.244.0.1")))
    routes = {"10.244.0.2": "10.10.10.242", "10.244.1.2": "10.244.1.1"}
    node2 = node_steps("node2", routes, addrs(("eth1", "10.10.10.242"), ("cni0", "10.244.1.1")))
    driver = FakeDriver(CI, script(*node1, *node2))
    driver.observations = {
        "node1->a/udp": seen("10.244.0.1"),
        "node1->b/udp": seen("10.10.10.241"),
        "node2->a/udp": seen("10.10.10.242"),
        "node2->b/udp": seen("10.244.1.1"),
    }
    matrix = scenarios.node_matrix(driver, CI, PODS, proto="udp")
    assert driver.asked == [["node1->a/udp", "node1->b/udp", "node2->a/udp", "node2->b/udp"]]
    assert {c.proto for c in driver.probed} == {"udp"}
    assert matrix.title == "node -> pod (UDP) [fake]"


def test_a_pod_in_another_nodes_subnet_names_every_subnet_its_own_node_hands_out() -> None:
    two = {
        "node1": (IPv4Network("10.244.0.0/24"), IPv4Network("10.244.5.0/24")),
        "node2": (IPv4Network("10.244.1.0/24"),),
    }
    moved = Pod("nl-z", "node1", IPv4Address("10.244.1.9"), ECHO, None)
    assert scenarios.subnet_problems(CI, [moved], two)[-1] == (
        "nl-z on node1 has 10.244.1.9, which is in node2's subnet; node1 hands out "
        "10.244.0.0/24, 10.244.5.0/24"
    )


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


# --- pod identity: each problem exactly, and the probe asked of the peer ---

ONELINE = ("ip", "-o", "-4", "addr", "show")
A_ONLY = (
    "1: lo    inet 127.0.0.1/8 scope host lo\n2: eth0    inet 10.244.0.2/24 scope global eth0\n"
)


class AskingDriver(FakeDriver):
    """Records which pod each observed cell goes from and to."""

    def __init__(self) -> None:
        super().__init__(CI)
        self.pairs: list[tuple[str, str]] = []

    def observe(self, cells: Sequence[Any]) -> dict[str, Any]:
        self.pairs += [(c.source.name, c.target.name) for c in cells]
        return super().observe(cells)


def identity(own: ExecResult, peer_saw: rm.Observation) -> tuple[list[str], list[tuple[str, str]]]:
    driver = AskingDriver()
    driver.execs[("a", "echo", ONELINE)] = own
    driver.observations = {"identity": peer_saw}
    return scenarios.pod_identity_problems(driver, PODS[0], PODS[1]), driver.pairs


def test_a_pod_seen_alike_by_itself_the_runtime_and_its_peer_has_no_problem() -> None:
    assert identity(ok(A_ONLY), seen("10.244.0.2")) == ([], [("a", "b")])


def test_a_pod_whose_addresses_cannot_be_read_says_why() -> None:
    failed = ExecResult(1, "", "  ip: not found  ", "ip in a")
    assert identity(failed, seen("10.244.0.2"))[0] == [
        "cannot read a's addresses (exit 1: ip: not found)\n    reproduce: ip in a"
    ]


def test_a_pod_that_sees_itself_elsewhere_names_both_addresses() -> None:
    moved = A_ONLY.replace("10.244.0.2/24", "10.244.0.9/24")
    assert identity(ok(moved), seen("10.244.0.2"))[0] == [
        "a sees itself as 10.244.0.9 but the runtime reports 10.244.0.2\n"
        "    reproduce: reproduce it"
    ]


def test_a_peer_that_got_no_answer_says_so_with_the_first_200_characters_of_why() -> None:
    lost = rm.Observation(False, None, "probe a from b", " " + "t" * 250 + " ")
    assert identity(ok(A_ONLY), lost)[0] == [
        f"peer b saw a as (no answer), not 10.244.0.2 ({'t' * 200})\n    reproduce: probe a from b"
    ]


def test_a_peer_that_saw_another_source_names_it_without_a_why() -> None:
    assert identity(ok(A_ONLY), seen("10.10.40.241"))[0] == [
        "peer b saw a as 10.10.40.241, not 10.244.0.2\n    reproduce: reproduce it"
    ]


def mtu_check(mtu_line: ExecResult, fits: ExecResult, too_big: ExecResult) -> list[str]:
    driver = FakeDriver(CI)
    driver.execs[("a", None, ("ip", "-o", "link", "show", "eth0"))] = mtu_line
    driver.execs[("a", None, (*PING, "-c", "2", "-s", "1472", "10.244.1.2"))] = fits
    driver.execs[("a", None, (*PING, "-c", "1", "-s", "1473", "10.244.1.2"))] = too_big
    return scenarios.mtu_problems(driver, CI, PODS[0], PODS[1])


LINK_1500 = "2: eth0@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP"
REFUSED = ok("ping: local error: message too long, mtu=1500", 1)


def test_an_mtu_that_cannot_be_read_stops_the_check_even_when_some_output_came() -> None:
    assert mtu_check(ok(LINK_1500, 1), ok(), REFUSED) == [
        "cannot read a's eth0 MTU\n    reproduce: reproduce it"
    ]


def test_a_failed_fitting_ping_shows_the_last_300_characters_of_its_output() -> None:
    out = "a" * 100 + "b" * 300
    assert mtu_check(ok(LINK_1500), ExecResult(1, out, "\n", "ping it"), REFUSED) == [
        f"1472-byte DF ping (packet = MTU 1500) a -> b failed: {'b' * 300}\n    reproduce: ping it"
    ]


def test_an_unproven_refusal_shows_the_last_200_characters_of_its_output() -> None:
    lost = ExecResult(1, "a" * 50 + "b" * 200, "", "ping big")
    assert mtu_check(ok(LINK_1500), ok("2 received"), lost) == [
        "a DF packet one byte over MTU 1500 failed without evidence of a refusal (no EMSGSIZE, "
        f"no 'Frag needed'): {'b' * 200}\n    reproduce: ping big"
    ]


def test_a_refusal_at_a_narrower_mtu_than_the_pods_names_both() -> None:
    narrower = ExecResult(1, "Frag needed and DF set (mtu = 1450)", "", "ping big")
    assert mtu_check(ok(LINK_1500), ok("2 received"), narrower) == [
        "the over-size DF packet was refused at MTU 1450, not at the pod's 1500: the path is "
        "narrower than the pod's interface\n    reproduce: ping big"
    ]


def test_a_pods_addresses_are_its_non_loopback_ones_with_how_to_read_them_again() -> None:
    driver = FakeDriver(CI)
    two = A_ONLY + "3: net1    inet 10.1.0.2/24 scope global net1\n"
    driver.execs[("a", "echo", ONELINE)] = ExecResult(0, two, "", "ip in a")
    assert scenarios.pod_addresses(driver, PODS[0], "echo") == scenarios.PodAddresses(
        "a",
        {"eth0": (IPv4Address("10.244.0.2"),), "net1": (IPv4Address("10.1.0.2"),)},
        "ip in a",
    )


def test_a_failed_read_has_no_addresses_even_if_it_printed_some_and_says_why() -> None:
    driver = FakeDriver(CI)
    driver.execs[("a", "echo", ONELINE)] = ExecResult(2, A_ONLY, "", "ip in a")
    assert scenarios.pod_addresses(driver, PODS[0], "echo") == scenarios.PodAddresses(
        "a", {}, "ip in a", f"exit 2: {A_ONLY.strip()[:200]}"
    )
    driver.execs[("a", "echo", ONELINE)] = ExecResult(1, "", " " + "e" * 250, "ip in a")
    assert scenarios.pod_addresses(driver, PODS[0], "echo").error == f"exit 1: {'e' * 200}"


def test_each_node_works_on_all_nodes_at_once_however_many() -> None:
    nodes = [f"node{i}" for i in range(40)]  # more than a default pool holds: min(32, cpus + 4)
    together = threading.Barrier(len(nodes), timeout=10)

    def work(node: str) -> str:
        together.wait()  # passes only when every node's work runs at the same time
        return node.upper()

    assert scenarios.each_node(nodes, work) == [n.upper() for n in nodes]
    assert scenarios.each_node([], work) == []


def test_a_node_outside_the_lab_is_a_key_error_naming_it() -> None:
    made = scenarios.EveryNodeOnFirstUse(lambda node: node, ["node1"])
    with pytest.raises(KeyError) as missing:
        made["node9"]
    assert missing.value.args == ("node9",)
    assert made["node1"] == "node1"


CAT_NET = ("cat", "/proc/net/dev", "/proc/net/route", "/proc/net/fib_trie")


def test_a_containers_netns_view_is_what_cat_shows_or_why_not() -> None:
    driver = FakeDriver(CI)
    driver.execs[("a", "echo", CAT_NET)] = ExecResult(0, PROC_NET, "", "cat in a")
    view = scenarios.netns_view(driver, PODS[0], "echo")
    assert view == scenarios.NetnsView(("lo", "eth0"), (IPv4Address("10.244.1.4"),), "cat in a")
    driver.execs[("a", "echo", CAT_NET)] = ExecResult(0, "garbage\n", "", "cat in a")
    garbled = scenarios.netns_view(driver, PODS[0], "echo")
    assert (garbled.interfaces, garbled.addresses, garbled.reproduce) == ((), (), "cat in a")
    assert garbled.error.startswith("not the output of `cat /proc/net/dev")
    driver.execs[("a", "echo", CAT_NET)] = ExecResult(126, PROC_NET, " " + "e" * 250, "cat in a")
    assert scenarios.netns_view(driver, PODS[0], "echo") == scenarios.NetnsView(
        (), (), "cat in a", f"exit 126: {'e' * 200}"
    )


def test_the_local_fetch_is_socat_or_wget_in_one_shell() -> None:
    assert scenarios.local_fetch_argv(80) == (
        "sh",
        "-c",
        "if command -v socat >/dev/null; then timeout 5 socat -u TCP:127.0.0.1:80 -; "
        "else wget -qO- -T 5 http://127.0.0.1:80/; fi",
    )


def guide_pod_check(readlink_nginx: ExecResult, web: ExecResult) -> list[str]:
    driver = FakeDriver(CI)
    guide = driver.guide_pod()
    pod = Pod("g", "node1", IPv4Address("10.244.0.7"), guide.containers, None)
    pod_view = PROC_NET.replace("10.244.1.4", "10.244.0.7").replace("0001F40A", "0000F40A")
    ns = ("readlink", "/proc/self/ns/net")
    driver.execs[("g", "busybox", ns)] = ok("net:[4026532200]\n")
    driver.execs[("g", "nginx", ns)] = readlink_nginx
    driver.execs[("g", "busybox", CAT_NET)] = ok(pod_view)
    driver.execs[("g", "nginx", CAT_NET)] = ok(pod_view)
    driver.execs[("g", "busybox", scenarios.local_fetch_argv(80))] = web
    return scenarios.shared_netns_problems(driver, pod, guide)


def test_a_namespace_that_could_not_be_read_is_its_exit_not_what_it_printed() -> None:
    failed = ExecResult(1, "net:[4026532200]\n", "", "readlink")
    assert guide_pod_check(failed, ExecResult(7, "", "", "fetch")) == [
        "containers are in different network namespaces: "
        "{'busybox': 'net:[4026532200]', 'nginx': '(exit 1)'}",
        "busybox did not reach nginx on localhost:80: exit 7\n    reproduce: fetch",
    ]


def test_a_failed_local_fetch_shows_the_first_300_characters_it_printed() -> None:
    same = ok("net:[4026532200]\n")
    assert guide_pod_check(same, ExecResult(0, "x" * 250, "y" * 100, "fetch")) == [
        f"busybox did not reach nginx on localhost:80: {'x' * 250}{'y' * 50}\n    reproduce: fetch"
    ]
    assert guide_pod_check(same, ok("<h1>Welcome to nginx!</h1>")) == []


def test_side_by_side_checks_every_pod_at_once_however_many() -> None:
    pods = [Pod(f"p{i}", "node1", IPv4Address(f"10.244.0.{i + 2}"), ECHO, None) for i in range(40)]
    together = threading.Barrier(len(pods), timeout=10)

    def check(pod: Pod[None]) -> list[str]:
        together.wait()  # passes only when every pod's check runs at the same time
        return []

    assert scenarios.side_by_side(pods, check) == []


ROUTE_GET = "10.244.1.2 via 10.10.40.242 dev eth1 src 10.10.40.241 uid 0\n    cache\n"
NODE_ADDRS = (
    "2: eth1    inet 10.10.40.241/24 brd 10.10.40.255 scope global eth1\n"
    "4: cni0    inet 10.244.0.1/24 brd 10.244.0.255 scope global cni0\n"
    "5: flannel.1    inet 10.244.0.0/32 scope global flannel.1\n"
    "6: docker0    inet 172.17.0.1/16 scope global docker0\n"
)


def routes_of(*outputs: Step, pod_ips: tuple[str, ...] = ("10.244.1.2", "10.244.1.3")) -> Any:
    driver = FakeDriver(CI, script(*outputs))
    return scenarios.node_routes(driver, CI, "node1", [IPv4Address(ip) for ip in pod_ips])


def test_a_nodes_routes_are_its_kernels_source_per_pod_and_its_legitimate_sources() -> None:
    routes = routes_of(
        Step("node1", ("ip", "-4", "route", "get", "10.244.1.2"), stdout=ROUTE_GET),
        # a failed `ip route get` says nothing, whatever it printed
        Step(
            "node1",
            ("ip", "-4", "route", "get", "10.244.1.3"),
            stdout="10.244.1.3 dev cni0 src 10.244.0.1\n",
            exit_code=2,
        ),
        Step("node1", ("ip", "-o", "-4", "addr", "show"), stdout=NODE_ADDRS),
    )
    assert routes == scenarios.NodeRoutes(
        "node1",
        {"10.244.1.2": "10.10.40.241", "10.244.1.3": None},
        ("10.10.40.241", "10.244.0.1", "10.244.0.0"),  # the private IP, the bridge, the VTEP
        "python -m lab ssh ci-debian12 node1 -- 'ip -4 route get 10.244.1.2'",
    )


def test_addresses_that_could_not_be_read_leave_only_the_private_ip() -> None:
    routes = routes_of(
        Step("node1", ("ip", "-4", "route", "get", "10.244.1.2"), stdout=ROUTE_GET),
        Step("node1", ("ip", "-o", "-4", "addr", "show"), stdout=NODE_ADDRS, exit_code=1),
        pod_ips=("10.244.1.2",),
    )
    assert routes.allowed == ("10.10.40.241",)
    no_pods = routes_of(Step("node1", ("ip", "-o", "-4", "addr", "show"), stdout=""), pod_ips=())
    assert no_pods.reproduce == "python -m lab ssh ci-debian12 node1 -- 'ip -4 route'"


def test_the_node_matrix_goes_from_each_node_by_its_private_ip_under_the_faults_given() -> None:
    node1 = node_steps(
        "node1",
        {"10.244.0.2": "10.244.0.1", "10.244.1.2": "10.10.40.241"},
        addrs(("eth1", "10.10.40.241"), ("cni0", "10.244.0.1")),
    )
    node2 = node_steps(
        "node2",
        {"10.244.0.2": "10.10.40.242", "10.244.1.2": "10.244.1.1"},
        addrs(("eth1", "10.10.40.242"), ("cni0", "10.244.1.1")),
    )
    driver = FakeDriver(CI, script(*node1, *node2))
    driver.observations = {
        "node1->a": seen("10.244.0.1"),
        "node1->b": seen(None, ok=False),  # node1 is cut off from node2's pods
        "node2->a": seen(None, ok=False),
        "node2->b": seen("10.244.1.1"),
    }
    cut = rm.Faults(cut=frozenset({frozenset({"node1", "node2"})}))
    matrix = scenarios.node_matrix(driver, CI, PODS, cut)
    assert matrix.title == "node -> pod [fake]"
    assert matrix.sources == (
        rm.Endpoint("node1", "node1", "10.10.40.241", ("10.10.40.241", "10.244.0.1")),
        rm.Endpoint("node2", "node2", "10.10.40.242", ("10.10.40.242", "10.244.1.1")),
    )
    assert [[matrix.symbol(n, p) for p in ("a", "b")] for n in ("node1", "node2")] == [
        [".", "x"],
        ["x", "."],
    ]


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
