"""The scenarios' pure parts and the comparisons: subnets judged against what the nodes report
and what the lab allots, DF refusal evidence, matrices that must cover the lab."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from e2e import checks, scenarios
from e2e.drivers.base import Pod
from lab.common.commands import cmd, render_remote
from lab.model.labfile import load_lab
from lab.net import reachability as rm
from tests import fakes

ROOT = Path(__file__).resolve().parents[2]
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")
VXLAN = load_lab(ROOT / "labs" / "ci-debian12-vxlan.yaml")
REPORTED = {"node1": (IPv4Network("10.244.0.0/24"),), "node2": (IPv4Network("10.244.1.0/24"),)}


def pod(name: str, node: str, ip: str) -> Pod[None]:
    return Pod(name, node, IPv4Address(ip), (), None)


def test_subnets_as_reported_and_allotted_pass() -> None:
    pods = [pod("a", "node1", "10.244.0.5"), pod("b", "node2", "10.244.1.5")]
    assert scenarios.subnet_problems(CI, pods, REPORTED) == []


def test_a_pod_ip_in_another_nodes_subnet_is_named() -> None:
    stray = pod("nl-a", "node2", "10.244.0.5")
    assert scenarios.subnet_problems(CI, [stray], REPORTED) == [
        "nl-a on node2 has 10.244.0.5, which is in node1's subnet; node2 hands out 10.244.1.0/24"
    ]


def test_a_node_handing_out_another_subnet_than_the_lab_allots_is_named() -> None:
    """The expectation is the lab file's allocation, not what the harness rendered."""
    swapped = {"node1": REPORTED["node2"], "node2": REPORTED["node1"]}
    assert scenarios.subnet_problems(CI, [], swapped) == [
        "node1 hands out 10.244.1.0/24; the lab file allots it 10.244.0.0/24",
        "node2 hands out 10.244.0.0/24; the lab file allots it 10.244.1.0/24",
    ]


def test_overlapping_missing_and_outside_subnets_are_named() -> None:
    bad = {
        "node1": (IPv4Network("10.244.0.0/24"),),
        "node2": (IPv4Network("10.244.0.128/25"), IPv4Network("10.99.0.0/24")),
        "node3": (),
    }
    problems = scenarios.subnet_problems(GUIDE, [], bad)  # flannel: no planned allocation
    assert problems == [
        "node2: subnet 10.99.0.0/24 is outside the cluster pod CIDR 10.244.0.0/16",
        "node3 hands out no pod subnet (no address on its pod bridge)",
        "node1's subnet 10.244.0.0/24 overlaps node2's subnet 10.244.0.128/25",
    ]


@pytest.mark.parametrize(
    ("output", "mtu"),
    [
        (
            "PING 10.244.1.2 (10.244.1.2) 1473(1501) bytes of data.\n"
            "ping: local error: message too long, mtu=1500\n",
            1500,
        ),
        ("ping: local error: Message too long, mtu=1450", 1450),
        ("From 10.244.0.1 icmp_seq=1 Frag needed and DF set (mtu = 1450)", 1450),
        ("1 packets transmitted, 0 received, 100% packet loss, time 0ms", None),
        ("ping: sendmsg: Operation not permitted", None),
        ("", None),
    ],
)
def test_a_df_refusal_needs_evidence_naming_the_mtu(output: str, mtu: int | None) -> None:
    assert scenarios.df_refusal_mtu(output) == mtu


def test_the_fleet_must_cross_nodes_and_hold_a_pod() -> None:
    assert scenarios.fleet_slots(CI, 1) == [("node1", 0), ("node2", 0)]
    with pytest.raises(ValueError, match="--pods-per-node must be at least 1, got 0"):
        scenarios.fleet_slots(CI, 0)
    one_node = load_lab(ROOT / "labs" / "ci-debian12.yaml").__class__(
        **{**CI.__dict__, "nodes": CI.nodes[:1]}
    )
    with pytest.raises(
        ValueError,
        match=r"matrix needs at least two nodes, so that a cell crosses the pod network",
    ):
        scenarios.fleet_slots(one_node, 4)


def test_the_matrix_sizes_come_from_the_lab() -> None:
    slots = scenarios.fleet_slots(GUIDE, 2)
    assert scenarios.expected_cells(slots, len(GUIDE.nodes)) == (30, 18)


def test_a_matrix_smaller_than_the_lab_implies_fails_even_when_every_cell_passed() -> None:
    empty = rm.Matrix("pod -> pod", (), ())
    with pytest.raises(pytest.fail.Exception, match="0 cells, but the lab implies 12"):
        checks.expect_matrix(empty, 12)
    with pytest.raises(pytest.fail.Exception, match="0 cells, but the lab implies 0"):
        checks.expect_matrix(empty, 0)


