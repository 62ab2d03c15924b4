"""Disruptive: break one node on purpose, see exactly the cells that must fail, watch the lab
heal within a bound. Run serially (`-m disruptive -n 0`), after the parallel pass; the nightly
does. A test that leaves the lab unhealthy restores the post-provisioning snapshot."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from e2e import checks, disruption, flow, scenarios
from e2e.drivers.base import Driver, Pod, PodRequest
from e2e.drivers.cni import CniDriver
from e2e.drivers.cri import CriDriver
from e2e.faults import KINDS, faults_for, make_fault, victim
from e2e.ledger import ledger_line, summary_of
from e2e.suite import suite_lab
from lab.common.commands import cmd
from lab.hosts.machines import PROVISIONED_SNAPSHOT, LabMachines
from lab.model.config import Lab

pytestmark = pytest.mark.disruptive


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fault_name" not in metafunc.fixturenames:
        return
    lab = suite_lab(metafunc.config)
    metafunc.parametrize("fault_name", faults_for(lab) if lab is not None else sorted(KINDS))


@pytest.fixture
def healthy_lab(machines: LabMachines) -> Iterator[LabMachines]:
    """Every node running before the test; after it, restore the snapshot if the test left
    a node unhealthy, instead of rebuilding the lab."""
    yield machines
    states = machines.states()
    if all(s.state == "running" for s in states.values()) and _answers(machines):
        return
    if PROVISIONED_SNAPSHOT not in machines.snapshot_list():
        pytest.fail(
            f"the lab is unhealthy ({states}) and there is no snapshot "
            f"{PROVISIONED_SNAPSHOT} to restore",
            pytrace=False,
        )
    machines.snapshot_restore(PROVISIONED_SNAPSHOT)


def _answers(machines: LabMachines) -> bool:
    try:
        return all(
            n.run(cmd("true", sudo=False), timeout=30, check=False).ok
            for n in machines.channels().values()
        )
    except Exception:  # noqa: BLE001 (an unreachable node is the answer here)
        return False


def test_a_fault_breaks_exactly_the_expected_cells_and_the_lab_recovers_in_time(
    fault_name: str,
    lab: Lab,
    healthy_lab: LabMachines,
    cni_driver: CniDriver,
    reprovision: Callable[[], int],
    run_id: str,
    worker_tag: str,
    artifacts_dir: Path,
    request: pytest.FixtureRequest,
) -> None:
    node = victim(lab)
    fault = make_fault(fault_name, lab, node, reprovision)
    made: list[Pod[Any]] = []
    driver: Driver[Any] = cni_driver
    cri: CriDriver | None = None
    if KINDS[fault_name].watched_by == "cri":  # CRI pods, probed from their netns (runtime down)
        cri = request.getfixturevalue("cri_driver")
        driver = cri.probing_from_netns()

    def after() -> Sequence[str]:
        if fault.kills_pods:  # the node booted again: the guide's settings must have held
            return checks.guide_state_problems(healthy_lab.channels()[node], lab, node)
        if cri is None:
            return ()
        # the CRI's own view once healed: probes through ExecSync again, every pod READY; once
        # its CRI answers (containerd's API answers before the CRI has loaded the pods again)
        problems = flow.wait_runtime_back(cri, node)
        if problems:
            return problems
        matrix = scenarios.pod_matrix(cri, made)
        problems = [f"after recovery (ExecSync probes): {m}" for m in matrix.mismatches()]
        states = flow.pod_states(cri, made)
        problems += [f"{p}: {s}" for p, s in states.items() if "NOTREADY" in s or "EXITED" in s]
        return problems

    def create(name: str, on: str) -> Pod[Any]:
        (pod,) = driver.create_pods([PodRequest(name, on, driver.fleet_containers())])
        made.append(pod)
        return pod

    pods = [
        create(f"nl-{run_id}-{worker_tag}-{fault_name[:8]}-{n}-{i}", n)
        for n in sorted(lab.node_names)
        for i in range(2)
    ]

    def recreate(old: Pod[Any]) -> Pod[Any]:
        return create(old.name + "r", old.node)

    try:
        outcome = disruption.exercise(
            healthy_lab, driver, fault, pods, recreate, artifacts_dir, after_recovery=after
        )
    finally:
        with contextlib.suppress(Exception):  # pods of a rebooted node are already gone
            driver.delete_pods(made)
    problems = [f"during the fault, wrong cell: {c}" for c in outcome.wrong_during]
    problems += outcome.problems
    if not outcome.recovered:
        problems.append(f"no recovery within {outcome.bound_s:.0f}s")
    checks.expect_no_problems(
        problems,
        f"{fault.name} on {node} (cells failed as predicted: "
        f"{len(outcome.failed_during)}; recovery {outcome.recovery_s}s; live flows: "
        f"{ledger_line(summary_of(outcome.ledger))})",
    )
