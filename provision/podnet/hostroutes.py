"""The host-routes backend's step (pure): host-gw routes to every other node's pod subnet, in a
drop-in of the private NIC's .network file, owned by systemd-networkd (re-applied at boot,
after `vagrant reload`, and when the link's carrier returns)."""

from __future__ import annotations

from dataclasses import dataclass

from lab.common.commands import Command
from lab.hosts import facts as f
from lab.hosts.facts import AnyFact
from lab.model.config import Lab, Node
from lab.podnet.hostroutes import render_pod_routes
from provision.model import AnyStep, Resources, Step
from provision.networkd import fresh_network_files, network_files_fact, plan_networkd_routes

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


@dataclass(frozen=True)
class RoutesFacts:
    network_files: dict[str, str]
    routes: tuple[str, ...]  # `ip -4 route show` lines


def routes_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    return {
        "network_files": network_files_fact(),
        "routes": f.ipv4_routes(),
    }


def plan_routes(lab: Lab, node: Node, facts: RoutesFacts) -> tuple[Command, ...]:
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
    facts_type=RoutesFacts,
    facts=routes_facts,
    plan=plan_routes,
    fresh=lambda lab, node: RoutesFacts(fresh_network_files(lab, node), ()),
)


def steps(lab: Lab, resources: Resources) -> tuple[AnyStep, ...]:
    return (ROUTES,)
