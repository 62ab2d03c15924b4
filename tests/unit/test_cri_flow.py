"""The flow checks' judgements (e2e/flow.py) on views written by hand, and the CRI driver's
netns probing (no runtime call) used while containerd is down."""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path

from e2e import flow
from e2e.drivers.base import Pod, Probe
from e2e.drivers.cri import CriDriver, CriHandle
from lab.common import waits
from lab.model.labfile import load_lab
from lab.runtime.images import ImageSet
from tests import fakes

ROOT = Path(__file__).resolve().parents[2]
LAB = load_lab(ROOT / "labs" / "ci-debian12.yaml")
IMAGES = ImageSet("/a.tar", (("client", "c:1"), ("echo", "e:1"), ("pause", "p:1")))
CNI_RESULT = {
    "Interfaces": {
        "cni0": {"IPConfigs": None, "Mac": "0a:58:0a:f4:01:01", "Sandbox": ""},
        "eth0": {"IPConfigs": [{"IP": "10.244.1.7"}], "Sandbox": "/var/run/netns/cni-1"},
        "veth3f2a9c1d": {"IPConfigs": None, "Mac": "6a:1e:...", "Sandbox": ""},
    }
}
POD = Pod(
    "nl-r1-p",
    "node1",
    IPv4Address("10.244.1.7"),
    (),
    CriHandle("sb1", "u", "nl-r1", {"echo": "c1"}, "/var/run/netns/cni-1", 4242, {}, CNI_RESULT),
)


def view(**containers: tuple[int, str]) -> flow.NamespaceView:
    return flow.NamespaceView(
        "net:[4026532300]", "net:[4026532300]", "/usr/bin/catatonit -P ", containers, "repro"
    )


def test_containers_in_the_infra_processs_namespace_pass() -> None:
    assert flow.shared_namespace_problems(view(echo=(5, "net:[4026532300]"))) == []


def test_a_container_elsewhere_is_named_with_its_pid_and_namespace() -> None:
    problems = flow.shared_namespace_problems(
        view(echo=(5, "net:[4026532300]"), rogue=(9, "net:[4026532411]"))
    )
    assert problems == [
        "container rogue (pid 9) is in net:[4026532411], not the pod's network namespace "
        "net:[4026532300] held by the infra process",
        "reproduce: repro",
    ]


def test_the_host_side_veth_comes_from_the_runtimes_cni_result() -> None:
    assert flow.host_veths(CNI_RESULT) == ["veth3f2a9c1d"]
    assert flow.host_veths(None) == []


def test_release_problems_name_what_outlived_each_call() -> None:
    alive = flow.Traces(lease=True, veth=True, netns=True, reproduce="r")
    gone = flow.Traces(lease=False, veth=False, netns=False, reproduce="r")
    assert flow.release_problems(POD, alive, gone, gone) == []
    leaked = flow.Traces(lease=True, veth=False, netns=False, reproduce="r")
    assert flow.release_problems(POD, alive, leaked, gone)[0] == (
        "StopPodSandbox left the IPAM lease of 10.244.1.7 (CNI DEL did not release)"
    )
    pinned = flow.Traces(lease=False, veth=False, netns=True, reproduce="r")
    assert flow.release_problems(POD, alive, gone, pinned)[0] == (
        "RemovePodSandbox left the network namespace /var/run/netns/cni-1"
    )


def on_fakes(runtime: fakes.FakeCri, steps: fakes.Script) -> CriDriver:
    """A CRI driver on a fake runtime and scripted node commands."""
    return CriDriver(
        LAB,
        fakes.channels(LAB.name, LAB.node_names, steps),
        "r1",
        connect=lambda node: runtime,
        image_set=IMAGES,
    )


