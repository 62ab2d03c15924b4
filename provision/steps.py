"""Which guide steps a lab gets, in the guide's order, and the dry-run plan (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from lab.common.commands import Command, render_shown
from lab.common.redact import redact
from lab.model import paths
from lab.model.config import Lab, Node
from lab.runtime.images import ImageSet
from provision import debian12, el7, vxlan
from provision.containerd import containerd_step
from provision.model import AnyStep, SavingRunner


def steps_for(
    lab: Lab, flannel_upstream: str | None = None, images: ImageSet | None = None
) -> tuple[AnyStep, ...]:
    """`images`: what a lab with `runtime: containerd` imports (lab.adapters.imagebuild)."""
    if lab.os.family == "debian12":
        if lab.pod_network.driver == "vxlan":  # the tunnel instead of host-gw routes
            steps = tuple(vxlan.VXLAN if s is debian12.ROUTES else s for s in debian12.STEPS)
        else:
            steps = debian12.STEPS
        if lab.runtime == "containerd":  # before the closing check of the tools
            if images is None:
                raise ValueError(f"lab {lab.name} runs containerd: its steps need the images")
            last = len(steps) - 1 if steps and steps[-1].check else len(steps)
            steps = (*steps[:last], containerd_step(images), *steps[last:])
        return steps
    if flannel_upstream is None:
        raise ValueError("the el7 path needs the upstream flannel manifest text")
    return el7.steps(flannel_upstream)


def inputs_for(lab: Lab, channels: Mapping[str, SavingRunner]) -> dict[str, Callable[[], object]]:
    """The named inputs the lab's steps may ask for (created only when a step needs one;
    files they make go under the lab's state directory)."""
    if lab.os.family == "el7":
        return el7.inputs(lab, channels, str(paths.state_dir(lab.name) / "images"))
    return {}


def phases(
    lab: Lab, steps: tuple[AnyStep, ...]
) -> Iterator[tuple[tuple[Node, ...], tuple[AnyStep, ...]]]:
    """Consecutive steps with the same scope form a phase; phases run one after another,
    the nodes of a phase in parallel."""
    group: list[AnyStep] = []
    for step in steps:
        if group and group[-1].scope != step.scope:
            yield _phase(lab, tuple(group))
            group = []
        group.append(step)
    if group:
        yield _phase(lab, tuple(group))


def _phase(lab: Lab, steps: tuple[AnyStep, ...]) -> tuple[tuple[Node, ...], tuple[AnyStep, ...]]:
    return tuple(n for n in lab.nodes if steps[0].applies_to(lab, n)), steps


@dataclass(frozen=True)
class PlannedStep:
    step: AnyStep
    commands: tuple[Command, ...]
    probes: tuple[Command, ...] = ()  # what a wait step reads again until it is settled


def dry_run(lab: Lab, node: Node, steps: tuple[AnyStep, ...]) -> list[PlannedStep]:
    """The plan for a node fresh from its box, without touching any VM."""
    return [
        PlannedStep(
            step,
            step.plan(lab, node, step.fresh(lab, node)),
            step.commands(lab, node) if step.wait is not None else (),
        )
        for step in steps
        if step.applies_to(lab, node)
    ]


def render_plan(node: Node, planned: list[PlannedStep]) -> str:
    lines = [f"# {node.name} ({node.role}, {node.ip})"]
    for item in planned:
        lines.append(f"## {item.step.label} -- {item.step.section}")
        if item.step.wait is not None:
            policy = item.step.wait
            lines.append(
                f"   (a wait, at most {policy.timeout_s:.0f} s, every {policy.interval_s:.0f} s: "
                "reads until settled, else fails naming what is not)"
            )
            lines += [f"   {render_shown(probe)}" for probe in item.probes]
        elif item.step.check:
            lines.append("   (a check: plans nothing; fails naming what the node lacks)")
        elif not item.commands:
            lines.append("   (already done on a fresh node)")
        for command in item.commands:
            text = redact(render_shown(command), command.secrets)
            lines += [f"   {line}" for line in text.splitlines()]
    return "\n".join(lines) + "\n"
