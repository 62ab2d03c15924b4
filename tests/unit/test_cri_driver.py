"""The CRI driver against strict fakes: a fake runtime per node at the protocol level
(tests/fakes.py FakeCri) and strict SSH channels for what runs on the nodes themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e import probes, scenarios
from e2e.drivers import drivers_for, model_drivers, why_no_driver
from e2e.drivers.base import DriverError, PodRequest, Probe
from e2e.drivers.cri import E2E_LABEL, CriDriver, CriPod
from lab.adapters.cri import CriError
from lab.common import waits
from lab.model.labfile import load_lab
from lab.net import reachability as rm
from lab.runtime.cri import messages
from lab.runtime.echo import identity_echo_args
from tests import fakes

ROOT = Path(__file__).resolve().parents[2]
LAB = load_lab(ROOT / "labs" / "ci-debian12.yaml")
IMAGES = fakes.TEST_IMAGES
RUN = "r1a2b3c"


def make(
    steps: fakes.Script | None = None, echo_listens: waits.Policy | None = None
) -> tuple[CriDriver, dict[str, fakes.FakeCri]]:
    """A driver over fake runtimes; `echo_listens` None: pods are handed out without reading
    their sockets (the test that does scripts those reads)."""
    runtimes = {
        "node1": fakes.FakeCri("node1", ["10.244.1.2", "10.244.1.3", "10.244.1.4"]),
        "node2": fakes.FakeCri("node2", ["10.244.2.2", "10.244.2.3", "10.244.2.4"]),
    }
    channels = fakes.channels(LAB.name, LAB.node_names, steps or fakes.script())
    driver = CriDriver(
        LAB,
        channels,
        RUN,
        connect=runtimes.__getitem__,
        image_set=IMAGES,
        echo_listens=echo_listens,
    )
    return driver, runtimes


def fleet(driver: CriDriver) -> list[PodRequest]:
    return scenarios.fleet_requests(driver, RUN, scenarios.fleet_slots(LAB, 1))


def test_the_cri_driver_runs_on_labs_with_containerd_only() -> None:
    assert drivers_for(LAB) == ("cni", "cri")
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    assert "cri" not in drivers_for(guide)
    with pytest.raises(ValueError, match="has no CRI runtime"):
        CriDriver(guide, {}, RUN, connect=lambda n: fakes.FakeCri(n, []), image_set=IMAGES)


def test_the_network_model_runs_on_the_labs_own_pods_unless_asked_for_more() -> None:
    three = load_lab(ROOT / "labs" / "ci-debian12-3node.yaml")
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    # the most faithful pods each lab has: the runtime's, the suite's own, Kubernetes'
    assert model_drivers(LAB, "lab") == ("cri",)
    assert model_drivers(three, "lab") == ("cni",)
    assert model_drivers(guide, "lab") == ("k8s",)
    assert model_drivers(LAB, "all") == ("cni", "cri")
    assert model_drivers(guide, "all") == ("cni", "k8s")
    assert model_drivers(LAB, " cri, cni,cri ") == ("cri", "cni")


@pytest.mark.parametrize(
    ("choice", "says"),
    [
        ("k8s", "the k8s driver needs a lab with a Kubernetes control plane"),
        ("cri,docker", "the docker driver needs a driver named 'docker', and there is none"),
        ("", "no driver named"),
        (" , ", "no driver named"),
    ],
)
def test_a_drivers_choice_the_lab_cannot_run_names_it_and_what_the_lab_has(
    choice: str, says: str
) -> None:
    with pytest.raises(ValueError, match=r"^--drivers ") as err:
        model_drivers(LAB, choice)
    assert str(err.value).startswith(f"--drivers {choice!r}: {says}")
    assert str(err.value).endswith(
        "Use lab, all, or names among cni,cri (what lab ci-debian12 supports)"
    )


def test_a_test_pinned_to_a_driver_the_lab_lacks_is_skipped_with_what_it_needs() -> None:
    # the 3-node CI lab has no runtime: its [cri] flow checks skip, they do not error
    three = load_lab(ROOT / "labs" / "ci-debian12-3node.yaml")
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    assert why_no_driver("cri", LAB) is None
    assert why_no_driver("cni", three) is None
    assert why_no_driver("k8s", guide) is None
    assert why_no_driver("cri", three) == (
        "the cri driver needs a lab with `runtime: containerd` (e.g. ci-debian12); "
        f"lab ci-debian12-3node has runtime: {three.runtime}"
    )
    assert why_no_driver("k8s", LAB) == (
        "the k8s driver needs a lab with a Kubernetes control plane (`kubernetes:`, "
        "e.g. guide-centos7 on a KVM host with internet)"
    )
    assert why_no_driver("docker", LAB) == (
        "the docker driver needs a driver named 'docker', and there is none"
    )


def test_pods_are_made_as_kubelet_makes_them_labelled_with_the_run() -> None:
    driver, runtimes = make()
    pods = driver.create_pods(fleet(driver))
    assert [(p.node, str(p.ip)) for p in pods] == [("node1", "10.244.1.2"), ("node2", "10.244.2.2")]
    rt = runtimes["node1"]
    assert [c[0] for c in rt.calls] == [
        "RunPodSandbox",
        "CreateContainer",
        "StartContainer",
        "CreateContainer",
        "StartContainer",
        "PodSandboxStatus",
        "ContainerStatus",
        "ContainerStatus",
    ]
    assert rt.ready_waits == 1
    (sandbox,) = rt.sandboxes.values()
    assert sandbox["labels"][E2E_LABEL] == "true"
    assert sandbox["labels"][messages.RUN_LABEL] == RUN
    assert sandbox["pod"].namespace == f"nl-{RUN}"
    echo, client = (rt.containers[i] for i in sorted(rt.containers))
    assert (echo["image"], echo["argv"]) == (
        "netlab.invalid/client:0123456789ab",
        identity_echo_args(8080),
    )
    # the pod's name in every container's environment, as the downward API hands it: the
    # echo server says it with every answer
    assert echo["env"] == {"NETLAB_POD": sandbox["pod"].name}
    assert client["image"] == "netlab.invalid/client:0123456789ab"
    handle = pods[0].handle
    assert handle.netns == f"/var/run/netns/cni-{handle.sandbox_id}"
    assert handle.infra_pid == 101
    assert handle.pids == {"echo": 102, "client": 103}
    assert handle.cni_result is not None
    assert driver.client_of(pods[0]) == "client"


PROCNET = ROOT / "tests" / "data" / "procnet"


def test_pods_are_handed_out_once_their_echo_servers_listen_in_the_sandbox_netns() -> None:
    def tables(node: str, state: str) -> list[fakes.Step]:
        netns = f"--net=/var/run/netns/cni-sb01nl-{RUN}-cri-{node}-p0"
        return [
            fakes.Step(node, ("nsenter", netns, "--", "cat", f"/proc/net/{proto}"), table)
            for proto in ("tcp", "udp")
            for table in [(PROCNET / f"{proto}-{state}.txt").read_text()]
        ]

    steps = fakes.script(
        *tables("node1", "none"), *tables("node2", "echo"), *tables("node1", "echo")
    )
    quick = waits.Policy("echo servers listen (test)", timeout_s=5, interval_s=0)
    driver, runtimes = make(steps, echo_listens=quick)
    pods = driver.create_pods(fleet(driver))
    steps.done()
    assert [p.node for p in pods] == ["node1", "node2"]
    assert all(rt.ready_waits == 1 for rt in runtimes.values())


def test_a_pod_that_fails_takes_every_pod_of_the_request_with_it() -> None:
    steps = fakes.script(
        fakes.Step("node1", ("rm", "-rf", "--"), rest=lambda words: None),
    )
    driver, runtimes = make(steps)
    runtimes["node2"].fail["CreateContainer"] = CriError(
        "CreateContainer",
        "/s",
        "UNKNOWN",
        'failed to create containerd container: image "x" not found',
    )
    with pytest.raises(DriverError, match=r"1 of 2 pod\(s\) did not start") as info:
        driver.create_pods(fleet(driver))
    assert "node2: pod nl-r1a2b3c-cri-node2-p0: CRI CreateContainer" in str(info.value)
    assert runtimes["node1"].sandboxes == {}
    assert runtimes["node2"].sandboxes == {}
    assert ("StopPodSandbox", "sb01nl-r1a2b3c-cri-node2-p0") in runtimes["node2"].calls
    steps.done()


def test_delete_stops_then_removes_every_sandbox_and_its_log_directory() -> None:
    driver, runtimes = make()
    pods = driver.create_pods(fleet(driver))
    seen: list[tuple[str, ...]] = []
    driver.runner.channels = fakes.channels(
        LAB.name,
        LAB.node_names,
        fakes.script(*(fakes.Step(p.node, ("rm", "-rf", "--"), rest=seen.append) for p in pods)),
    )
    driver.delete_pods(pods)
    for pod in pods:
        rt = runtimes[pod.node]
        assert [c for c in rt.calls if c[1] == pod.handle.sandbox_id][-2:] == [
            ("StopPodSandbox", pod.handle.sandbox_id),
            ("RemovePodSandbox", pod.handle.sandbox_id),
        ]
        assert rt.sandboxes == {}
    assert sorted(seen) == sorted(
        (f"/var/log/pods/nl-{RUN}_{p.name}_{p.handle.uid}",) for p in pods
    )


def test_exec_is_exec_sync_with_a_pasteable_ctr_line() -> None:
    driver, runtimes = make()
    (pod, _) = driver.create_pods(fleet(driver))
    runtimes["node1"].execs[(pod.name, "client")] = lambda argv: (0, f"ran {argv}\n", "")
    result = driver.exec(pod, "client", ("ip", "-o", "-4", "addr", "show"))
    assert result.ok
    assert result.stdout == "ran ('ip', '-o', '-4', 'addr', 'show')\n"
    cid = pod.handle.container_ids["client"]
    assert result.reproduce == (
        "python -m lab ssh ci-debian12 node1 -- 'sudo -n ctr --address "
        "/run/containerd/containerd.sock --namespace k8s.io task exec --exec-id netlab-repro "
        f"{cid} ip -o -4 addr show'"
    )
    assert "CRI ExecSync" in driver.runner.log.entries[-1]


def test_a_failed_exec_call_is_an_answer_not_an_exception() -> None:
    driver, runtimes = make()
    (pod, _) = driver.create_pods(fleet(driver))
    runtimes["node1"].fail["ExecSync"] = CriError("ExecSync", "/s", "UNAVAILABLE", "gone")
    result = driver.exec(pod, "client", ("true",))
    assert result.exit_code == 124
    assert "UNAVAILABLE" in result.stderr


def test_netns_exec_enters_the_sandboxs_pinned_namespace_on_the_node() -> None:
    driver, _ = make()
    (pod, _) = driver.create_pods(fleet(driver))
    argv = ("nsenter", f"--net=/var/run/netns/cni-{pod.handle.sandbox_id}", "--", "ip", "link")
    driver.runner.channels = fakes.channels(
        LAB.name, LAB.node_names, fakes.script(fakes.Step("node1", argv, stdout="1: lo\n"))
    )
    assert driver.netns_exec(pod, ("ip", "link")).stdout == "1: lo\n"


def one_cell_request(host: str, netns: str | None) -> dict[str, object]:
    """The agent's probe request for the one cell a->b of these tests."""
    cell = {"id": "a->b", "host": host, "port": 8080, "netns": netns, "send": "", "timeout": 5.0}
    return {"op": "probe", "parallel": probes.PROBE_PARALLELISM, "cells": [cell]}


