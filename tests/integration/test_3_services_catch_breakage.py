"""The Service checks' own tests (issue 27): on the provisioned CI lab, with the suite's
Services and their kube-proxy-shaped rules in place, each breakage fails exactly the cells it
should and the failure names its cause. Every breakage is undone in a finally block; the rules
and pods are removed at the end (and nothing of them may be left in any table)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e import scenarios, services
from e2e.drivers.base import Pod, PodRequest
from e2e.drivers.cni import CniDriver, stop_containers_argv
from e2e.fleets import publish_services, wait_for_echo_servers
from lab.hosts.machines import LabMachines
from lab.model.config import Lab
from lab.net import kubeproxy as kp
from lab.net.reachability import Matrix
from provision.run import run_provision

RUN = "selftest"
SLOTS = [("node1", 0), ("node1", 1), ("node2", 0), ("node2", 1)]


@pytest.fixture(scope="module")
def driver(running: LabMachines) -> CniDriver:
    run_provision(running)  # idempotent: the lab test_2 provisioned, or a fresh one
    return CniDriver(running.lab, running.channels())


@pytest.fixture(scope="module")
def layout(ci_lab: Lab) -> services.Layout:
    assert ci_lab.services is not None, "the CI lab has a services section"
    return services.allot(ci_lab.services, ("cni",), SLOTS)


@pytest.fixture(scope="module")
def setup(
    driver: CniDriver,
    layout: services.Layout,
    ci_lab: Lab,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[tuple[str, int], Pod[Any]], Pod[Any], services.DriverServices, Path]]:
    """The fleet, the DNS pod and the Services, programmed on every node."""
    requests = [
        PodRequest(scenarios.slot_name(RUN, "cni", s), s[0], driver.fleet_containers(s[1]))
        for s in SLOTS
    ]
    dns = (services.dns_container(driver, layout),)
    requests.append(PodRequest(services.dns_pod_name(RUN, "cni"), "node1", dns))
    made = driver.create_pods(requests)
    fleet = dict(zip(SLOTS, made[:-1], strict=True))
    wait_for_echo_servers(driver, made[:-1])
    artifacts = tmp_path_factory.mktemp("services")
    try:
        publish_services(driver, layout, fleet, made[-1], artifacts)
        svc = services.driver_services(layout, "cni", fleet, made[-1].ip)
        yield fleet, made[-1], svc, artifacts
    finally:
        left = [services.unprogram_node(driver.runner, n) for n in ci_lab.node_names]
        driver.delete_pods(made)
    assert [leak for leak in left if leak] == [], "the Service rules left something behind"


def _pods(fleet: dict[tuple[str, int], Pod[Any]]) -> list[Pod[Any]]:
    return [fleet[s] for s in SLOTS]


def _clusterip(driver: CniDriver, ci_lab: Lab, setup: Any) -> tuple[Matrix, list[str]]:
    fleet, _, svc, _ = setup
    pods = _pods(fleet)
    routes = services.route_sources(driver, ci_lab, pods)
    matrix = services.observe_cells(
        driver, services.clusterip_cells(ci_lab, svc, pods, routes, "tcp")
    )
    return matrix, services.hints(matrix, pods)


def _bad(matrix: Matrix) -> set[tuple[str, str]]:
    return {(m.source, m.target) for m in matrix.mismatches()}


def _on(driver: CniDriver, node: str, script: str) -> str:
    res = driver.exec_on_node(node, ("sh", "-ec", script))
    assert res.ok, f"{node}: {script}: {res.stderr}"
    return res.stdout


def test_the_healthy_lab_passes_every_service_check(
    driver: CniDriver, ci_lab: Lab, layout: services.Layout, setup: Any
) -> None:
    fleet, _, svc, _ = setup
    matrix, hints = _clusterip(driver, ci_lab, setup)
    assert matrix.mismatches() == []
    assert hints == []
    assert services.dns_problems(driver, ci_lab, layout, svc, _pods(fleet)) == []


def test_bridge_nf_call_iptables_off_on_one_node_fails_its_same_bridge_cells(
    driver: CniDriver, ci_lab: Lab, setup: Any
) -> None:
    """The guide's step 3 undone on node1: a pod's answer to a pod on its own bridge skips
    the node's conntrack, so it comes from the pod IP instead of the ClusterIP."""
    key = "net.bridge.bridge-nf-call-iptables"
    _on(driver, "node1", f"sysctl -qw {key}=0")
    try:
        matrix, hints = _clusterip(driver, ci_lab, setup)
    finally:
        _on(driver, "node1", f"sysctl -qw {key}=1")
    fleet = setup[0]
    a, b = fleet[("node1", 0)].name, fleet[("node1", 1)].name
    assert _bad(matrix) == {(a, "ep-node1-p1"), (b, "ep-node1-p0")}
    assert {matrix.symbol(*cell) for cell in _bad(matrix)} == {"X"}
    assert any("bridge-nf-call-iptables" in h for h in hints), hints


