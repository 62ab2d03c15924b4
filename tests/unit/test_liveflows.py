"""The live flows' plumbing against strict fake nodes: which pods measure which, what each node
is asked to start (the agent copied, a transient unit in the pod's namespace), the wait until
the flows carry traffic, the marks, and the results collected and cleaned up."""

from __future__ import annotations

import json
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from e2e import ledger, liveflows, probes
from e2e.drivers.base import DriverError, NodeRunner, Pod
from e2e.drivers.cni import CniHandle, echo_server
from e2e.drivers.cri import CriHandle
from lab.common import waits
from lab.model.labfile import load_lab
from tests.fakes import Step, channels, script

ROOT = Path(__file__).resolve().parents[2]
LAB = load_lab(ROOT / "labs" / "ci-debian12.yaml")
FAST = waits.Policy("fast", timeout_s=30, interval_s=0.01)
TAG = "nl-r1-node2-0-flows"


def cni_pod(name: str, node: str, ip: str) -> Pod[CniHandle]:
    return Pod(name, node, IPv4Address(ip), (echo_server(),), CniHandle({}, {"echo": 7}))


def pods() -> list[Pod[Any]]:
    return [
        cni_pod("nl-r1-node1-0", "node1", "10.244.1.2"),
        cni_pod("nl-r1-node1-1", "node1", "10.244.1.3"),
        cni_pod("nl-r1-node2-0", "node2", "10.244.2.2"),
        cni_pod("nl-r1-node2-1", "node2", "10.244.2.3"),
        cni_pod("nl-r1-node3-0", "node3", "10.244.3.2"),
    ]


def test_the_first_pod_of_every_other_node_measures_the_first_pod_of_the_faulted_one() -> None:
    pairs = liveflows.plan_pairs(pods(), "node2")
    assert [(p.source.name, p.target.name, p.index) for p in pairs] == [
        ("nl-r1-node1-0", "nl-r1-node2-0", 0),
        ("nl-r1-node3-0", "nl-r1-node2-0", 1),
    ]
    assert liveflows.plan_pairs(pods(), "node9") == []


def test_a_pods_namespace_is_named_by_its_driver() -> None:
    assert liveflows.netns_name(pods()[0]) == "nl-r1-node1-0"
    handle = CriHandle("sb", "u", "ns", {}, "/var/run/netns/cni-1234", 42)
    cri = Pod("p", "node1", IPv4Address("10.244.1.9"), (), handle)
    assert liveflows.netns_name(cri) == "cni-1234"
    other = Pod("p", "node1", IPv4Address("10.244.1.9"), (), {"namespace": "k8s"})
    assert liveflows.netns_name(other) is None


def test_a_flow_starts_as_a_transient_unit_in_the_pods_namespace() -> None:
    files = liveflows.Files(TAG)
    (pair,) = liveflows.plan_pairs(pods()[:3], "node2")
    request = liveflows.client_request(files, pair)
    assert request["host"] == "10.244.2.2"
    assert (request["port"], request["echo_port"]) == (ledger.FLOW_PORT, 8080)
    assert request["marks"] == {
        "inject": f"/run/netlab/flows/{TAG}.mark.inject",
        "healed": f"/run/netlab/flows/{TAG}.mark.healed",
    }
    script_ = liveflows.start_script(
        252, "python3", files, f"{TAG}-client0", "nl-r1-node1-0", request
    )
    agent = f"/run/netlab/flows/{TAG}.agent.py"
    head = (
        f"mkdir -p /run/netlab/flows && cat > {agent} && systemd-run --unit={TAG}-client0 "
        "--collect --quiet --property=KillMode=control-group ip netns exec nl-r1-node1-0 "
        f"python3 {agent} "
    )
    assert script_.startswith(head)
    assert json.loads(script_[len(head) :].strip("'")) == request
    # systemd 219 (CentOS 7) has no --collect
    assert "--collect" not in liveflows.start_script(219, "python", files, "u", "ns", request)


def carrying(echoed: int = 5) -> str:
    return json.dumps(
        {
            "tcp": {"connected": True, "sent": 5, "echoed": echoed, "error": ""},
            "udp": {"sent": 5, "received": 5},
            "connect": {"attempts": 2, "failures": 0},
        }
    )


def starts(node: str, unit: str, check: Callable[[str], None]) -> Step:
    def stdin(text: str | None) -> None:
        assert text == probes.agent_source()

    return Step(node, ("sh", "-c"), rest=lambda rest: check(rest[0]), stdin=stdin)


def cleanup(node: str) -> list[Step]:
    return [
        Step(node, ("systemctl", "stop", f"{TAG}-*.service")),
        Step(node, ("sh", "-c", f"rm -f /run/netlab/flows/{TAG}.*")),
    ]


def path(what: str) -> str:
    return f"/run/netlab/flows/{TAG}.{what}"


