"""The host-routes backend's step (pure): host-gw routes to every other node's pod subnet, in a
drop-in of the private NIC's .network file, owned by systemd-networkd (re-applied at boot,
after `vagrant reload`, and when the link's carrier returns)."""

from __future__ import annotations

from lab.common.commands import Command
from lab.model.config import Lab, Node
from lab.podnet.hostroutes import render_pod_routes
from provision.model import AnyStep, Resources, Step
from provision.networkd import RouteFacts, fresh_route_facts, plan_networkd_routes, route_facts

# --- host-gw routes to every other node's pod subnet, owned by systemd-networkd -----------
#
# Vagrant configures the private NIC through systemd-networkd (50-vagrant-eth1.network). The
# routes go into a drop-in of that same .network file, so networkd re-applies them whenever it
# configures the link: at boot, after `vagrant reload`, and when the link's carrier returns.

DROPIN = "netlab-pod-routes.conf"


def routes_dropin(lab: Lab, node: Node) -> str:
    routes = render_pod_routes(lab, node)
    return "# netlab: routes to the other nodes' pod subnets (host-gw)\n" + "".join(
        f"\n[Route]\nDestination={r.destination}\nGateway={r.via}\n" for r in routes
    )


def plan_routes(lab: Lab, node: Node, facts: RouteFacts) -> tuple[Command, ...]:
    return plan_networkd_routes(
        lab,
        node,
        facts.network_files,
        facts.routes,
        DROPIN,
        routes_dropin(lab, node),
        [(str(r.destination), str(r.via), r.device) for r in render_pod_routes(lab, node)],
    )


ROUTES = Step(
    number="11r",
    key="pod-routes",
    title="pod routes (host-gw)",
    section="K8S网络实现方案 / 路由方案: a route per remote pod subnet via its node",
    scope="all",
    facts_type=RouteFacts,
    facts=route_facts,
    plan=plan_routes,
    fresh=fresh_route_facts,
)


def steps(lab: Lab, resources: Resources) -> tuple[AnyStep, ...]:
    return (ROUTES,)
