"""The MTU on every pod, from pods and nodes, over ICMP and TCP (e2e/mtu.py): who sends to
whom, the exact commands, one agent call per node, and how each outcome is judged."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from shlex import quote
from typing import Any

from e2e import mtu
from e2e.probes import StepResult
from lab.model.labfile import load_lab
from tests.fakes import FakeDriver, Step, script, two_pods_per_node

ROOT = Path(__file__).resolve().parents[2]
VX = load_lab(ROOT / "labs" / "ci-debian12-vxlan.yaml")
PODS = two_pods_per_node()
TOO_LONG = "ping: local error: message too long, mtu=1450"


def test_every_pod_and_node_sends_to_a_pod_on_another_node_and_every_pod_is_a_target() -> None:
    sources = mtu.mtu_sources(VX, PODS)
    assert [(s.name, s.target.name, s.port) for s in sources] == [
        ("a1", "b1", 9400),
        ("a2", "b2", 9401),
        ("node1", "b1", 9402),
        ("b1", "a1", 9403),
        ("b2", "a2", 9404),
        ("node2", "a1", 9405),
    ]
    assert [s.pod is None for s in sources] == [False, False, True, False, False, True]


THREE = load_lab(ROOT / "labs" / "ci-debian12-3node.yaml")


def test_on_three_nodes_each_sends_to_the_next_and_a_node_without_pods_is_skipped() -> None:
    from ipaddress import IPv4Address

    from e2e.drivers.base import Container, Pod

    echo = (Container("echo", ("echo-server",)),)

    def pod(name: str, node: str, host: int) -> Pod[None]:
        return Pod(name, node, IPv4Address(f"10.244.{node[-1]}.{host}"), echo, None)

    a, b, c = pod("a", "node1", 2), pod("b", "node2", 2), pod("c", "node3", 2)
    sources = mtu.mtu_sources(THREE, [a, b, c])
    assert [(s.name, s.target.name) for s in sources] == [
        ("a", "b"),
        ("node1", "b"),
        ("b", "c"),
        ("node2", "c"),
        ("c", "a"),
        ("node3", "a"),
    ]
    # only node2 has pods: node2 has no pod of another node to send to, the others send to it
    alone = mtu.mtu_sources(THREE, [b])
    assert [(s.name, s.target.name, s.port) for s in alone] == [
        ("node1", "b", 9400),
        ("node3", "b", 9401),
    ]


def test_the_commands_are_the_df_pings_the_listener_and_the_transfer() -> None:
    assert mtu.df_ping_argv(1450, "10.244.1.2", 2) == (
        *("ping", "-n", "-M", "do", "-W", "3", "-i", "0.2", "-c", "2", "-s", "1422"),
        "10.244.1.2",
    )
    assert mtu.sink_argv(9400) == (
        *("timeout", "20", "socat", "-t", "20", "TCP-LISTEN:9400,reuseaddr", "SYSTEM:wc -c"),
    )
    assert mtu.transfer_argv("10.244.1.2", 9400, 4350) == (
        "sh",
        "-c",
        "head -c 4350 /dev/zero | timeout 20 socat -t 20 - "
        "TCP:10.244.1.2:9400,retry=100,interval=0.2",
    )
    assert mtu.link_mtu_argv() == ("ip", "-o", "link", "show", "eth0")
    assert mtu.link_mtu_argv("net1") == ("ip", "-o", "link", "show", "net1")
    driver = FakeDriver(VX)
    jobs, sinks = mtu.plan_mtu(driver, VX, mtu.mtu_sources(VX, PODS))
    a1, node1 = jobs[0], jobs[2]
    assert [name for name, _ in a1.steps] == ["mtu", "fits", "over", "transfer"]
    assert a1.steps[0][1].argv == ("ip", "netns", "exec", "a1", "ip", "-o", "link", "show", "eth0")
    # 3 x the pod MTU (1450) to the target's listener, from the pod's netns or the node itself
    assert a1.steps[3][1].argv == (
        *("ip", "netns", "exec", "a1"),
        *mtu.transfer_argv("10.244.1.2", 9400, 4350),
    )
    assert node1.steps[2][1].argv == mtu.transfer_argv("10.244.1.2", 9402, 4350)
    assert [names for p in sinks for names, _ in p.steps] == ["sink"] * 6
    assert a1.steps[1][1].argv == (
        "ip",
        "netns",
        "exec",
        "a1",
        *mtu.df_ping_argv(1450, "10.244.1.2", 2),
    )
    assert [name for name, _ in node1.steps] == ["fits", "over", "transfer"]
    assert node1.steps[1][1].argv == mtu.df_ping_argv(1451, "10.244.1.2", 1)
    assert (sinks[2].node, sinks[2].steps[0][1].argv) == (
        "node2",
        ("ip", "netns", "exec", "b1", *mtu.sink_argv(9402)),
    )


def ran(exit_code: int = 0, stdout: str = "", stderr: str = "") -> mtu.Ran:
    return mtu.Ran(StepResult(exit_code, stdout, stderr), "reproduce it")


HEALTHY = {
    "mtu": ran(0, "2: eth0@if5: <BROADCAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP"),
    "fits": ran(0, "2 packets transmitted, 2 received"),
    "over": ran(1, "", TOO_LONG),
    "transfer": ran(0, "4350\n"),
}


def judged(sink: mtu.Ran | None = None, **over: mtu.Ran) -> list[str]:
    source = mtu.mtu_sources(VX, PODS)[0]
    return mtu.source_problems(1450, source, {**HEALTHY, **over}, sink)


def test_a_healthy_source_has_no_problem() -> None:
    assert judged() == []
    node = {k: v for k, v in HEALTHY.items() if k != "mtu"}
    assert mtu.source_problems(1450, mtu.mtu_sources(VX, PODS)[2], node, None) == []


def test_each_failure_is_named_with_its_reproduce_line() -> None:
    wrong = ran(0, "2: eth0@if5: <UP> mtu 1500 qdisc noqueue")
    assert judged(mtu=wrong) == [
        "a1's eth0 MTU is 1500; the lab's pod network MTU is 1450\n    reproduce: reproduce it"
    ]
    assert "cannot read a1's eth0 MTU: exit" not in judged(mtu=ran(1, "", "no netns"))[0]
    assert judged(mtu=ran(1, "", "no netns"))[0].startswith("cannot read a1's eth0 MTU: no netns")
    assert judged(fits=ran(1, "Frag needed and DF set (mtu = 1400)"))[0].startswith(
        "a1 -> b1: 1422-byte DF ping (packet = MTU 1450) failed: Frag needed"
    )
    assert "DF is not honoured" in judged(over=ran(0, "1 received"))[0]
    assert "without evidence of a refusal" in judged(over=ran(1, "0 received"))[0]
    assert (
        "refused at MTU 1400, not at the pod network's 1450"
        in judged(over=ran(1, "", "ping: local error: message too long, mtu=1400"))[0]
    )


def test_a_transfer_and_its_listener_are_bounded_longer_than_a_ping() -> None:
    assert mtu.step_timeout("transfer") == mtu.step_timeout("sink") == 25  # TRANSFER_S + 5
    assert mtu.step_timeout("mtu") == mtu.step_timeout("fits") == mtu.step_timeout("over") == 10


def test_a_failures_output_is_shown_by_its_tail() -> None:
    long = "head " + "x" * 400 + " tail"  # the last 200 (300) characters, not one more
    assert judged(mtu=ran(1, "", long))[0] == (
        f"cannot read a1's eth0 MTU: {long[-200:]}\n    reproduce: reproduce it"
    )
    assert judged(fits=ran(1, long))[0] == (
        f"a1 -> b1: 1422-byte DF ping (packet = MTU 1450) failed: {long[-300:]}\n"
        "    reproduce: reproduce it"
    )
    assert judged(over=ran(1, long))[0] == (
        "a1 -> b1: a DF packet one byte over MTU 1450 failed without evidence of a refusal "
        f"(no EMSGSIZE, no 'Frag needed'): {long[-200:]}\n    reproduce: reproduce it"
    )
    assert judged(over=ran(1, "0 received"))[0] == (
        "a1 -> b1: a DF packet one byte over MTU 1450 failed without evidence of a refusal "
        "(no EMSGSIZE, no 'Frag needed'): 0 received\n    reproduce: reproduce it"
    )
    assert judged(ran(1, "", long), transfer=ran(1, long)) == [
        f"a1 -> b1: a 4350-byte TCP transfer (3 x MTU 1450) failed: {long[-300:]}\n"
        f"    reproduce: reproduce it\n    its listener: {long[-200:]} (reproduce it)"
    ]
    assert judged(ran(1, "", "bind: in use"), transfer=ran(1, "refused"))[0].endswith(
        "\n    its listener: bind: in use (reproduce it)"
    )


def test_a_transfer_must_be_counted_whole_within_its_bound() -> None:
    stalled = judged(ran(124, "", ""), transfer=ran(124, "", ""))
    assert stalled == [
        "a1 -> b1: a 4350-byte TCP transfer (3 x MTU 1450) did not complete within 20s: "
        "no output\n    reproduce: reproduce it\n    its listener: no output (reproduce it)"
    ]
    assert judged(transfer=ran(0, " \n")) == [
        "a1 -> b1: the listener counted nothing of a 4350-byte TCP transfer (3 x MTU 1450)\n"
        "    reproduce: reproduce it"
    ]
    short = judged(transfer=ran(0, "2800\n"))
    assert short == [
        "a1 -> b1: the listener counted 2800 of a 4350-byte TCP transfer (3 x MTU 1450)\n"
        "    reproduce: reproduce it"
    ]
    refused = judged(transfer=ran(1, "", "socat: Connection refused"))
    assert refused[0].startswith("a1 -> b1: a 4350-byte TCP transfer (3 x MTU 1450) failed: socat")
    missing = mtu.Ran(None, "reproduce it", "the agent on node1 exited 255")
    assert "failed: the agent on node1 exited 255" in judged(transfer=missing)[0]


def answer(jobs: Mapping[str, list[tuple[int, str, str]]]) -> str:
    return json.dumps(
        {
            "jobs": [
                {
                    "id": job_id,
                    "ok": all(s[0] == 0 for s in outcome),
                    "steps": [
                        {"exit": e, "stdout": out, "stderr": err, "timed_out": False}
                        for e, out, err in outcome
                    ],
                }
                for job_id, outcome in jobs.items()
            ]
        }
    )


def ssh(node: str, remote: str) -> str:
    """The reproduce line of a command on a node of the VXLAN lab."""
    return f"python -m lab ssh ci-debian12-vxlan {node} -- {quote(remote)}"


def test_every_node_is_asked_once_with_its_probes_and_its_pods_listeners() -> None:
    link = "2: eth0@if5: <UP> mtu 1450 qdisc noqueue"
    pod = [(0, link, ""), (0, "2 received", ""), (1, "", TOO_LONG), (0, "4350\n", "")]
    node = pod[1:]
    sink = [(0, "", "")]
    asked: dict[str, Any] = {}

    def seen(node_name: str) -> Any:
        return lambda words: asked.setdefault(node_name, json.loads(words[0]))

    answers = {
        "node1": {"probe a1": pod, "probe a2": pod, "probe node1": node, "sink b1": sink,
                  "sink b2": sink, "sink node2": sink},
        "node2": {"probe b1": pod, "probe b2": pod, "probe node2": node, "sink a1": sink,
                  "sink a2": sink, "sink node1": sink},
    }  # fmt: skip
    fake = script(
        *(
            Step(n, ("python3", "-"), stdout=answer(answers[n]), rest=seen(n))
            for n in ("node1", "node2")
        )
    )
    driver = FakeDriver(VX, fake)
    assert mtu.observe_mtu(driver, VX, PODS) == []
    fake.done()
    request = asked["node1"]
    assert request["op"] == "steps"
    assert request["parallel"] == 6
    assert sorted(j["id"] for j in request["jobs"]) == sorted(answers["node1"])
    assert all(j["keep_going"] for j in request["jobs"])
    sink_b1 = next(j for j in request["jobs"] if j["id"] == "sink b1")
    assert sink_b1["steps"][0]["argv"] == ["ip", "netns", "exec", "a1", *mtu.sink_argv(9403)]
    # each step bounded by its kind, the call by a transfer and two pings, with room to spare
    timeouts = {j["id"]: [s["timeout"] for s in j["steps"]] for j in request["jobs"]}
    assert timeouts["probe a1"] == [10, 10, 10, 25]
    assert timeouts["probe node1"] == [10, 10, 25]
    assert timeouts["sink b1"] == [25]
    assert [timeout for _, _, timeout in fake.ran] == [70, 70]


def test_what_a_node_did_not_run_or_answer_is_named_with_its_listener_and_reproduce_line() -> None:
    link = "2: eth0@if5: <UP> mtu 1450 qdisc noqueue"
    pod = [(0, link, ""), (0, "2 received", ""), (1, "", TOO_LONG), (0, "4350\n", "")]
    refused = [*pod[:3], (1, "", "socat: Connection refused")]
    sink = [(0, "", "")]
    node1 = {
        "probe a1": refused,
        "probe a2": pod[:2],
        "probe node1": pod[1:],
        "sink b1": sink,
        "sink b2": sink,
        "sink node2": sink,
    }
    node2 = {
        "probe b1": pod,
        "probe b2": pod,
        "probe node2": pod[1:],
        "sink a1": [(1, "", "socat: Address in use")],
        "sink a2": sink,
        "sink node1": sink,
    }
    fake = script(
        Step("node1", ("python3", "-"), stdout=answer(node1), rest=lambda _: None),
        Step("node2", ("python3", "-"), stdout=answer(node2), rest=lambda _: None),
    )
    problems = mtu.observe_mtu(FakeDriver(VX, fake), VX, PODS)
    fake.done()
    zeros = "head -c 4350 /dev/zero | timeout 20 socat -t 20 -"
    a1_transfer = f"{zeros} TCP:10.244.1.2:9400,retry=100,interval=0.2"
    b1_sink = "timeout 20 socat -t 20 TCP-LISTEN:9400,reuseaddr 'SYSTEM:wc -c'"
    a2_over = "ping -n -M do -W 3 -i 0.2 -c 1 -s 1423 10.244.1.3"
    a2_transfer = f"{zeros} TCP:10.244.1.3:9401,retry=100,interval=0.2"
    assert problems == [
        "a1 -> b1: a 4350-byte TCP transfer (3 x MTU 1450) failed: socat: Connection refused\n"
        f"    reproduce: {ssh('node1', f'sudo -n ip netns exec a1 sh -c {quote(a1_transfer)}')}\n"
        "    its listener: socat: Address in use "
        f"({ssh('node2', f'sudo -n ip netns exec b1 {b1_sink}')})",
        # a2's job stopped after two steps: the others did not run
        "a2 -> b2: a DF packet one byte over MTU 1450 failed without evidence of a refusal "
        "(no EMSGSIZE, no 'Frag needed'): the step did not run\n"
        f"    reproduce: {ssh('node1', f'sudo -n ip netns exec a2 {a2_over}')}",
        "a2 -> b2: a 4350-byte TCP transfer (3 x MTU 1450) failed: the step did not run\n"
        f"    reproduce: {ssh('node1', f'sudo -n ip netns exec a2 sh -c {quote(a2_transfer)}')}",
    ]


def test_a_node_whose_agent_failed_has_every_step_named_with_that_failure() -> None:
    link = "2: eth0@if5: <UP> mtu 1450 qdisc noqueue"
    pod = [(0, link, ""), (0, "2 received", ""), (1, "", TOO_LONG), (0, "4350\n", "")]
    sink = [(0, "", "")]
    node1 = {"probe a1": pod, "probe a2": pod, "probe node1": pod[1:], "sink b1": sink,
             "sink b2": sink, "sink node2": sink}  # fmt: skip
    fake = script(
        Step("node1", ("python3", "-"), stdout=answer(node1), rest=lambda _: None),
        Step("node2", ("python3", "-"), exit_code=255, stderr="boom\n", rest=lambda _: None),
    )
    problems = mtu.observe_mtu(FakeDriver(VX, fake), VX, PODS)
    fake.done()
    assert problems[0] == (
        "cannot read b1's eth0 MTU: the agent on node2 exited 255: boom\n"
        f"    reproduce: {ssh('node2', 'sudo -n ip netns exec b1 ip -o link show eth0')}"
    )
    assert len(problems) == 4 + 4 + 3  # b1, b2 and node2: every step of each
