"""The underlay under the pods (e2e/underlay.py): the path MTU between every pair of nodes,
searched node to node and pod to pod and reported; on the BGP lab every session Established
and every other node's pod subnet learned (proto bird); and, in the disruptive pass, the
routed underlay's faults made on the router and localized: a narrow hop that says nothing
(the largest size that crosses and the hop are named), a slow, lossy link (exactly the cells
whose path crosses it are held up)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from e2e import checks, disruption, report, scenarios, underlay
from e2e.drivers.base import Driver, Pod, PodRequest
from e2e.drivers.cni import CniDriver
from e2e.faults import (
    HOP_MTU,
    NETEM_DELAY_MS,
    RouterFault,
    crosses_hop,
    faults_for,
    make_fault,
    victim,
)
from e2e.suite import suite_lab
from lab.common import waits
from lab.hosts.machines import LabMachines
from lab.model.config import Lab
from lab.podnet import NIC_MTU, backend_of


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    lab = suite_lab(metafunc.config)
    for arg, judged in (("path_fault", "path"), ("latency_fault", "latency")):
        if arg in metafunc.fixturenames:
            names = faults_for(lab, judged) if lab is not None else []
            reason = "needs a routed underlay (network.segments), e.g. --lab ci-debian12-routed-bgp"
            skipped = [pytest.param(None, marks=pytest.mark.skip(reason=reason))]
            metafunc.parametrize(arg, names or skipped)


def test_the_path_mtu_between_two_nodes_is_the_links_and_the_pods(
    lab: Lab,
    node_pair: tuple[str, str],
    fleet: dict[tuple[str, int], Pod[Any]],
    driver: Driver[Any],
    record_property: Callable[[str, object], None],
) -> None:
    """Searched, not assumed: the largest don't-fragment packet that crosses from one node to
    the other (the NIC's 1500 expected) and from a pod on one to a pod on the other (the
    backend's pod MTU); a smaller one names the size and the hop."""
    a, b = node_pair
    found = [
        underlay.node_path_mtu(driver, lab, a, b),
        underlay.pod_path_mtu(driver, lab, fleet[(a, 0)], fleet[(b, 0)]),
    ]
    for result in found:
        record_property(f"path-mtu-{result.level}", result.largest)
    checks.expect_no_problems(
        [str(r) for r in found if r.short], f"path MTU {a} -> {b} [{driver.name}]"
    )


def test_every_bgp_session_is_established_and_every_pod_route_learned(
    lab: Lab, node_name: str, cni_driver: CniDriver
) -> None:
    if backend_of(lab).dataplane(lab) != "bgp":
        pytest.skip(
            "needs the BGP backend (pod_network.driver: bgp), e.g. --lab ci-debian12-routed-bgp"
        )
    checks.expect_no_problems(
        underlay.bgp_problems(cni_driver, lab, node_name),
        f"BGP on {node_name}",
        [cni_driver.runner.channels[node_name].reproduce("sudo birdc show protocols")],
    )


# --- the disruptive pass: faults made on the router, localized ---------------------------------


@pytest.fixture
def pair_pods(
    lab: Lab, cni_driver: CniDriver, run_id: str, worker_tag: str, request: pytest.FixtureRequest
) -> Iterator[list[Pod[Any]]]:
    """Two pods on every node (CNI-direct), removed at teardown."""
    tag = request.node.name.split("[")[-1].rstrip("]")[:10]
    made = cni_driver.create_pods(
        [
            PodRequest(f"nl-{run_id}-{worker_tag}-{tag}-{n}-{i}", n, cni_driver.fleet_containers())
            for n in sorted(lab.node_names)
            for i in range(2)
        ]
    )
    yield made
    with contextlib.suppress(Exception):
        cni_driver.delete_pods(made)


def _paths(driver: CniDriver, lab: Lab, pods: list[Pod[Any]], hit: str) -> list[underlay.PathMtu]:
    """Node and pod path MTUs between the victim and every other node, both ways."""
    first = {p.node: p for p in reversed(pods)}
    found = []
    for other in sorted(n for n in lab.node_names if n != hit):
        for a, b in ((other, hit), (hit, other)):
            found.append(underlay.node_path_mtu(driver, lab, a, b))
            found.append(underlay.pod_path_mtu(driver, lab, first[a], first[b]))
    return found


T = TypeVar("T")


def _cycle(
    fault: RouterFault,
    machines: LabMachines,
    observe: Callable[[], T],
    healed: Callable[[], bool],
    outcome: disruption.Outcome,
) -> tuple[T, list[str]]:
    """Inject, observe, heal (whatever happened), then wait, bounded, until `healed()`: what
    was observed during the fault, and the problem of a recovery that did not come."""
    fault.inject(machines)
    try:
        during = observe()
    finally:
        start = time.monotonic()
        fault.heal(machines)
    try:
        waits.wait_until(
            waits.Policy(f"healed after '{fault.name}'", timeout_s=fault.bound_s, interval_s=2),
            healed,
            bool,
        )
    except waits.WaitTimeout as exc:
        return during, [str(exc)]
    outcome.recovery_s = round(time.monotonic() - start, 1)
    outcome.recovered = True
    return during, []


def _router_fault(name: str, lab: Lab, reprovision: Callable[[], int]) -> RouterFault:
    fault = make_fault(name, lab, victim(lab), reprovision)
    assert isinstance(fault, RouterFault)
    return fault


@pytest.mark.disruptive
def test_a_narrow_hop_that_says_nothing_is_found_by_the_path_mtu_search(
    path_fault: str,
    lab: Lab,
    machines: LabMachines,
    cni_driver: CniDriver,
    pair_pods: list[Pod[Any]],
    reprovision: Callable[[], int],
    artifacts_dir: Path,
) -> None:
    """The router's NIC toward the victim's segment carries 1400 bytes, drops what is larger
    and sends no ICMP: small packets (the matrix) still cross, large ones vanish. The search
    must name the largest size that crosses (1400 node to node; the pods' 1400, or 1350 inside
    VXLAN's 50 bytes) and the hop, and find the full path again once healed."""
    fault = _router_fault(path_fault, lab, reprovision)
    hit = fault.node
    outcome = disruption.Outcome(fault.name, hit, bound_s=fault.bound_s)
    before = [str(r) for r in _paths(cni_driver, lab, pair_pods, hit) if r.short]
    checks.expect_no_problems(before, "the underlay was not whole before the fault")
    (during, matrix), problems = _cycle(
        fault,
        machines,
        lambda: (
            _paths(cni_driver, lab, pair_pods, hit),
            scenarios.pod_matrix(cni_driver, pair_pods),
        ),
        lambda: not [r for r in _paths(cni_driver, lab, pair_pods, hit) if r.short],
        outcome,
    )
    report.write_matrix(artifacts_dir, f"fault-{path_fault}", matrix.render(), matrix.to_json())
    pod_mtu = backend_of(lab).pod_mtu(lab)
    overhead = NIC_MTU - backend_of(lab).max_pod_mtu(lab)
    want = {"node": HOP_MTU, "pod": min(pod_mtu, HOP_MTU - overhead)}
    problems += [
        f"during the fault, small packets must still cross: {m}" for m in matrix.mismatches()
    ]
    for r in during:
        outcome.failed_during.append(str(r).split("\n")[0])
        if not r.finished or r.largest != want[r.level]:
            problems.append(f"expected path MTU {want[r.level]} ({r.level}), found: {r}")
        elif fault.hop.split(" (")[0] not in r.where and "before the first hop" not in r.where:
            problems.append(f"the hop {fault.hop} is not the one named: {r}")
    outcome.problems = problems
    disruption.record(artifacts_dir, outcome)
    checks.expect_no_problems(problems, f"{fault.name} (found: {'; '.join(outcome.failed_during)})")


@pytest.mark.disruptive
def test_a_slow_lossy_link_holds_up_exactly_the_cells_that_cross_it(
    latency_fault: str,
    lab: Lab,
    machines: LabMachines,
    cni_driver: CniDriver,
    pair_pods: list[Pod[Any]],
    reprovision: Callable[[], int],
    artifacts_dir: Path,
) -> None:
    """netem delay and loss on the router's NIC toward the victim's segment: every cell whose
    path crosses it still connects, none faster than the delay; every other cell is not held
    up. Once healed, every cell is fast again."""
    fault = _router_fault(latency_fault, lab, reprovision)
    outcome = disruption.Outcome(fault.name, fault.node, bound_s=fault.bound_s)
    threshold = 0.8 * NETEM_DELAY_MS / 1000
    node_of = {p.name: p.node for p in pair_pods}
    baseline = scenarios.pod_matrix(cni_driver, pair_pods)
    crosses = {
        c: crosses_hop(lab, fault.node, node_of[c[0]], node_of[c[1]]) for c in baseline.expected
    }
    none_cross = {c: False for c in crosses}
    problems = [f"before the fault: {m}" for m in baseline.mismatches()]

    def fast_again() -> bool:
        matrix = scenarios.pod_matrix(cni_driver, pair_pods)
        return not underlay.latency_problems(matrix, none_cross, threshold, "no link")

    during, late = _cycle(
        fault, machines, lambda: scenarios.pod_matrix(cni_driver, pair_pods), fast_again, outcome
    )
    report.write_matrix(artifacts_dir, f"fault-{latency_fault}", during.render(), during.to_json())
    problems += underlay.latency_problems(during, crosses, threshold, fault.hop) + late
    seen = underlay.classify(during, threshold)
    outcome.failed_during = [f"{s}->{t} slow" for s, t in seen.slow]
    outcome.problems = problems
    disruption.record(artifacts_dir, outcome)
    checks.expect_no_problems(
        problems,
        f"{fault.name}: {len(seen.slow)} slow cell(s) of {len(during.expected)}, "
        f"{sum(crosses.values())} crossing",
    )
