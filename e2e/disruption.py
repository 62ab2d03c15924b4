"""Exercising one fault: baseline, break, observe exactly the cells that must fail, heal,
measure recovery (bounded), and say what happened. While the fault lasts, live flows from a pod
on every other node to a pod on the faulted one measure what a workload lived through (the
disruption ledger, e2e/ledger.py), judged against the fault's budget. The disruptive tests
assert on the outcome; the suite's own tests feed it a fault that never heals to show the test
then fails."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from e2e import ledger, liveflows, report, scenarios
from e2e.drivers.base import Driver, DriverError, Pod
from e2e.faults import Fault
from lab.common import waits
from lab.hosts.machines import LabMachines
from lab.net.reachability import Matrix


@dataclass
class Outcome:
    fault: str
    node: str
    wrong_during: list[str] = field(default_factory=list)  # cells not as the fault predicts
    failed_during: list[str] = field(default_factory=list)  # cells that failed, as predicted
    recovered: bool = False
    recovery_s: float | None = None
    bound_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    fault_s: float = 0.0  # inject to the end of heal
    ledger: dict[str, Any] | None = None  # the disruption ledger (ledger.Ledger.to_json)


def _cells(matrix: Matrix, symbols: str) -> list[str]:
    return [f"{s}->{t}" for (s, t) in matrix.cells_with(symbols)]


def exercise(
    machines: LabMachines,
    driver: Driver[Any],
    fault: Fault,
    pods: list[Pod[Any]],
    recreate: Callable[[Pod[Any]], Pod[Any]],
    artifacts: Path,
    after_recovery: Callable[[], Sequence[str]] = lambda: (),
) -> Outcome:
    out = Outcome(fault.name, fault.node, bound_s=fault.bound_s)
    slug = fault.name.replace(" ", "-") + f".{fault.node}"
    baseline = scenarios.pod_matrix(driver, pods)
    if baseline.mismatches():
        out.problems.append("the lab was not healthy before the fault:\n" + baseline.render())
        return out
    pairs = liveflows.plan_pairs(pods, fault.node)
    if not pairs:
        out.problems.append(f"no live flows: no pods on {fault.node} and on another node")
        return out
    try:
        flows = liveflows.start(driver.runner, driver.lab, f"{pairs[0].target.name}-flows", pairs)
    except DriverError as exc:
        out.problems.append(f"the live flows did not run before the fault: {exc}")
        return out
    try:
        _break_and_heal(machines, driver, fault, pods, recreate, artifacts, slug, out, flows)
    finally:
        _ledger(flows, fault, artifacts, slug, out)
    if out.recovered:
        out.problems += list(after_recovery())
    record(artifacts, out)
    return out


def _break_and_heal(
    machines: LabMachines,
    driver: Driver[Any],
    fault: Fault,
    pods: list[Pod[Any]],
    recreate: Callable[[Pod[Any]], Pod[Any]],
    artifacts: Path,
    slug: str,
    out: Outcome,
    flows: liveflows.Flows,
) -> None:
    """Inject (marked for the flows), observe, heal (marked), await the recovery."""
    liveflows.mark(flows, "inject")
    injected = time.monotonic()
    fault.inject(machines)
    try:
        during = scenarios.pod_matrix(driver, pods, fault.expected)
    finally:
        start = time.monotonic()  # recovery: from the end of the fault (a reboot's boot counts)
        fault.heal(machines)
        out.fault_s = round(time.monotonic() - injected, 1)
        liveflows.mark(flows, "healed")
    report.write_matrix(artifacts, f"fault-{slug}", during.render(), during.to_json())
    out.wrong_during = [str(m) for m in during.mismatches()]
    out.failed_during = _cells(during, "x")
    if fault.kills_pods:  # its pods died with the node: recreate them
        pods[:] = [recreate(p) if p.node == fault.node else p for p in pods]
    policy = waits.Policy(
        f"pod network healed after '{fault.name}' on {fault.node}",
        timeout_s=out.bound_s,
        interval_s=2,
    )
    try:  # the wait only times the heal; the verdict is the fresh matrix after it
        waits.wait_until(
            policy, lambda: scenarios.pod_matrix(driver, pods), lambda m: not m.mismatches()
        )
        out.recovery_s = round(time.monotonic() - start, 1)
    except waits.WaitTimeout as exc:
        out.problems.append(str(exc))
    final = scenarios.pod_matrix(driver, pods)
    out.recovered = out.recovery_s is not None and not final.mismatches()
    if final.mismatches():
        seen = "" if out.recovery_s is None else f" (clean once after {out.recovery_s}s)"
        out.problems.append(f"the pod network after healing{seen}:\n{final.render()}")
    report.write_matrix(artifacts, f"recovered-{slug}", final.render(), final.to_json())


def _ledger(
    flows: liveflows.Flows,
    fault: Fault,
    artifacts: Path,
    slug: str,
    out: Outcome,
) -> None:
    """Stop and read the flows, judge them against the fault's budget, write the ledger (JSON
    and text) beside the fault's matrices and into its outcome; outside the budget, a problem
    with the figures."""
    try:
        if fault.budget.loss == "fault":  # loss may outlast the heal: seen to end, or not
            after = waits.Policy(
                f"the live flows moved on after '{fault.name}'",
                timeout_s=fault.budget.after_s,
                interval_s=1,
            )
            liveflows.await_progress(flows, after)
        figures = liveflows.collect(flows)
    except Exception as exc:  # noqa: BLE001 (reported with the fault; never masks its error)
        out.problems.append(f"the live flows could not be read after the fault: {exc}")
        return
    judged = ledger.judge(fault.name, fault.node, fault.budget, out.fault_s, figures)
    text = ledger.render_text(judged)
    report.write_ledger(artifacts, f"ledger-{slug}", text, json.dumps(judged.to_json(), indent=1))
    out.ledger = judged.to_json()
    if not judged.within_budget:
        out.problems.append(f"the live flows were outside the fault's budget:\n{text}")


def record(artifacts: Path, outcome: Outcome) -> None:
    """Append to faults.json (one list per run; the nightly report reads it)."""
    path = artifacts / "faults.json"
    data = json.loads(path.read_text()) if path.exists() else []
    data.append(asdict(outcome))
    path.write_text(json.dumps(data, indent=1))