def test_pod_sources_run_the_agent_inside_their_client_and_nodes_through_the_node_agent() -> None:
    node_answer = {"results": [{"id": "node1->b", "ok": True, "answer": "10.10.10.241\n"}]}
    steps = fakes.script(
        fakes.Step("node1", ("python3", "-"), stdout=json.dumps(node_answer), rest=lambda w: None)
    )
    driver, runtimes = make(steps)
    a, b = driver.create_pods(fleet(driver))
    asked: list[dict[str, object]] = []

    def agent(argv: tuple[str, ...]) -> tuple[int, str, str]:
        assert argv[:2] == ("python3", "-c")
        assert argv[2] == probes.agent_source()
        request = json.loads(argv[3])
        asked.append(request)
        results = [
            {"id": c["id"], "ok": True, "answer": f"{a.ip}\n", "total_s": 0.1}
            for c in request["cells"]
        ]
        return 0, json.dumps({"results": results}), ""

    runtimes["node1"].execs[(a.name, "client")] = agent
    seen = driver.probing_from_containers().observe(
        [Probe("a->b", a, b), Probe("a->a", a, a), Probe("node1->b", "node1", b)]
    )
    assert seen["a->b"].seen_source == seen["a->a"].seen_source == str(a.ip)
    assert seen["node1->b"].seen_source == "10.10.10.241"
    ((request,),) = [asked]
    assert [c["host"] for c in request["cells"]] == [str(b.ip), str(a.ip)]
    assert request["cells"][0] == one_cell_request(str(b.ip), None)["cells"][0]
    cid = a.handle.container_ids["client"]
    assert seen["a->b"].reproduce.endswith(
        f"task exec --exec-id netlab-repro {cid} timeout 5 socat -u "
        f"TCP:{b.ip}:8080,connect-timeout=3 -'"
    )
    assert seen["node1->b"].reproduce == (
        "python -m lab ssh ci-debian12 node1 -- "
        f"'timeout 5 socat -u TCP:{b.ip}:8080,connect-timeout=3 -'"
    )
    steps.done()


