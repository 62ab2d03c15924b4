"""The host-routes backend's step (pure): host-gw routes to every other node's pod subnet, in a
drop-in of the private NIC's .network file, owned by systemd-networkd (re-applied at boot,
after `vagrant reload`, and when the link's carrier returns)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lab.common.commands import Command, cmd
from lab.hosts import facts as f
from lab.hosts.facts import AnyFact
from lab.model.config import Lab, Node
from lab.podnet.hostroutes import render_pod_routes
from provision.model import AnyStep, Resources, Step, write_file
from provision.networkd import (
    NETWORK_DIR,
    fresh_network_files,
    network_file_for,
    network_files_fact,
)

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


def route_present(route_lines: Sequence[str], destination: str, via: str, dev: str) -> bool:
    return any(line.split()[:5] == [destination, "via", via, "dev", dev] for line in route_lines)


def plan_routes(lab: Lab, node: Node, facts: RoutesFacts) -> tuple[Command, ...]:
    nic = lab.vm.private_nic
    network_file = network_file_for(facts.network_files, nic)
    if network_file is None:
        raise ValueError(
            f"{node.name}: no systemd-networkd .network file configures {nic} "
            f"(looked in {NETWORK_DIR}); is the private network up?"
        )
    dropin = f"{network_file}.d/{DROPIN}"
    wanted = routes_dropin(lab, node)
    missing = [
        r
        for r in render_pod_routes(lab, node)
        if not route_present(facts.routes, str(r.destination), str(r.via), r.device)
    ]
    plan: list[Command] = []
    if facts.network_files.get(dropin) != wanted:
        plan += [write_file(dropin, wanted), cmd("networkctl", "reload")]
    if plan or missing:
        plan.append(cmd("networkctl", "reconfigure", nic))
    return tuple(plan)


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
