"""The CNI-direct driver against strict fakes of the nodes: pods set up and torn down in one
agent call per node, failures that leave nothing behind, probes batched per source node, and
one-cell reproduce commands a person can paste."""

from __future__ import annotations

import json
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from e2e.drivers.base import DriverError, Pod, PodRequest, Probe, wait_for_echo_servers
from e2e.drivers.cni import CniCallFailed, CniDriver, CniHandle, echo_server
from lab.common import waits
from lab.model.labfile import load_lab
from lab.podnet.bridge import render_cni_conflist_text
from tests.fakes import Step, channels, script

ROOT = Path(__file__).resolve().parents[2]
CI = load_lab(ROOT / "labs" / "ci-debian12.yaml")
AGENT = ("python3", "-")
CONF = "/etc/cni/net.d/10-netlab.conflist"


def conflist_steps(node: str) -> list[Step]:
    """The driver reads the first conflist's name and content in one round trip."""

    def lists_then_cats(words: tuple[str, ...]) -> None:
        (script,) = words
        assert script.startswith("cd /etc/cni/net.d && ")
        assert "LC_ALL=C sort" in script

    text = render_cni_conflist_text(CI, CI.node(node))
    return [Step(node, ("sh", "-c"), f"10-netlab.conflist\n{text}", rest=lists_then_cats)]


def script_of(check: Callable[[str], None]) -> Callable[[tuple[str, ...]], None]:
    def rest(words: tuple[str, ...]) -> None:
        (text,) = words
        check(text)

    return rest


def request_of(check: Callable[[dict[str, Any]], None]) -> Callable[[tuple[str, ...]], None]:
    def rest(words: tuple[str, ...]) -> None:
        (text,) = words
        check(json.loads(text))

    return rest


SH = ("sh", "-c")


def add_result(ip: str) -> str:
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "interfaces": [
                {"name": "cni0", "mac": "0a:58:0a:f4:00:01"},
                {"name": "veth1", "mac": "aa:bb:cc:dd:ee:01"},
                {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02", "sandbox": "/var/run/netns/x"},
            ],
            "ips": [{"version": "4", "interface": 2, "address": f"{ip}/24"}],
        },
        indent=2,
    )


def setup_output(*pods: tuple[str, str, str]) -> str:
    """What the setup script prints for (name, ip, pid) pods that came up."""
    return "".join(
        f"@@NETLAB-POD {name}\n@@NETLAB-CNI-RESULT\n{add_result(ip)}\n@@NETLAB-CNI-END\n"
        f"@@NETLAB-PIDS {pid} \n@@NETLAB-EXIT {name} 0\n"
        for name, ip, pid in pods
    )


def test_pods_are_set_up_by_one_script_per_node() -> None:
    def setup_of(text: str) -> None:
        assert text.count("@@NETLAB-POD") == 2
        assert "ip netns add p1\n" in text
        assert "/usr/lib/cni/bridge" in text
        assert "/usr/lib/cni/portmap" in text
        assert "mkdir -p /var/lib/netlab/cni && (umask 077 && printf" in text
        assert "systemd-run --unit=p1-echo" in text

    steps = script(
        *conflist_steps("node1"),
        Step(
            "node1",
            SH,
            setup_output(("p1", "10.244.0.2", "101"), ("p2", "10.244.0.3", "102")),
            rest=script_of(setup_of),
        ),
        # then, in one round trip a try, until each pod's echo server listens: p2 does at once
        *socket_tables("node1", "p1", listening=False),
        *socket_tables("node1", "p2", listening=True),
        *socket_tables("node1", "p1", listening=True),
    )
    driver = CniDriver(CI, channels(CI.name, ["node1"], steps), echo_listens=QUICK)
    pods = driver.create_pods(
        [PodRequest("p1", "node1", (echo_server(),)), PodRequest("p2", "node1", (echo_server(),))]
    )
    steps.done()
    assert [(p.name, str(p.ip), dict(p.handle.pids)) for p in pods] == [
        ("p1", "10.244.0.2", {"echo": 101}),
        ("p2", "10.244.0.3", {"echo": 102}),
    ]


PROCNET = ROOT / "tests" / "data" / "procnet"
QUICK = waits.Policy("echo servers listen (test)", timeout_s=5, interval_s=0, max_attempts=2)


def socket_tables(node: str, pod: str, listening: bool) -> list[Step]:
    """The pod's /proc/net/tcp and /proc/net/udp, read in its namespace (recorded tables:
    tests/data/procnet), before or after its echo server listens on 8080."""
    state = "echo" if listening else "none"
    return [
        Step(node, ("ip", "netns", "exec", pod, "cat", f"/proc/net/{proto}"), table)
        for proto in ("tcp", "udp")
        for table in [(PROCNET / f"{proto}-{state}.txt").read_text()]
    ]