def one_cell_from(
    driver: CriDriver, runtime: fakes.FakeCri, source: CriPod, container: str, target: CriPod
) -> tuple[list[tuple[str, ...]], rm.Observation]:
    """One cell probed from `source`'s `container`, which answers with `source`'s IP: the
    argv it was asked to run, and the observation."""
    ran: list[tuple[str, ...]] = []

    def answer(argv: tuple[str, ...]) -> tuple[int, str, str]:
        ran.append(argv)
        return 0, f"{source.ip}\n", ""

    runtime.execs[(source.name, container)] = answer
    (seen,) = driver.probing_from_containers().observe([Probe("cell", source, target)]).values()
    return ran, seen


def test_a_pod_source_with_one_cell_runs_that_cells_own_client_command() -> None:
    driver, runtimes = make()
    a, b = driver.create_pods(fleet(driver))
    ran, seen = one_cell_from(driver, runtimes["node1"], a, "client", b)
    assert ran == [("timeout", "5", "socat", "-u", f"TCP:{b.ip}:8080,connect-timeout=3", "-")]
    assert seen.seen_source == str(a.ip)
    assert seen.reproduce.endswith(f"timeout 5 socat -u TCP:{b.ip}:8080,connect-timeout=3 -'")


def test_a_nodes_later_fleet_pods_are_the_server_alone_and_probe_from_it() -> None:
    driver, runtimes = make()
    requests = scenarios.fleet_requests(driver, RUN, scenarios.fleet_slots(LAB, 2))
    assert [(r.node, [c.name for c in r.containers]) for r in requests] == [
        ("node1", ["echo", "client"]),  # the guide's shape: the shared-namespace checks' pod
        ("node1", ["echo"]),
        ("node2", ["echo", "client"]),
        ("node2", ["echo"]),
    ]
    first, later, _, peer = driver.create_pods(requests)
    assert (driver.client_of(first), driver.client_of(later)) == ("client", "echo")
    ran, seen = one_cell_from(driver, runtimes["node1"], later, "echo", peer)
    assert ran == [("timeout", "5", "socat", "-u", f"TCP:{peer.ip}:8080,connect-timeout=3", "-")]
    assert seen.seen_source == str(later.ip)
    assert f" {later.handle.container_ids['echo']} timeout 5 socat" in seen.reproduce


