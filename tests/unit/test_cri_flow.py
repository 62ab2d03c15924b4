"""The flow checks' judgements (e2e/flow.py) on views written by hand, and the CRI driver's
netns probing (no runtime call) used while containerd is down."""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from e2e import flow
from e2e.drivers.base import Pod, Probe
from e2e.drivers.cri import CriDriver, CriHandle
from lab.common import waits
from lab.model.labfile import load_lab
from lab.runtime.cri import runtime_v1_pb2 as pb
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


def test_a_runtime_that_is_back_is_no_problem_after_one_look() -> None:
    steps = fakes.script(fakes.Step("node1", ("ctr", "version")))
    runtime = fakes.FakeCri("node1", [])
    driver = on_fakes(runtime, steps)
    quick = waits.Policy("containerd answers again", timeout_s=0.25, interval_s=0.1)
    assert flow.wait_runtime_back(driver, "node1", quick) == []
    assert runtime.calls == [("Status", "")]
    steps.done()


# --- the runtime says who it is (CRI Version()) ---


def version(
    name: str = "containerd", release: str = "1.6.20~ds1", api: str = "v1"
) -> pb.VersionResponse:
    return pb.VersionResponse(
        version="0.1.0", runtime_name=name, runtime_version=release, runtime_api_version=api
    )


@pytest.mark.parametrize(
    ("said", "upstream"),
    [
        ("v1.6.20", "1.6.20"),  # containerd's own release builds
        ("1.6.20~ds1", "1.6.20"),  # Debian 12's package
        ("1.6.20+unknown", "1.6.20"),  # a build without version ldflags
        ("1.6.20-rc.1", "1.6.20"),
        ("1.7.0~ds1-1", "1.7.0"),
        ("1.6.2", "1.6.2"),
    ],
)
def test_a_runtime_version_is_read_as_its_upstream_number(said: str, upstream: str) -> None:
    assert flow.upstream_version(said) == upstream


def test_debian_12s_containerd_is_the_ci_labs_runtime() -> None:
    assert flow.runtime_identity_problems("node1", version(), "containerd", "1.6.20", "r") == []
    assert flow.runtime_identity_problems("node1", version(), "containerd", None, "r") == []


def test_another_runtime_on_the_socket_is_named_with_what_it_said() -> None:
    assert flow.runtime_identity_problems(
        "node2", version("cri-o", "1.6.20"), "containerd", "1.6.20", "ctr version"
    ) == [
        "node2: the runtime on the CRI socket says it is 'cri-o' '1.6.20' (CRI 'v1'); the lab "
        "installs containerd\n    reproduce: ctr version"
    ]


def test_another_version_or_api_is_each_its_own_problem() -> None:
    assert flow.runtime_identity_problems(
        "node1", version(release="1.6.21~ds1", api="v1alpha2"), "containerd", "1.6.20", "r"
    ) == [
        "node1: the runtime speaks CRI 'v1alpha2', not the suite's 'v1': 'containerd' "
        "'1.6.21~ds1' (CRI 'v1alpha2')\n    reproduce: r",
        "node1: the runtime is version '1.6.21~ds1'; the lab pins 1.6.20\n    reproduce: r",
    ]
    # a version the lab does not pin is not judged
    assert (
        flow.runtime_identity_problems("node1", version(release="9.9"), "containerd", None, "r")
        == []
    )


def test_the_version_is_reproduced_with_ctr_on_the_node() -> None:
    driver = on_fakes(fakes.FakeCri("node1", ["10.244.1.7"]), fakes.script())
    assert flow.version_reproduce(driver, "node1") == (
        "python -m lab ssh ci-debian12 node1 -- 'sudo -n ctr --address "
        "/run/containerd/containerd.sock --namespace k8s.io version'"
    )
    answer = driver.cri("node1").version()
    assert (answer.runtime_name, answer.runtime_version, answer.runtime_api_version) == (
        "containerd",
        "1.6.20~ds1",
        "v1",
    )


# --- one IP everywhere; a dead infra process; a runtime restart: the judgements ---


def views(**over: Any) -> flow.IpViews:
    base: dict[str, Any] = {
        "status": ["10.244.1.7"],
        "cni": ["10.244.1.7"],
        "own": ["10.244.1.7"],
        "seen": ["10.244.1.7"],
        "peer": "nl-r1-q",
        "own_reproduce": "own",
        "seen_reproduce": "seen",
    }
    return flow.IpViews(**{**base, **over})


def test_one_address_in_every_view_agrees() -> None:
    assert flow.ip_views_problems(views()) == []


def test_each_view_that_differs_from_the_runtimes_status_is_named_with_both_reproduces() -> None:
    assert flow.ip_views_problems(views(cni=[], own=["10.244.1.7", "10.244.1.8"])) == [
        "the runtime's cached CNI result: (nothing), PodSandboxStatus: ['10.244.1.7']",
        "the pod's own interfaces: ['10.244.1.7', '10.244.1.8'], PodSandboxStatus: ['10.244.1.7']",
        "the pod's view: own",
        "the peer's view: seen",
    ]
    assert flow.ip_views_problems(views(seen=["10.244.2.1"])) == [
        "the source nl-r1-q's echo server saw: ['10.244.2.1'], PodSandboxStatus: ['10.244.1.7']",
        "the pod's view: own",
        "the peer's view: seen",
    ]


def test_a_status_without_exactly_one_address_is_a_problem_even_when_all_agree() -> None:
    two = ["10.244.1.7", "10.244.1.8"]
    assert flow.ip_views_problems(views(status=two, cni=two, own=two, seen=two))[:2] == [
        "PodSandboxStatus reports ['10.244.1.7', '10.244.1.8']; one IPv4 address expected",
        "PodSandboxStatus: ['10.244.1.7', '10.244.1.8'], PodSandboxStatus: ['10.244.1.7']",
    ]
    none = flow.ip_views_problems(views(status=[], cni=[], own=[], seen=[]))
    assert none == [
        "PodSandboxStatus reports []; one IPv4 address expected",
        "the pod's view: own",
        "the peer's view: seen",
    ]


