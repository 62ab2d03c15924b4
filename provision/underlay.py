"""The routed underlay's steps (pure): on every node of a lab with network.segments, the route
to the rest of the node network via the router on its segment (a drop-in of the private NIC's
.network file, kept by systemd-networkd like the host-gw routes); on the router VM, IPv4
forwarding (persisted) and nothing a router does not run (the box's containerd stopped and
disabled: under TCG an idle daemon still costs the host CPU).

The router's steps run before the nodes' (provision/run.py), with the same applier: facts,
plan, apply, re-probe."""

from __future__ import annotations

from dataclasses import dataclass

from lab.common.commands import Command, cmd
from lab.hosts import facts as f
from lab.model.config import Lab, Node
from lab.model.underlay import underlay_route
from provision.common import FORWARD
from provision.model import AnyStep, Step
from provision.networkd import RouteFacts, fresh_route_facts, plan_networkd_routes, route_facts

DROPIN = "netlab-underlay.conf"


def underlay_dropin(lab: Lab, node: Node) -> str:
    route = underlay_route(lab, node)
    assert route is not None
    return (
        "# netlab: the other segments of the routed underlay, via the router on this one\n"
        f"\n[Route]\nDestination={route.destination}\nGateway={route.via}\n"
    )


def plan_underlay(lab: Lab, node: Node, facts: RouteFacts) -> tuple[Command, ...]:
    route = underlay_route(lab, node)
    if route is None:
        return ()
    return plan_networkd_routes(
        lab,
        node,
        facts.network_files,
        facts.routes,
        DROPIN,
        underlay_dropin(lab, node),
        [(str(route.destination), str(route.via), route.device)],
    )


UNDERLAY = Step(
    number="4u",
    key="underlay-route",
    title="route to the other segments (routed underlay)",
    section="(routed underlay) the node network across the router",
    scope="all",
    facts_type=RouteFacts,
    facts=route_facts,
    plan=plan_underlay,
    fresh=fresh_route_facts,
)


def node_steps(lab: Lab) -> tuple[AnyStep, ...]:
    """The nodes' underlay step where the lab has a routed underlay (none on a flat lab)."""
    return (UNDERLAY,) if lab.network.routed else ()


# --- the router VM ----------------------------------------------------------------------------

CONTAINERD = "containerd"


@dataclass(frozen=True)
class QuietFacts:
    enabled: bool
    active: bool


def plan_quiet(lab: Lab, node: Node, facts: QuietFacts) -> tuple[Command, ...]:
    if not facts.enabled and not facts.active:
        return ()
    return (cmd("systemctl", "disable", "--now", CONTAINERD),)


QUIET = Step(
    number="r1",
    key="router-quiet",
    title="no container runtime on the router",
    section="(routed underlay) the router runs no pods",
    scope="all",
    facts_type=QuietFacts,
    facts=lambda lab, node: {
        "enabled": f.unit_enabled(CONTAINERD),
        "active": f.unit_active(CONTAINERD),
    },
    plan=plan_quiet,
    fresh=lambda lab, node: QuietFacts(True, True),
)


def router_steps(lab: Lab) -> tuple[AnyStep, ...]:
    """The router VM's own steps: forwarding on (the guide's ip_forward step, as on a node),
    the box's container runtime off."""
    return (FORWARD, QUIET)