@pytest.mark.parametrize(
    ("answer", "unknown", "detail"),
    [
        ((1, "", "socat: Connection refused"), False, "exit 1: socat: Connection refused"),
        ((124, "", ""), False, "exit 124: no output"),  # `timeout` ended it: unreachable
        ((127, "", "socat: not found"), True, "exit 127: socat: not found"),
    ],
)
def test_a_one_cell_probe_that_fails_says_how_and_whether_it_ran(
    answer: tuple[int, str, str], unknown: bool, detail: str
) -> None:
    driver, runtimes = make()
    a, b = driver.create_pods(fleet(driver))
    runtimes["node1"].execs[(a.name, "client")] = lambda argv: answer
    (seen,) = driver.probing_from_containers().observe([Probe("a->b", a, b)]).values()
    assert not seen.reachable
    assert seen.unknown is unknown
    assert seen.detail == detail


def test_a_one_cell_probe_whose_exec_call_fails_is_unknown() -> None:
    driver, runtimes = make()
    a, b = driver.create_pods(fleet(driver))
    runtimes["node1"].fail["ExecSync"] = CriError("ExecSync", "/s", "UNAVAILABLE", "gone")
    (seen,) = driver.probing_from_containers().observe([Probe("a->b", a, b)]).values()
    assert seen.unknown
    assert "UNAVAILABLE" in seen.detail