# --- expect_no_problems: fails with every problem, the reproduce lines once each, the context --


def test_no_problems_pass_and_compute_no_context() -> None:
    def context() -> str:
        raise AssertionError("the context is computed only on failure")

    checks.expect_no_problems([], "DEL of p", ["repro"], context)


def test_problems_fail_with_every_one_the_reproduce_lines_once_and_the_context() -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        checks.expect_no_problems(
            ["lease gone", "veth left"], "DEL of p", ["ip link", "ls /x", "ip link"], lambda: "ns"
        )
    assert str(failed.value) == (
        "DEL of p: 2 problem(s)\n  - lease gone\n  - veth left\n"
        "reproduce:\n  ip link\n  ls /x\n\nns"
    )
    with pytest.raises(pytest.fail.Exception) as bare:
        checks.expect_no_problems([3], "x")
    assert str(bare.value) == "x: 1 problem(s)\n  - 3"


# --- guide_state_problems: what the guide's OS steps leave on a node, read over its channel --

SYSCTLS = (
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv4.ip_forward",
)
SWAPS_OFF = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
MODULES = "br_netfilter 32768 0 - Live 0x0000000000000000\nbridge 311296 1 br_netfilter\n"
ROUTES = (
    "default via 192.168.124.1 dev eth0\n"
    "10.244.1.0/24 via 10.10.40.242 dev eth1\n"
    "10.10.40.0/24 dev eth1 proto kernel scope link src 10.10.40.241\n"
)


def node_state(
    sysctl: tuple[str, str, str] = ("1", "1", "1"),
    swaps: str = SWAPS_OFF,
    modules: str = MODULES,
    hostname: str = "node1",
    routes: str | None = ROUTES,
) -> list[fakes.Step]:
    steps = [
        fakes.Step("node1", ("sysctl", "-n", key), stdout=f"{value}\n")
        for key, value in zip(SYSCTLS, sysctl, strict=True)
    ]
    steps += [
        fakes.Step("node1", ("cat", "/proc/swaps"), stdout=swaps),
        fakes.Step("node1", ("cat", "/proc/modules"), stdout=modules),
        fakes.Step("node1", ("hostname",), stdout=f"{hostname}\n"),
    ]
    if routes is not None:
        steps.append(fakes.Step("node1", ("ip", "-4", "route", "show"), stdout=routes))
    return steps


def guide_state(lab: Any, *steps: fakes.Step) -> list[str]:
    script = fakes.script(*steps)
    channel = fakes.FakeChannel(lab.name, "node1", script)
    problems = checks.guide_state_problems(channel, lab, "node1")  # type: ignore[arg-type]
    script.done()
    return problems


def test_a_node_as_the_guide_leaves_it_has_no_problem() -> None:
    assert guide_state(CI, *node_state()) == []
    # sysctl -n through sudo (it may read root-only keys); the world-readable reads without
    script = fakes.script(*node_state())
    checks.guide_state_problems(fakes.FakeChannel(CI.name, "node1", script), CI, "node1")  # type: ignore[arg-type]
    assert [render_remote(command) for _, command, _ in script.ran] == [
        "sudo -n sysctl -n net.bridge.bridge-nf-call-iptables",
        "sudo -n sysctl -n net.bridge.bridge-nf-call-ip6tables",
        "sudo -n sysctl -n net.ipv4.ip_forward",
        "cat /proc/swaps",
        "cat /proc/modules",
        "hostname",
        "ip -4 route show",
    ]
    # the commands as data, too: sudo is a flag (False), not merely something falsy
    assert [command for _, command, _ in script.ran][3:] == [
        cmd("cat", "/proc/swaps", sudo=False),
        cmd("cat", "/proc/modules", sudo=False),
        cmd("hostname", sudo=False),
        cmd("ip", "-4", "route", "show", sudo=False),
    ]
    # a lab whose backend expects no host route reads none
    assert guide_state(VXLAN, *node_state(routes=None)) == []


def test_each_thing_the_guide_sets_is_named_when_it_is_not_so() -> None:
    swap = SWAPS_OFF + "/swapfile file 1048572 0 -2\n"
    assert guide_state(
        CI,
        *node_state(
            sysctl=("1", "0", ""),
            swaps=swap,
            modules="bridge 311296 0\nbr_netfilterx 1 0\n",
            hostname="localhost",
            routes="default via 192.168.124.1 dev eth0\n",
        ),
    ) == [
        "node1: net.bridge.bridge-nf-call-ip6tables = '0', expected 1",
        "node1: net.ipv4.ip_forward = '', expected 1",
        "node1: swap is on: ['/swapfile file 1048572 0 -2']",
        "node1: br_netfilter is not loaded",
        "node1: hostname is 'localhost'",
        "node1: no route 10.244.1.0/24 via 10.10.40.242 dev eth1",
    ]


