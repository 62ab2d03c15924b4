"""Apply the plans over SSH, whatever the OS and the steps: phases in order, the nodes of a
phase in parallel; every failing node reported.

Per node and phase: one probe round trip reads the facts of every step of the phase (a command
shared by several steps once, all under one sudo); each step plans from them. A step that
changed something is re-probed, together with the next step's facts (one round trip), and must
then plan nothing: a step that does not converge is an error, not a silent change on the next
run. Facts read before a change are stale after it: a later step re-reads its own before
planning. An already-provisioned node costs one round trip per phase. Only commands marked
`mirror` (package mirrors, registries, downloads) are retried, within a bound."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lab.adapters.protocols import NodeChannel
from lab.common import waits
from lab.common.commands import Command, Output, render_remote
from lab.common.errors import CommandFailed
from lab.common.redact import redact
from lab.hosts.facts import outputs_by_command, unique_commands
from lab.model.config import Lab, Node
from provision.model import AnyStep, NotSettled
from provision.steps import phases

Progress = Callable[[str, str], None]  # (node, message)
Inputs = Mapping[str, Callable[[], object]]  # input name -> its source, called when needed


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


def run_command(
    conn: NodeChannel,
    command: Command,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
    policy: waits.Policy = waits.PACKAGE_MIRROR,
) -> None:
    if command.mirror:  # mirrors and downloads only: bounded retries, logged
        waits.retry_call(
            policy, lambda: conn.run(command, timeout=timeout), on=(CommandFailed,), sleep=sleep
        )
    else:
        conn.run(command, timeout=timeout)


def probe_steps(
    lab: Lab, node: Node, conn: NodeChannel, steps: Sequence[AnyStep]
) -> dict[Command, Output]:
    """The facts of `steps`, each probe command once: one round trip, one sudo."""
    commands = unique_commands(fact for s in steps for fact in s.facts(lab, node).values())
    if not commands:
        return {}
    _, outputs = conn.probe(commands, one_sudo=True)
    return outputs_by_command(commands, outputs)


def _shown(commands: Sequence[Command]) -> str:
    return "; ".join(redact(render_remote(c), c.secrets).splitlines()[0] for c in commands)


@dataclass
class Applier:
    """Applies one phase's steps to one node; `on_step(step, commands_run)` after each."""

    lab: Lab
    node: Node
    conn: NodeChannel
    inputs: Inputs
    timeout: float = 900
    sleep: Callable[[float], None] = time.sleep
    policy: waits.Policy = waits.PACKAGE_MIRROR

    def phase(self, steps: Sequence[AnyStep], on_step: Callable[[AnyStep, int], None]) -> None:
        lab, node = self.lab, self.node
        outputs = probe_steps(lab, node, self.conn, steps)  # fresh until a step changes the node
        for i, step in enumerate(steps):
            if not set(step.commands(lab, node)) <= outputs.keys():
                outputs = probe_steps(lab, node, self.conn, steps[i : i + 1])
            plan: tuple[Command, ...] = (
                self.settle(step, outputs)
                if step.wait is not None
                else step.plan(lab, node, step.read(lab, node, outputs, self.inputs))
            )
            for command in plan:
                run_command(self.conn, command, self.timeout, self.sleep, self.policy)
            if plan:
                # everything read before is stale now; this step and the next are read again
                outputs = probe_steps(lab, node, self.conn, steps[i : i + 2])
                left = step.plan(lab, node, step.read(lab, node, outputs, self.inputs))
                if left:
                    raise StepFailed(
                        f"did not converge: after applying {len(plan)} command(s) it still "
                        f"plans {len(left)}: {_shown(left)}"
                    )
            on_step(step, len(plan))

    def settle(self, step: AnyStep, outputs: Mapping[Command, Output]) -> tuple[Command, ...]:
        """A wait step: its facts read again (one round trip each) while its plan raises
        NotSettled, within its policy; then the last answer, named, fails the step."""
        assert step.wait is not None
        first = [outputs]

        def attempt() -> tuple[Command, ...]:
            read = first.pop() if first else probe_steps(self.lab, self.node, self.conn, [step])
            facts = step.read(self.lab, self.node, read, self.inputs)
            plan: tuple[Command, ...] = step.plan(self.lab, self.node, facts)
            return plan

        try:
            return waits.retry_call(step.wait, attempt, on=(NotSettled,), sleep=self.sleep)
        except NotSettled as exc:
            raise StepFailed(
                f"{step.wait.name}: not within {step.wait.timeout_s:.0f}s: {exc}"
            ) from None


def provision(
    lab: Lab,
    conns: Mapping[str, NodeChannel],
    steps: tuple[AnyStep, ...],
    inputs: Inputs | None = None,
    progress: Progress | None = None,
    parallel: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    policy: waits.Policy = waits.PACKAGE_MIRROR,
    machines: Sequence[Node] | None = None,
) -> list[NodeReport]:
    """Every phase on its nodes (in parallel unless told otherwise); one report per node.
    A phase that failed on any node stops the run after it, with every failure reported.
    `machines`: whom the steps are for (default: the lab's nodes; the router VM's steps
    name it)."""
    targets = tuple(lab.nodes if machines is None else machines)
    reports = {n.name: NodeReport(n.name) for n in targets}
    say = progress or (lambda node, msg: None)

    def run_node(node: Node, phase_steps: tuple[AnyStep, ...]) -> None:
        report, start = reports[node.name], time.monotonic()
        current: list[AnyStep] = [phase_steps[0]]

        def on_step(step: AnyStep, count: int) -> None:
            if count:
                report.changed.append(step.label)
                report.commands += count
                say(node.name, f"{step.label}: changed ({count} command(s))")
            else:
                report.done.append(step.label)
                say(node.name, f"{step.label}: already done")
            following = phase_steps.index(step) + 1
            if following < len(phase_steps):
                current[0] = phase_steps[following]
                say(node.name, f"{current[0].label} ...")

        applier = Applier(lab, node, conns[node.name], inputs or {}, sleep=sleep, policy=policy)
        say(node.name, f"{current[0].label} ...")
        try:
            applier.phase(phase_steps, on_step)
        except (CommandFailed, StepFailed, ValueError) as exc:
            report.error = f"{current[0].label} failed on {node.name}: {exc}"
            say(node.name, f"[red]{current[0].label} failed[/red]")
        finally:
            report.seconds += time.monotonic() - start

    for nodes, phase_steps in phases(lab, steps, targets):
        with ThreadPoolExecutor(max_workers=max(1, len(nodes)) if parallel else 1) as pool:
            list(pool.map(run_node, nodes, [phase_steps] * len(nodes)))
        if any(r.error for r in reports.values()):
            break  # later phases depend on this one; every failing node is reported
    return list(reports.values())