def test_netns_probing_asks_the_node_agent_to_enter_the_sandbox_and_makes_no_cri_call() -> None:
    answer = {"results": [{"id": "a->b", "ok": True, "answer": "10.244.1.7\n"}]}
    requests: list[dict[str, object]] = []

    def seen(words: tuple[str, ...]) -> None:
        requests.append(json.loads(words[0]))

    steps = fakes.script(
        fakes.Step("node1", ("python3", "-"), stdout=json.dumps(answer), rest=seen)
    )
    runtime = fakes.FakeCri("node1", [])
    driver = on_fakes(runtime, steps).probing_from_netns()
    target = Pod("b", "node2", IPv4Address("10.244.2.9"), (), POD.handle)
    (obs,) = driver.observe([Probe("a->b", POD, target)]).values()
    assert obs.seen_source == "10.244.1.7"
    assert requests[0]["cells"] == [
        {
            "id": "a->b",
            "host": "10.244.2.9",
            "port": 8080,
            "netns": "/var/run/netns/cni-1",
            "send": "",
            "timeout": 5.0,
        }
    ]
    assert runtime.calls == []
    assert obs.reproduce == (
        "python -m lab ssh ci-debian12 node1 -- 'sudo -n nsenter --net=/var/run/netns/cni-1 "
        "-- timeout 5 socat -u TCP:10.244.2.9:8080,connect-timeout=3 -'"
    )
    steps.done()


def test_a_failure_bundle_on_a_lab_with_containerd_holds_the_runtimes_view() -> None:
    from e2e.diagnostics import NODE_STATE, RUNTIME_STATE, node_state_commands

    titles = [title for title, _ in node_state_commands(LAB)]
    assert titles[: len(NODE_STATE)] == [title for title, _ in NODE_STATE]
    assert ("cri containers", ("ctr", "-n", "k8s.io", "containers", "list")) in RUNTIME_STATE
    assert ("cri tasks", ("ctr", "-n", "k8s.io", "tasks", "list")) in RUNTIME_STATE
    assert "cri tasks" in titles
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    assert node_state_commands(guide) == NODE_STATE


def test_labs_with_containerd_take_the_containerd_fault_with_a_recovery_bound() -> None:
    from e2e.faults import ContainerdRestart, faults_for, make_fault

    assert "containerd-restarted" in faults_for(LAB)
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    assert "containerd-restarted" not in faults_for(guide)
    fault = make_fault("containerd-restarted", LAB, "node2", lambda: 0)
    assert isinstance(fault, ContainerdRestart)
    assert fault.expected.isolated == frozenset()
    assert fault.expected.frozen == frozenset()
    assert fault.bound_s == 120
    assert not fault.kills_pods


def test_after_a_restart_the_runtime_is_back_only_when_its_cri_answers_too() -> None:
    from lab.adapters.cri import CriError

    # containerd's API answers before its CRI plugin has loaded the pods again (CI saw
    # "server is not initialized yet" right after `ctr version` answered)
    steps = fakes.script(
        fakes.Step("node1", ("ctr", "version"), exit_code=1),
        fakes.Step("node1", ("ctr", "version")),
        fakes.Step("node1", ("ctr", "version")),
    )
    runtime = fakes.FakeCri("node1", [])
    runtime.fail["Status"] = CriError(
        "Status", "/fake/node1.sock", "UNKNOWN", "server is not initialized yet"
    )
    driver = on_fakes(runtime, steps)
    assert [flow.runtime_back(driver, "node1") for _ in range(3)] == [False, False, True]
    assert runtime.calls == [("Status", ""), ("Status", "")]  # not asked while ctr failed
    steps.done()


def test_a_runtime_that_never_comes_back_is_one_problem_naming_the_node() -> None:
    steps = fakes.script(*(fakes.Step("node1", ("ctr", "version"), exit_code=1) for _ in range(20)))
    driver = on_fakes(fakes.FakeCri("node1", []), steps)
    quick = waits.Policy("containerd answers again", timeout_s=0.25, interval_s=0.1)
    (problem,) = flow.wait_runtime_back(driver, "node1", quick)
    assert problem.startswith("node1: ")
    assert "containerd answers again" in problem