def test_a_pod_whose_agent_fails_reports_every_cell_unknown_with_why() -> None:
    driver, runtimes = make()
    a, b = driver.create_pods(fleet(driver))
    runtimes["node1"].execs[(a.name, "client")] = lambda argv: (127, "", "python3: not found")
    cells = [Probe("a->b", a, b), Probe("a->a", a, a)]
    seen = driver.probing_from_containers().observe(cells)
    assert all(not o.reachable and o.unknown for o in seen.values())
    assert all("exited 127: python3: not found" in o.detail for o in seen.values())


def test_sweep_removes_other_runs_sandboxes_and_keeps_ours() -> None:
    driver, runtimes = make()
    (ours, _) = driver.create_pods(fleet(driver))
    other = CriDriver(
        LAB,
        driver.runner.channels,
        "rold",
        connect=runtimes.__getitem__,
        image_set=IMAGES,
        echo_listens=None,
    )
    (old,) = other.create_pods(scenarios.fleet_requests(other, "rold", [("node1", 0)]))
    assert driver.sweep(keep_prefix=f"nl-{RUN}-") == [f"node1/{old.name}"]
    assert list(runtimes["node1"].sandboxes) == [ours.handle.sandbox_id]


def test_the_guide_pod_is_the_fleets_pod_a_server_and_a_client_of_our_client_image() -> None:
    driver, _ = make()
    guide = driver.guide_pod()
    assert guide.in_fleet
    assert guide.containers == driver.fleet_containers()
    assert [c.name for c in guide.containers] == ["echo", "client"]
    assert {c.image for c in guide.containers} == {"netlab.invalid/client:0123456789ab"}
    assert (guide.client, guide.server, guide.port) == ("client", "echo", 8080)
    # the echo server answers first with the address it saw: on localhost, 127.0.0.1
    assert guide.containers[0].argv == identity_echo_args(8080)
    assert guide.banner == "127.0.0.1"


def test_a_pod_survives_the_trip_through_json_between_workers() -> None:
    driver, _ = make()
    (pod, _) = driver.create_pods(fleet(driver))
    again = driver.load_pod(json.loads(json.dumps(driver.dump_pod(pod))))
    assert again == pod
    assert again.handle == pod.handle


def test_leftovers_lists_what_the_runtime_still_holds_of_the_run() -> None:
    driver, _ = make()
    driver.create_pods(fleet(driver)[:1])
    left = driver.leftovers()
    assert left["node1"] == [
        "sandbox nl-r1a2b3c-cri-node1-p0",
        "container echo",
        "container client",
    ]
    assert left["node2"] == []


def test_deleting_a_pod_the_test_already_removed_only_clears_its_log_directory() -> None:
    driver, runtimes = make()
    (pod, _) = driver.create_pods(fleet(driver))
    runtimes["node1"].remove_pod_sandbox(pod.handle.sandbox_id)
    assert runtimes["node1"].sandboxes == {}
    removed: list[tuple[str, ...]] = []
    steps = fakes.script(fakes.Step("node1", ("rm", "-rf", "--"), rest=removed.append))
    driver.runner.channels = fakes.channels(LAB.name, LAB.node_names, steps)
    driver.delete_pods([pod])  # StopPodSandbox answers NOT_FOUND: that is the goal reached
    # the pod's log directory (kubelet's part) is removed all the same, and only it
    assert removed == [(f"/var/log/pods/nl-{RUN}_{pod.name}_{pod.handle.uid}",)]
    steps.done()


def test_by_default_pod_sources_probe_from_their_sandbox_netns_through_the_node_agent() -> None:
    # the matrices: one request per node to its agent, no ExecSync (FakeCri has no execs set:
    # an ExecSync would fail the test)
    answer = {"results": [{"id": "a->b", "ok": True, "answer": "10.244.1.2\n", "total_s": 0.1}]}
    asked: list[dict[str, object]] = []

    def rest(words: tuple[str, ...]) -> None:
        asked.append(json.loads(words[-1]))

    steps = fakes.script(
        fakes.Step("node1", ("python3", "-"), stdout=json.dumps(answer), rest=rest)
    )
    driver, runtimes = make(steps)
    a, b = driver.create_pods(fleet(driver))
    (seen,) = driver.observe([Probe("a->b", a, b)]).values()
    assert seen.seen_source == "10.244.1.2"
    assert not [c for c in runtimes["node1"].calls if c[0] == "ExecSync"]
    assert asked == [one_cell_request(str(b.ip), f"/var/run/netns/cni-{a.handle.sandbox_id}")]
    steps.done()
