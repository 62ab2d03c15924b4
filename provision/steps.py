"""Which guide steps a lab gets, in the guide's order, and the dry-run plan (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from lab.common.commands import Command, render_shown
from lab.common.redact import redact
from lab.hosts.os import profile_of
from lab.model.config import Lab, Node
from lab.podnet import backend_of
from lab.runtime.images import ImageSet
from provision import underlay
from provision.model import AnyStep, PodnetSteps, Resources, SavingRunner


def steps_for(
    lab: Lab, flannel_upstream: str | None = None, images: ImageSet | None = None
) -> tuple[AnyStep, ...]:
    """The lab's steps in the guide's order: its OS path's, with its pod-network backend's
    placed where that path installs the pod network. `images`: what a lab with
    `runtime: containerd` imports (lab.adapters.imagebuild); `flannel_upstream`: the guide's
    manifest text."""
    resources = Resources(flannel_upstream, images)
    podnet_module = resolve(backend_of(lab).provisioning)
    podnet = PodnetSteps(
        podnet_module.steps(lab, resources),
        getattr(podnet_module, "after_join", lambda lab: ())(lab),
        getattr(podnet_module, "images", lambda lab, resources: ())(lab, resources),
    )
    steps: tuple[AnyStep, ...] = _os_module(lab).steps(lab, resources, podnet)
    return steps


def router_steps_for(lab: Lab) -> tuple[AnyStep, ...]:
    """The router VM's steps on a routed underlay (none on a flat lab): the underlay's own
    (forwarding on, no container runtime), then the pod-network backend's where it has any
    (the BGP backend's top-of-rack bird)."""
    if not lab.network.routed:
        return ()
    backend_steps = getattr(resolve(backend_of(lab).provisioning), "router_steps", None)
    own: tuple[AnyStep, ...] = underlay.router_steps(lab)
    return own + (tuple(backend_steps(lab)) if backend_steps is not None else ())


def inputs_for(
    lab: Lab, channels: Mapping[str, SavingRunner]
) -> dict[str, Callable[[], object]]:
    """The named inputs the lab's steps may ask for (created only when a step needs one;
    files they make go under the lab's state directory)."""
    made: dict[str, Callable[[], object]] = _os_module(lab).inputs(lab, channels)
    return made


def _os_module(lab: Lab) -> Any:
    """The provision/ module of the lab's OS path (lab/hosts/os/ names it)."""
    return resolve(profile_of(lab).provisioning)


def resolve(where: str) -> Any:
    """`package.module` or `package.module:attribute` (an entry point's form): the steps of a
    backend or an OS, which lab/ names without importing provision/."""
    module, _, attribute = where.partition(":")
    found: Any = import_module(module)
    return getattr(found, attribute) if attribute else found


def phases(
    lab: Lab, steps: tuple[AnyStep, ...], machines: Sequence[Node] | None = None
) -> Iterator[tuple[tuple[Node, ...], tuple[AnyStep, ...]]]:
    """Consecutive steps with the same scope form a phase; phases run one after another,
    the nodes of a phase in parallel. `machines`: whom the steps are for (default: the lab's
    nodes; the router VM's steps name it)."""
    group: list[AnyStep] = []
    targets = tuple(lab.nodes if machines is None else machines)
    for step in steps:
        if group and group[-1].scope != step.scope:
            yield _phase(lab, tuple(group), targets)
            group = []
        group.append(step)
    if group:
        yield _phase(lab, tuple(group), targets)


def _phase(
    lab: Lab, steps: tuple[AnyStep, ...], targets: tuple[Node, ...]
) -> tuple[tuple[Node, ...], tuple[AnyStep, ...]]:
    return tuple(n for n in targets if steps[0].applies_to(lab, n)), steps


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