def test_a_pod_whose_echo_server_never_listens_is_removed_with_the_request_and_named() -> None:
    torn = (
        "@@NETLAB-POD p1\n@@NETLAB-DEL p1 0\n@@NETLAB-NETNS p1 0\n"
        "@@NETLAB-POD p2\n@@NETLAB-DEL p2 0\n@@NETLAB-NETNS p2 0\n"
    )
    tcp_only = [
        Step("node1", ("ip", "netns", "exec", "p1", "cat", "/proc/net/tcp"), table)
        for table in [(PROCNET / "tcp-echo.txt").read_text()]
    ] + [Step("node1", ("ip", "netns", "exec", "p1", "cat", "/proc/net/udp"), "", exit_code=1)]
    steps = script(
        *conflist_steps("node1"),
        Step(
            "node1",
            SH,
            setup_output(("p1", "10.244.0.2", "101"), ("p2", "10.244.0.3", "102")),
            rest=script_of(lambda s: None),
        ),
        *socket_tables("node1", "p1", listening=False),
        *socket_tables("node1", "p2", listening=True),
        *tcp_only,  # the second (last) try: p1 still has no UDP socket to show
        Step("node1", SH, torn, rest=script_of(lambda text: None)),
    )
    driver = CniDriver(CI, channels(CI.name, ["node1"], steps), echo_listens=QUICK)
    with pytest.raises(DriverError) as err:
        driver.create_pods([PodRequest(n, "node1", (echo_server(),)) for n in ("p1", "p2")])
    steps.done()
    assert str(err.value) == (
        "echo servers listen (test): not done after 5s; last saw "
        "{'p1': \"cannot read its sockets (exit 1: '')\"}"
    )


def test_the_first_try_says_what_a_pod_lacks() -> None:
    steps = script(
        *conflist_steps("node1"),
        Step(
            "node1",
            SH,
            setup_output(("p1", "10.244.0.2", "101")),
            rest=script_of(lambda text: None),
        ),
        *socket_tables("node1", "p1", listening=False),
        Step(
            "node1",
            SH,
            "@@NETLAB-POD p1\n@@NETLAB-DEL p1 0\n@@NETLAB-NETNS p1 0\n",
            rest=script_of(lambda text: None),
        ),
    )
    once = waits.Policy("echo servers listen (test)", timeout_s=5, interval_s=0, max_attempts=1)
    driver = CniDriver(CI, channels(CI.name, ["node1"], steps), echo_listens=once)
    with pytest.raises(DriverError, match=r"'p1': 'not listening on TCP 8080 and UDP 8080'"):
        driver.create_pods([PodRequest("p1", "node1", (echo_server(),))])
    steps.done()


def test_a_pod_that_fails_to_start_takes_the_whole_request_down_and_says_why() -> None:
    failed = (
        "@@NETLAB-POD bad\n@@NETLAB-CNI-FAIL /usr/lib/cni/bridge 1\n"
        '{"code": 11, "msg": "failed to allocate for range 0"}\n@@NETLAB-CNI-PREV\n\n'
        "@@NETLAB-CNI-END\n@@NETLAB-EXIT bad 1\n"
    )
    torn = (
        "@@NETLAB-POD good\n@@NETLAB-DEL good 0\n@@NETLAB-NETNS good 0\n"
        "@@NETLAB-POD bad\n@@NETLAB-DEL bad 0\n@@NETLAB-NETNS bad 1\n"
    )

    def teardown_of(text: str) -> None:
        assert text.count("@@NETLAB-POD") == 2
        assert 'prev="$(cat /var/lib/netlab/cni/bad.json 2>/dev/null || true)"' in text
        assert "ip netns delete good" in text

    steps = script(
        *conflist_steps("node1"),
        Step(
            "node1",
            SH,
            setup_output(("good", "10.244.0.2", "101")) + failed,
            rest=script_of(lambda s: None),
        ),
        Step("node1", SH, torn, rest=script_of(teardown_of)),
    )
    driver = CniDriver(CI, channels(CI.name, ["node1"], steps))
    with pytest.raises(DriverError) as err:
        driver.create_pods(
            [
                PodRequest("good", "node1", (echo_server(),)),
                PodRequest("bad", "node1", (echo_server(),)),
            ]
        )
    steps.done()
    assert "1 of 2 pod(s) did not start" in str(err.value)
    assert "failed to allocate for range 0" in str(err.value)


def pod(name: str, node: str, ip: str, pid: int) -> Pod[CniHandle]:
    return Pod(name, node, IPv4Address(ip), (echo_server(),), CniHandle({}, {"echo": pid}))


