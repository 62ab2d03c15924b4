"""The Calico-shaped BGP backend's steps (pure): bird2's configuration on every node (and on
the router VM of a routed underlay), bird enabled and running with it. The pod routes come
from bird itself (proto bird): this step programs none. bird2 is on the box; a node without
it gets Debian's package (a mirror, where the node has one)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lab.common.commands import Command, cmd
from lab.hosts import facts as f
from lab.hosts.facts import AnyFact
from lab.model.config import Lab, Node
from lab.podnet.bgp import (
    BIRD_CONF,
    BIRD_PACKAGE,
    BIRD_SERVICE,
    render_bird_conf,
    render_router_bird_conf,
)
from provision.model import AnyStep, Resources, Step, write_file

BIRD = "/usr/sbin/bird"


@dataclass(frozen=True)
class BirdFacts:
    installed: bool
    conf: str | None
    enabled: bool
    active: bool


def bird_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    return {
        "installed": f.file_exists(BIRD),
        "conf": f.file_text(BIRD_CONF),
        "enabled": f.unit_enabled(BIRD_SERVICE),
        "active": f.unit_active(BIRD_SERVICE),
    }


def plan_bird(wanted: str, facts: BirdFacts) -> tuple[Command, ...]:
    """bird2 installed, its configuration the wanted one, enabled, and (re)started when the
    configuration changed or it is not running."""
    plan: list[Command] = []
    if not facts.installed:
        plan.append(
            cmd("apt-get", "install", "-y", "--no-install-recommends", BIRD_PACKAGE, mirror=True)
        )
    changed = facts.conf != wanted
    if changed:
        plan.append(write_file(BIRD_CONF, wanted, mode="0640", owner="bird"))
    if not facts.enabled:
        plan.append(cmd("systemctl", "enable", BIRD_SERVICE))
    if changed or not facts.active:
        plan.append(cmd("systemctl", "restart", BIRD_SERVICE))
    return tuple(plan)


def _step(key: str, title: str, render: Callable[[Lab, Node], str]) -> Step[BirdFacts]:
    return Step(
        number="11b" if key == "bird" else "r2",
        key=key,
        title=title,
        section="K8S网络实现方案 / 路由方案, as Calico does it: BGP (bird) announces pod subnets",
        scope="all",
        facts_type=BirdFacts,
        facts=bird_facts,
        plan=lambda lab, node, facts: plan_bird(render(lab, node), facts),
        fresh=lambda lab, node: BirdFacts(True, None, True, True),  # the box's bird2, default conf
    )


def bird_node() -> Step[BirdFacts]:
    """Built at each call, not at import: docs/mutation.md, "functions the modules call while
    they are imported"."""
    return _step("bird", "Calico-shaped BGP (bird2)", render_bird_conf)


def bird_router() -> Step[BirdFacts]:
    return _step(
        "router-bird", "top-of-rack BGP (bird2)", lambda lab, node: render_router_bird_conf(lab)
    )


def steps(lab: Lab, resources: Resources) -> tuple[AnyStep, ...]:
    return (bird_node(),)


def router_steps(lab: Lab) -> tuple[AnyStep, ...]:
    """The router VM's BGP: a session per node, every pod subnet learned and passed on."""
    return (bird_router(),) if lab.network.routed else ()