GONE = flow.Traces(lease=False, veth=False, netns=False, reproduce="ls lease")
HELD = flow.Traces(lease=True, veth=False, netns=False, reproduce="ls lease")


def test_a_dead_sandbox_noticed_and_released_has_no_problem() -> None:
    assert flow.dead_sandbox_problems(POD, 4242, None, GONE, GONE, []) == []


def test_a_dead_sandbox_not_noticed_leaking_or_listed_says_each_and_how_to_see_it() -> None:
    assert flow.dead_sandbox_problems(POD, 4242, "waited 60s", GONE, GONE, []) == [
        "waited 60s (pod nl-r1-p, killed pid 4242)",
        "reproduce: ls lease",
    ]
    assert flow.dead_sandbox_problems(POD, 4242, None, HELD, GONE, ["sandbox sb1"]) == [
        "the lease of 10.244.1.7 outlived the removal of the dead sandbox",
        "the runtime still lists ['sandbox sb1']",
        "reproduce: ls lease",
    ]
    assert flow.dead_sandbox_problems(POD, 4242, None, GONE, HELD, []) == [
        "the lease of 10.244.1.7 outlived the removal of the dead sandbox",
        "reproduce: ls lease",
    ]


def test_a_restart_that_changed_nothing_has_no_problem() -> None:
    states = {"p": "SANDBOX_READY echo=CONTAINER_RUNNING"}
    assert flow.restart_outcome_problems([], [], [], states, dict(states)) == []


def test_a_restart_names_cells_before_and_after_failed_restarts_and_a_changed_view() -> None:
    assert flow.restart_outcome_problems(
        ["a->b X"], ["node1: systemctl restart containerd exited 1: no"], ["a->c X"],
        {"p": "SANDBOX_READY"}, {"p": "SANDBOX_NOTREADY"},
    ) == [
        "before the restart: a->b X",
        "node1: systemctl restart containerd exited 1: no",
        "after the restart: a->c X",
        "the runtime's view of the pods changed: before {\n \"p\": \"SANDBOX_READY\"\n}, "
        "after {\n \"p\": \"SANDBOX_NOTREADY\"\n}",
    ]  # fmt: skip


def test_dump_is_sorted_indented_json_that_shows_anything() -> None:
    assert flow.dump({"b": 1, "a": IPv4Address("10.0.0.1")}) == ('{\n "a": "10.0.0.1",\n "b": 1\n}')


# --- exact judgements of the namespace view, the host veth and the release ---


def test_a_pinned_namespace_that_is_no_namespace_and_an_infra_elsewhere_are_each_named() -> None:
    bad = flow.NamespaceView(
        "/var/run/netns/cni-1", "net:[4026532411]", " /pause ", {"echo": (5, "net:[1]")}, "r"
    )
    assert flow.shared_namespace_problems(bad) == [
        "the sandbox's pinned network namespace is /var/run/netns/cni-1",
        "the infra process (/pause) is in net:[4026532411], not the sandbox's network "
        "namespace /var/run/netns/cni-1",
        "container echo (pid 5) is in net:[1], not the pod's network namespace "
        "/var/run/netns/cni-1 held by the infra process",
        "reproduce: r",
    ]


def test_only_veths_outside_any_sandbox_are_the_host_side() -> None:
    result = {
        "Interfaces": {
            "vethb": {"Sandbox": ""},
            "vetha": {},
            "veth-in-pod": {"Sandbox": "/var/run/netns/cni-1"},
            "cni0": {"Sandbox": ""},
            "vethz": "not a dict",
        }
    }
    assert flow.host_veths(result) == ["vetha", "vethb"]
    assert flow.host_veths({"Interfaces": ["veth0"]}) == []
    assert flow.host_veths({}) == []


def traces(lease: bool, veth: bool, netns: bool) -> flow.Traces:
    return flow.Traces(lease=lease, veth=veth, netns=netns, reproduce="ls")


def test_every_release_failure_is_named_once_with_the_reproduce_last() -> None:
    made = traces(True, True, True)
    assert flow.release_problems(
        POD, made, traces(True, False, True), traces(True, True, True)
    ) == [
        "StopPodSandbox left the IPAM lease of 10.244.1.7 (CNI DEL did not release)",
        "RemovePodSandbox left the network namespace /var/run/netns/cni-1",
        "after RemovePodSandbox the lease or the veth is still there",
        "reproduce: ls",
    ]
    gone = traces(False, False, False)
    assert flow.release_problems(
        POD, made, traces(False, True, True), traces(False, True, False)
    ) == [
        "StopPodSandbox left the pod's host-side veth",
        "after RemovePodSandbox the lease or the veth is still there",
        "reproduce: ls",
    ]
    assert flow.release_problems(POD, made, gone, traces(True, False, False)) == [
        "after RemovePodSandbox the lease or the veth is still there",
        "reproduce: ls",
    ]


@pytest.mark.parametrize("made", [(False, True, True), (True, False, True), (True, True, False)])
def test_a_running_pod_missing_any_of_its_three_traces_is_named(
    made: tuple[bool, bool, bool],
) -> None:
    gone = traces(False, False, False)
    lease, veth, netns = made
    assert flow.release_problems(POD, traces(*made), gone, gone) == [
        f"nl-r1-p running: lease {lease}, host veth {veth}, netns {netns}: the runtime's CNI "
        "ADD should have made all three",
        "reproduce: ls",
    ]
