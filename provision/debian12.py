"""The Debian 12 path (the CI lab): the guide's OS steps that apply, then the node networking of
the host-routes pod network: a CNI conflist per node and host-gw routes between nodes (pure)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from lab.commands import Command, cmd
from lab.config import Lab, Node
from lab.render import CNI_BIN_DIR, CNI_CONFLIST_PATH, render_cni_conflist, render_pod_routes
from provision.common import BRIDGE, FORWARD, HOSTNAME, SWAP
from provision.model import AnyStep, Output, Step, read_file, write_file

# --- CNI network config (the plugin config kubelet would read from /etc/cni/net.d) ---------


@dataclass(frozen=True)
class CniFacts:
    conflist: str | None
    plugins: tuple[str, ...]  # binaries present in the CNI bin dir


def probe_cni(lab: Lab, node: Node) -> tuple[Command, ...]:
    return (read_file(CNI_CONFLIST_PATH), cmd("ls", "-1", CNI_BIN_DIR, sudo=False))


def parse_cni(out: Sequence[Output]) -> CniFacts:
    plugins = tuple(sorted(out[1].stdout.split())) if out[1].ok else ()
    return CniFacts(out[0].text_or_none(), plugins)


def conflist_text(lab: Lab, node: Node) -> str:
    return json.dumps(render_cni_conflist(lab, node), indent=2) + "\n"


def plan_cni(lab: Lab, node: Node, facts: CniFacts) -> tuple[Command, ...]:
    plan: list[Command] = []
    needed = {p["type"] for p in render_cni_conflist(lab, node)["plugins"]} | {"host-local"}
    if not needed <= set(facts.plugins):
        plan.append(
            cmd(
                "apt-get", "install", "-y", "--no-install-recommends", "containernetworking-plugins"
            )
        )
    wanted = conflist_text(lab, node)
    if facts.conflist != wanted:
        plan.append(write_file(CNI_CONFLIST_PATH, wanted))
    return tuple(plan)


CNI = Step(
    "11",
    "cni-config",
    "CNI network config",
    "安装flannel (here: bridge + host-local, one pod subnet per node)",
    "all",
    CniFacts,
    probe_cni,
    parse_cni,
    plan_cni,
    lambda lab, node: CniFacts(None, ("bridge", "host-local", "loopback", "portmap")),
)


# --- host-gw routes to every other node's pod subnet, persisted as a systemd unit ----------

ROUTES_UNIT = "/etc/systemd/system/netlab-pod-routes.service"


def routes_unit(lab: Lab, node: Node) -> str:
    routes = render_pod_routes(lab, node)
    starts = "".join(
        f"ExecStart=/usr/sbin/ip route replace {r.destination} via {r.via} dev {r.device}\n"
        for r in routes
    )
    stops = "".join(
        f"ExecStop=-/usr/sbin/ip route del {r.destination} via {r.via} dev {r.device}\n"
        for r in routes
    )
    return (
        "[Unit]\n"
        "Description=netlab: routes to the other nodes' pod subnets (host-gw)\n"
        "After=networking.service\n"
        "Wants=networking.service\n\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        f"{starts}{stops}\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


@dataclass(frozen=True)
class RoutesFacts:
    unit: str | None
    enabled: bool
    routes: tuple[str, ...]  # `ip -4 route show` lines


def probe_routes(lab: Lab, node: Node) -> tuple[Command, ...]:
    return (
        read_file(ROUTES_UNIT),
        cmd("systemctl", "is-enabled", "netlab-pod-routes.service", sudo=False),
        cmd("ip", "-4", "route", "show", sudo=False),
    )


def parse_routes(out: Sequence[Output]) -> RoutesFacts:
    return RoutesFacts(
        out[0].text_or_none(),
        out[1].stdout.strip() == "enabled",
        tuple(line.strip() for line in out[2].stdout.splitlines() if line.strip()),
    )


def route_present(route_lines: Sequence[str], destination: str, via: str, dev: str) -> bool:
    return any(line.split()[:5] == [destination, "via", via, "dev", dev] for line in route_lines)


def plan_routes(lab: Lab, node: Node, facts: RoutesFacts) -> tuple[Command, ...]:
    plan: list[Command] = []
    wanted = routes_unit(lab, node)
    if facts.unit != wanted:
        plan += [write_file(ROUTES_UNIT, wanted), cmd("systemctl", "daemon-reload")]
    if not facts.enabled:
        plan.append(cmd("systemctl", "enable", "netlab-pod-routes.service"))
    for r in render_pod_routes(lab, node):
        if not route_present(facts.routes, str(r.destination), str(r.via), r.device):
            plan.append(
                cmd(
                    "ip", "route", "replace", str(r.destination), "via", str(r.via), "dev", r.device
                )
            )
    return tuple(plan)


ROUTES = Step(
    "11r",
    "pod-routes",
    "pod routes (host-gw)",
    "K8S网络实现方案 / 路由方案: a route per remote pod subnet via its node",
    "all",
    RoutesFacts,
    probe_routes,
    parse_routes,
    plan_routes,
    lambda lab, node: RoutesFacts(None, False, ()),
)

STEPS: tuple[AnyStep, ...] = (BRIDGE, FORWARD, SWAP, HOSTNAME, CNI, ROUTES)