def test_a_sysctl_that_cannot_be_read_is_a_problem_not_an_error() -> None:
    steps = node_state()
    steps[0] = fakes.Step("node1", ("sysctl", "-n", SYSCTLS[0]), exit_code=255, stderr="no key")
    assert guide_state(CI, *steps) == ["node1: net.bridge.bridge-nf-call-iptables = '', expected 1"]


# --- expect_matrix: a matrix that covers the lab, every cell right; else the whole table ---

A = rm.Endpoint("a", "node1", "10.244.0.5")
B = rm.Endpoint("b", "node2", "10.244.1.5")


def matrix(b_answers: bool = True) -> rm.Matrix:
    expect = rm.Expect(True, frozenset({"10.244.0.5"}), responders=frozenset({"b"}))
    seen = (
        rm.Observation(True, "10.244.0.5", "repro a->b", answered_by="b")
        if b_answers
        else rm.Observation(False, None, "repro a->b", "timeout")
    )
    return rm.Matrix("pod -> pod", (A,), (B,), {("a", "b"): expect}, {("a", "b"): seen})


def failure(call: Callable[[], None]) -> pytest.ExceptionInfo[pytest.fail.Exception]:
    """The failure `call` raises: shown without a traceback (pytrace=False), and without the
    expect_* frames themselves (`__tracebackhide__`)."""
    with pytest.raises(pytest.fail.Exception) as failed:
        call()
    assert failed.value.pytrace is False
    shown = [entry.name for entry in failed.traceback.filter(failed)]
    assert [name for name in shown if "expect_" in name] == [], shown
    return failed


def test_a_matrix_that_covers_the_lab_with_every_cell_right_passes() -> None:
    def context() -> str:
        raise AssertionError("the context is computed only on failure")

    checks.expect_matrix(matrix(), 1, context)


def test_a_single_cell_matrix_is_enough_when_the_lab_implies_one() -> None:
    checks.expect_matrix(matrix(), 1)
    failed = failure(lambda: checks.expect_matrix(matrix(), 2))
    assert str(failed.value) == (
        "pod -> pod: 1 cells, but the lab implies 2: a matrix that does not cover the lab "
        "proves nothing"
    )


def test_a_wrong_cell_fails_with_the_whole_table_and_the_context_after_it() -> None:
    wrong = matrix(b_answers=False)
    failed = failure(lambda: checks.expect_matrix(wrong, 1, lambda: "namespace dump"))
    assert str(failed.value) == f"1 of 1 cells wrong\n{wrong.render()}\n\nnamespace dump"
    bare = failure(lambda: checks.expect_matrix(wrong, 1))
    assert str(bare.value) == f"1 of 1 cells wrong\n{wrong.render()}"


def test_expect_no_problems_hides_its_frame_and_shows_no_traceback() -> None:
    failed = failure(lambda: checks.expect_no_problems(["x"], "w"))
    assert str(failed.value) == "w: 1 problem(s)\n  - x"


def test_a_node_with_two_subnets_and_a_pod_in_no_nodes_subnet_are_named_in_full() -> None:
    two = {
        "node1": (IPv4Network("10.244.0.0/24"), IPv4Network("10.244.5.0/24")),
        "node2": (IPv4Network("10.244.1.0/24"),),
    }
    stray = pod("nl-x", "node2", "10.244.9.9")
    assert scenarios.subnet_problems(CI, [stray], two) == [
        "node1 hands out 10.244.0.0/24, 10.244.5.0/24; the lab file allots it 10.244.0.0/24",
        "nl-x on node2 has 10.244.9.9, which is in no node's subnet; node2 hands out 10.244.1.0/24",
    ]
    homeless = pod("nl-y", "node3", "10.244.0.7")
    assert scenarios.subnet_problems(CI, [homeless], REPORTED) == [
        "nl-y on node3 has 10.244.0.7, which is in node1's subnet; node3 hands out nothing"
    ]


def test_a_cell_over_a_protocol_the_echo_server_does_not_answer_skips_saying_why() -> None:
    try:
        checks.skip_unless_answered_over(("tcp", "udp"), "cri", "udp")  # answered: no skip
    except pytest.skip.Exception as skip:  # a skip here would pass the test unseen
        pytest.fail(f"answered over UDP, yet skipped: {skip.msg}")
    with pytest.raises(pytest.skip.Exception) as skipped:
        checks.skip_unless_answered_over(("tcp",), "k8s", "udp")
    assert skipped.value.msg == (
        "the k8s driver's echo server does not answer UDP with the source it saw and who it is "
        "(it answers TCP)"
    )
    with pytest.raises(pytest.skip.Exception, match=r"\(it answers TCP, UDP\)$"):
        checks.skip_unless_answered_over(("tcp", "udp"), "x", "sctp")