def test_flows_start_carry_traffic_are_marked_and_collected() -> None:
    def server(line: str) -> None:
        assert f"--unit={TAG}-server" in line
        assert "ip netns exec nl-r1-node2-0" in line

    def client(line: str) -> None:
        assert f"--unit={TAG}-client0" in line
        assert "ip netns exec nl-r1-node1-0" in line

    result = json.loads(carrying())
    result.update(end_ms=9000, marks={"inject": 1000, "healed": 5000})
    result["tcp"].update(retransmits=0, stalls=[])
    result["udp"].update(lost=0, reordered=0, duplicated=0, windows=[])
    result["connect"].update(windows=[], answered_by=["nl-r1-node2-0"], last_error="")
    steps = script(
        starts("node2", "server", server),
        starts("node1", "client0", client),
        Step("node1", ("cat", path("client0.status")), exit_code=1),  # not written yet
        Step("node1", ("cat", path("client0.status")), stdout=carrying(echoed=0)),
        Step("node1", ("cat", path("client0.status")), stdout=carrying()),
        Step("node1", ("touch", path("mark.inject"))),
        Step("node1", ("touch", path("mark.healed")), exit_code=124),  # its agent went: again
        Step("node1", ("touch", path("mark.healed"))),
        Step("node1", ("touch", path("client.stop"))),
        Step("node1", ("cat", path("client0.result")), stdout=json.dumps(result)),
        *cleanup("node1"),
        *cleanup("node2"),
    )
    runner = NodeRunner(channels("ci-debian12", ["node1", "node2"], steps))
    pairs = liveflows.plan_pairs(pods()[:3], "node2")
    flows = liveflows.start(runner, LAB, TAG, pairs, FAST)
    liveflows.mark(flows, "inject")
    liveflows.mark(flows, "healed")
    (figures,) = liveflows.collect(flows, FAST)
    steps.done()
    assert figures.marks == {"inject": 1000, "healed": 5000}
    assert figures.connect is not None
    assert figures.connect.answered_by == ("nl-r1-node2-0",)
    judged = ledger.judge("private link down", "node2", ledger.Budget("none"), 4.0, [figures])
    assert judged.within_budget, judged.problems


def test_flows_that_never_carry_traffic_are_stopped_and_say_what_they_saw() -> None:
    stuck = Step("node1", ("cat", path("client0.status")), stdout=carrying(echoed=0))
    steps = script(
        starts("node2", "server", lambda line: None),
        starts("node1", "client0", lambda line: None),
        stuck,
        stuck,
        stuck,  # the policy's three attempts
        *cleanup("node1"),
        *cleanup("node2"),
        stuck,  # read again for the error
    )
    runner = NodeRunner(channels("ci-debian12", ["node1", "node2"], steps))
    pairs = liveflows.plan_pairs(pods()[:3], "node2")
    three = waits.Policy("the flows carry traffic", timeout_s=30, interval_s=0.01, max_attempts=3)
    with pytest.raises(DriverError, match="the flows carry traffic") as exc:
        liveflows.start(runner, LAB, TAG, pairs, three)
    steps.done()
    assert "'echoed': 0" in str(exc.value)


def test_a_client_without_a_result_is_a_pair_without_figures() -> None:
    flows = liveflows.Flows(
        NodeRunner(
            channels(
                "ci-debian12",
                ["node1", "node2"],
                script(
                    Step("node1", ("touch", path("client.stop"))),
                    *[Step("node1", ("cat", path("client0.result")), exit_code=1)] * 2,
                    *cleanup("node1"),
                    *cleanup("node2"),
                ),
            )
        ),
        liveflows.Files(TAG),
        liveflows.plan_pairs(pods()[:3], "node2"),
        ("node1",),
        "node2",
    )
    once = waits.Policy("once", timeout_s=0, interval_s=0.01, max_attempts=1)
    (figures,) = liveflows.collect(flows, once)
    assert figures.tcp is None
    assert figures.missing == f"no result in {path('client0.result')} within 0s"


def status(echoed: int, received: int, attempts: int, failures: int) -> dict[str, Any]:
    return {
        "tcp": {"connected": True, "sent": echoed, "echoed": echoed, "error": ""},
        "udp": {"sent": received, "received": received},
        "connect": {"attempts": attempts, "failures": failures},
    }


def test_flows_moved_on_only_when_every_flow_made_progress_since_the_first_status() -> None:
    before = status(10, 10, 5, 2)
    assert liveflows.moved_on(before, status(11, 11, 7, 3))
    assert not liveflows.moved_on(before, status(10, 11, 7, 3)), "no TCP line echoed since"
    assert not liveflows.moved_on(before, status(11, 10, 7, 3)), "no datagram answered since"
    assert not liveflows.moved_on(before, status(11, 11, 8, 5)), "every new connection failed"
    assert not liveflows.moved_on(before, None), "no status: nothing seen"
    assert liveflows.moved_on(None, status(1, 1, 1, 0)), "no first status: carrying is enough"
    assert not liveflows.moved_on(None, status(1, 1, 1, 1))
