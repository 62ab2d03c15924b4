"""Exercising one fault: baseline, break, observe exactly the cells that must fail, heal,
measure recovery (bounded), and say what happened. The disruptive tests assert on the outcome;
the suite's own tests feed it a fault that never heals to show the test then fails."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from e2e import report, scenarios
from e2e.drivers.base import Driver, Pod
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
    fault.inject(machines)
    try:
        during = scenarios.pod_matrix(driver, pods, fault.expected)
    finally:
        start = time.monotonic()  # recovery: from the end of the fault (a reboot's boot counts)
        fault.heal(machines)
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
    if out.recovered:
        out.problems += list(after_recovery())
    record(artifacts, out)
    return out


def record(artifacts: Path, outcome: Outcome) -> None:
    """Append to faults.json (one list per run; the nightly report reads it)."""
    path = artifacts / "faults.json"
    data = json.loads(path.read_text()) if path.exists() else []
    data.append(asdict(outcome))
    path.write_text(json.dumps(data, indent=1))