def test_hairpin_mode_off_on_one_node_fails_its_pods_reaching_themselves(
    driver: CniDriver, ci_lab: Lab, setup: Any
) -> None:
    bridge = ci_lab.pod_network.bridge
    ports = f"/sys/class/net/{bridge}/brif/*/hairpin_mode"
    before = _on(driver, "node1", f"grep -H . {ports}")
    _on(driver, "node1", f"for f in {ports}; do echo 0 > $f; done")
    try:
        matrix, hints = _clusterip(driver, ci_lab, setup)
    finally:
        restore = "\n".join(
            f"echo {value} > {path}"
            for path, _, value in (line.partition(":") for line in before.splitlines())
        )
        _on(driver, "node1", restore)
    fleet = setup[0]
    a, b = fleet[("node1", 0)].name, fleet[("node1", 1)].name
    assert _bad(matrix) == {(a, "ep-node1-p0"), (b, "ep-node1-p1")}
    assert any("hairpinMode" in h for h in hints), hints


def test_one_endpoints_kube_sep_chain_emptied_on_one_node_fails_that_nodes_cells_to_it(
    driver: CniDriver, ci_lab: Lab, layout: services.Layout, setup: Any
) -> None:
    fleet, _, svc, artifacts = setup
    target = fleet[("node2", 0)]
    service = svc.per_pod[target.name]
    port = service.port("tcp")
    chain = kp.sep_chain(service, port, target.ip)
    _on(driver, "node1", f"iptables -w -t nat -F {chain}")
    try:
        matrix, hints = _clusterip(driver, ci_lab, setup)
    finally:  # kube-proxy's next sync puts it back: so does ours
        with services.locked_state(artifacts) as state:
            every = services.node_services(services.services_from_state(layout, state), layout)
        services.program_node(driver.runner, ci_lab, "node1", every)
    node1_sources = {p.name for p in _pods(fleet) if p.node == "node1"} | {"node1"}
    assert _bad(matrix) == {(s, service.name) for s in node1_sources}
    assert any(f"from node1's sources only: {service.name}" in h for h in hints), hints
    assert chain.startswith("KUBE-SEP-")


def test_the_dns_server_stopped_fails_every_dns_cell_and_says_so(
    driver: CniDriver, ci_lab: Lab, layout: services.Layout, setup: Any
) -> None:
    """Last: the DNS pod's server does not come back (the pods go at the module's end)."""
    fleet, dns_pod, svc, _ = setup
    _on(driver, dns_pod.node, " ".join(stop_containers_argv(dns_pod.name)))
    problems = services.dns_problems(driver, ci_lab, layout, svc, _pods(fleet))
    sources = len(fleet) + len(ci_lab.nodes)
    assert len(problems) == 2 * sources + 1  # two names from every source, and the cause
    assert problems[0].startswith("no DNS answer from any pod or node: the cluster DNS")