def test_probes_run_from_each_source_node_in_one_call_with_exact_one_cell_commands() -> None:
    a, b = pod("a", "node1", "10.244.0.2", 101), pod("b", "node2", "10.244.1.2", 202)

    def cells_of(expected: list[tuple[str, str | None]]) -> Callable[[dict[str, Any]], None]:
        def check(request: dict[str, Any]) -> None:
            assert request["op"] == "probe"
            assert [(c["id"], c["netns"]) for c in request["cells"]] == expected
            assert {c["port"] for c in request["cells"]} == {8080}

        return check

    node1 = json.dumps(
        {
            "results": [
                {
                    "id": "a->b",
                    "ok": True,
                    "answer": "10.244.0.2\n",
                    "connect_s": 0.003,
                    "total_s": 0.01,
                    "retransmits": 0,
                },
                {
                    "id": "node1->b",
                    "ok": True,
                    "answer": "10.10.10.241\n",
                    "connect_s": 1.02,
                    "total_s": 1.1,
                    "retransmits": 1,
                },
            ]
        }
    )
    steps = script(
        Step(
            "node1",
            AGENT,
            node1,
            rest=request_of(cells_of([("a->b", "/proc/101/ns/net"), ("node1->b", None)])),
        ),
        Step(
            "node2",
            AGENT,
            "",
            exit_code=255,
            stderr="ssh: connect to host: Connection refused",
            rest=request_of(cells_of([("b->a", "/proc/202/ns/net")])),
        ),
    )
    driver = CniDriver(CI, channels(CI.name, ["node1", "node2"], steps))
    seen = driver.observe([Probe("a->b", a, b), Probe("node1->b", "node1", b), Probe("b->a", b, a)])
    steps.done()
    assert (seen["a->b"].seen_source, seen["a->b"].connect_s) == ("10.244.0.2", 0.003)
    assert seen["node1->b"].retransmits == 1
    assert seen["b->a"].unknown
    assert "exited 255" in seen["b->a"].detail
    assert seen["a->b"].reproduce == (
        "python -m lab ssh ci-debian12 node1 -- 'sudo -n nsenter -t 101 -n -- timeout 5 socat "
        "-u TCP:10.244.1.2:8080,connect-timeout=3 -'"
    )
    assert seen["node1->b"].reproduce == (
        "python -m lab ssh ci-debian12 node1 -- 'sudo -n timeout 5 socat -u "
        "TCP:10.244.1.2:8080,connect-timeout=3 -'"
    )


def test_teardown_runs_every_step_and_reports_a_failed_del() -> None:
    a = pod("a", "node1", "10.244.0.2", 101)
    out = (
        "@@NETLAB-POD a\n@@NETLAB-CNI-FAIL /usr/lib/cni/bridge 1\n"
        '{"code": 7, "msg": "no such network"}\n@@NETLAB-CNI-PREV\n{}\n@@NETLAB-CNI-END\n'
        "@@NETLAB-DEL a 1\nCannot remove namespace\n@@NETLAB-NETNS a 1\n"
    )
    steps = script(*conflist_steps("node1"), Step("node1", SH, out, rest=script_of(lambda s: None)))
    driver = CniDriver(CI, channels(CI.name, ["node1"], steps))
    with pytest.raises(
        DriverError, match=r"CNI DEL \(/usr/lib/cni/bridge\) exited 1: .*no such network"
    ):
        driver.delete_pods([a])
    steps.done()


def test_a_failing_plugin_is_reproduced_alone_with_exactly_what_it_was_given() -> None:
    out = (
        "@@NETLAB-CNI-FAIL /usr/lib/cni/bridge 1\n"
        '{"code": 999, "msg": "Expected Route not found"}\n'
        '@@NETLAB-CNI-PREV\n{"ips": []}\n@@NETLAB-CNI-END\n'
    )
    steps = script(
        *conflist_steps("node1"),
        Step("node1", SH, out, exit_code=1, rest=script_of(lambda s: None)),
    )
    driver = CniDriver(CI, channels(CI.name, ["node1"], steps))
    with pytest.raises(CniCallFailed) as err:
        driver.invoke("CHECK", "node1", "p", {"ips": []})
    steps.done()
    assert err.value.error is not None
    assert err.value.error.msg == "Expected Route not found"
    reproduce = err.value.result.reproduce if err.value.result else ""
    assert reproduce.startswith(
        "python -m lab ssh ci-debian12 node1 -- 'sudo -n env CNI_COMMAND=CHECK"
    )
    assert "/usr/lib/cni/bridge <<" in reproduce
    assert '"prevResult": {"ips": []}' in reproduce


def test_only_pods_that_run_the_echo_server_are_waited_for() -> None:
    steps = script(*socket_tables("node1", "a", listening=True))
    driver = CniDriver(CI, channels(CI.name, ["node1"], steps))
    nginx = Pod("g", "node1", IPv4Address("10.244.0.9"), (), CniHandle({}, {}))
    wait_for_echo_servers(driver, [nginx, pod("a", "node1", "10.244.0.2", 101)], QUICK)
    steps.done()
