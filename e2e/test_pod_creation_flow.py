"""The guide's pod network creation flow, step by step, on pods containerd made through its CRI
(labs with `runtime: containerd`): kubelet starts the pod's infra (pause) container, which
creates the network namespace; kubelet calls CNI (here the runtime does, as it does for
kubelet), which configures it; the pod's other containers share that namespace. Then the way
back: StopPodSandbox (CNI DEL) and RemovePodSandbox; and two things that go wrong in life: the
runtime restarting, the infra process dying.

The way back is asked of one pod each, the two on different nodes (the first node's and the
last's): it is the runtime's (StopPodSandbox, RemovePodSandbox), the same on every node, while
each node's own CNI configuration is put through ADD, CHECK and DEL on every node by
e2e/test_cni_contract.py. A CRI pod costs a 1-vCPU TCG guest about 4.5 s of CPU from creation
to removal: one per node per test made these two tests a fifth of the suite's guest time
(docs/benchmarks.md, "The suite's time").

Each test is shown to fail when its invariant breaks in tests/integration/
test_8_cri_flow_catches_breakage.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from e2e import checks, flow, scenarios
from e2e.drivers.base import PodRequest
from e2e.drivers.cri import CriDriver, CriPod
from lab.hosts.os import profile as os_profile
from lab.model.config import Lab


@pytest.fixture
def make_cri_pods(
    cri_driver: CriDriver, run_id: str, worker_tag: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., list[CriPod]]]:
    """CRI pods named after the test, removed at teardown even when the test failed (a pod the
    test removed itself is skipped)."""
    made: list[CriPod] = []
    base = request.node.name.split("[")[0].removeprefix("test_")[:14].replace("_", "-")

    def make(*nodes: str, full: bool = False) -> list[CriPod]:
        """A pod per node given: the fleet's echo + client (`full`), else a client alone."""
        containers = cri_driver.fleet_containers() if full else (cri_driver.client_container(),)
        requests = [
            PodRequest(f"nl-{run_id}-{worker_tag}-cri-{base}-{len(made) + i}", node, containers)
            for i, node in enumerate(nodes)
        ]
        pods = cri_driver.create_pods(requests)
        made.extend(pods)
        return pods

    yield make
    if made:  # a pod the test removed itself has only its log directory left
        cri_driver.delete_pods(made)


CRI = pytest.mark.parametrize("driver", ["cri"], indirect=True)  # the fleet's CRI pods


def test_the_runtime_on_the_cri_socket_is_the_labs(lab: Lab, cri_driver: CriDriver) -> None:
    """Every node's CRI Version(): the runtime the lab installs (its name), the CRI API the suite
    speaks, and the version the lab's OS profile pins for it (lab/hosts/os/)."""
    pinned = os_profile(lab.os.family).components.get(lab.runtime)
    found = scenarios.each_node(
        sorted(lab.node_names),
        lambda node: flow.runtime_identity_problems(
            node,
            cri_driver.cri(node).version(),
            lab.runtime,
            pinned,
            flow.version_reproduce(cri_driver, node),
        ),
    )
    checks.expect_no_problems([p for per_node in found for p in per_node], "CRI Version()")


@CRI
def test_the_infra_process_holds_the_pods_network_namespace_and_every_container_joins_it(
    fleet: dict[tuple[str, int], CriPod], cri_driver: CriDriver
) -> None:
    pods = [p for _, p in sorted(fleet.items())]
    problems = scenarios.side_by_side(  # one round trip per pod, all at once
        pods, lambda pod: flow.shared_namespace_problems(flow.namespace_view(cri_driver, pod))
    )
    checks.expect_no_problems(problems, f"{len(fleet)} CRI pods: infra process and containers")


@CRI
def test_the_runtimes_ip_its_cni_result_the_pods_view_and_its_peers_view_are_one(
    fleet: dict[tuple[str, int], CriPod], cri_driver: CriDriver
) -> None:
    pods = [p for _, p in sorted(fleet.items())]
    pod = pods[0]
    peer = next(p for p in pods if p.node != pod.node)  # across the pod network
    checks.expect_no_problems(
        flow.ip_agreement_problems(cri_driver, pod, peer)
        + flow.ip_agreement_problems(cri_driver, peer, pod),
        f"pods {pod.name} ({pod.ip}) and {peer.name} ({peer.ip})",
    )


def test_stop_releases_the_lease_and_the_veth_and_remove_leaves_no_namespace(
    lab: Lab, make_cri_pods: Callable[..., list[CriPod]], cri_driver: CriDriver
) -> None:
    def check(pod: CriPod) -> list[str]:
        made, stopped, removed, listed = flow.stop_and_remove(cri_driver, pod)
        problems = flow.release_problems(pod, made, stopped, removed)
        if listed:
            problems.append(f"the runtime still lists {listed} of pod {pod.name}")
        return problems

    pods = make_cri_pods(sorted(lab.node_names)[0])
    checks.expect_no_problems(scenarios.side_by_side(pods, check), f"pod {pods[0].name}")


def test_a_dead_infra_process_is_noticed_and_removing_its_sandbox_still_releases_the_ip(
    lab: Lab, make_cri_pods: Callable[..., list[CriPod]], cri_driver: CriDriver
) -> None:
    def check(pod: CriPod) -> list[str]:
        return [
            f"infra pid {pod.handle.infra_pid} killed: {p}"
            for p in flow.infra_death_problems(cri_driver, pod, pod.handle.infra_pid)
        ]

    pods = make_cri_pods(sorted(lab.node_names)[-1])
    checks.expect_no_problems(scenarios.side_by_side(pods, check), f"pod {pods[0].name}")


@pytest.mark.disruptive
def test_restarting_containerd_leaves_running_pods_reachable_and_ready(
    lab: Lab, make_cri_pods: Callable[..., list[CriPod]], cri_driver: CriDriver
) -> None:
    """Disruptive (every CRI call of a parallel run would see the restart): the nightly's
    serial pass. containerd restarts on every node; its shims and the pods stay."""
    pods = make_cri_pods(*sorted(lab.node_names), *sorted(lab.node_names), full=True)
    checks.expect_no_problems(
        flow.restart_problems(cri_driver, pods),
        f"containerd restarted on {', '.join(sorted(lab.node_names))}",
    )
