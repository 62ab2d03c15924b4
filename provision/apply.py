"""Apply the plans over SSH: phases in order, the nodes of a phase in parallel; every failing
node reported; each step re-probed after it changed something, so a step that does not
converge is an error rather than a silent second-run change."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lab import waits
from lab.adapters.ssh import SshChannel
from lab.commands import Command
from lab.config import Lab, Node
from lab.errors import CommandFailed
from provision import el7
from provision.model import AnyStep
from provision.steps import phases

Progress = Callable[[str, str], None]  # (node, message)


@dataclass
class NodeReport:
    node: str
    done: list[str] = field(default_factory=list)  # step labels already done
    changed: list[str] = field(default_factory=list)
    commands: int = 0
    seconds: float = 0.0
    error: str = ""


class StepFailed(Exception):
    pass


def run_command(conn: SshChannel, command: Command, timeout: float) -> None:
    if command.mirror:  # mirrors and downloads only: bounded retries, logged
        waits.retry_call(
            waits.PACKAGE_MIRROR, lambda: conn.run(command, timeout=timeout), on=(CommandFailed,)
        )
    else:
        conn.run(command, timeout=timeout)


class JoinCommand:
    """One join command per provisioning run, created on the control plane when first needed."""

    def __init__(self, plane: SshChannel | None) -> None:
        self.plane = plane
        self.lock = threading.Lock()
        self.argv: tuple[str, ...] | None = None

    def __call__(self) -> tuple[str, ...]:
        with self.lock:
            if self.argv is None:
                if self.plane is None:
                    raise StepFailed("a worker needs to join but the lab has no control plane")
                out = self.plane.run(el7.JOIN_COMMAND, timeout=60).stdout
                self.argv = el7.parse_join_command(out)
            return self.argv


def apply_step(
    lab: Lab,
    node: Node,
    conn: SshChannel,
    step: AnyStep,
    join: JoinCommand,
    timeout: float = 900,
) -> int:
    """Probe, plan, apply, re-probe. Returns how many commands ran (0 = already done)."""

    def current_plan() -> tuple[Command, ...]:
        facts = step.parse(conn.probe(step.probe(lab, node))[1])
        if step.needs_join_command and not getattr(facts, "joined", True):
            facts = dataclasses.replace(facts, join_command=join())
        plan: tuple[Command, ...] = step.plan(lab, node, facts)
        return plan

    plan = current_plan()
    for command in plan:
        run_command(conn, command, timeout)
    if plan:
        left = current_plan()
        if left:
            raise StepFailed(f"did not converge: still plans {len(left)} command(s) after apply")
    return len(plan)


def provision(
    lab: Lab,
    conns: dict[str, SshChannel],
    steps: tuple[AnyStep, ...],
    progress: Progress | None = None,
    parallel: bool = True,
) -> list[NodeReport]:
    """Every phase on its nodes (in parallel unless told otherwise); one report per node."""
    reports = {n.name: NodeReport(n.name) for n in lab.nodes}
    plane = lab.control_plane
    join = JoinCommand(conns[plane.name] if plane else None)
    say = progress or (lambda node, msg: None)

    def run_node(node: Node, phase_steps: tuple[AnyStep, ...]) -> None:
        report, start = reports[node.name], time.monotonic()
        try:
            for step in phase_steps:
                say(node.name, f"{step.label} ...")
                try:
                    count = apply_step(lab, node, conns[node.name], step, join)
                except (CommandFailed, StepFailed, ValueError) as exc:
                    report.error = f"{step.label} failed on {node.name}: {exc}"
                    say(node.name, f"[red]{step.label} failed[/red]")
                    return
                if count:
                    report.changed.append(step.label)
                    report.commands += count
                    say(node.name, f"{step.label}: changed ({count} command(s))")
                else:
                    report.done.append(step.label)
                    say(node.name, f"{step.label}: already done")
        finally:
            report.seconds += time.monotonic() - start

    for nodes, phase_steps in phases(lab, steps):
        with ThreadPoolExecutor(max_workers=max(1, len(nodes)) if parallel else 1) as pool:
            list(pool.map(run_node, nodes, [phase_steps] * len(nodes)))
        if any(r.error for r in reports.values()):
            break  # later phases depend on this one; every failing node is reported
    return list(reports.values())
