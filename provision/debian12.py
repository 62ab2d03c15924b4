"""The Debian 12 path (the CI lab): the guide's OS steps that apply, then the node networking of
the host-routes pod network: a CNI conflist per node and host-gw routes between nodes (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lab.common.commands import Command, cmd
from lab.hosts import facts as f
from lab.hosts.facts import AnyFact
from lab.model.config import Lab, Node
from lab.net import netmath
from lab.net.render import (
    CNI_BIN_DIR,
    CNI_CONFLIST_PATH,
    node_pod_subnets,
    render_cni_conflist,
    render_cni_conflist_text,
    render_pod_routes,
)
from provision.common import BRIDGE, FORWARD, HOSTNAME, SWAP, tools_step
from provision.model import AnyStep, Step, write_file

# --- CNI network config (the plugin config kubelet would read from /etc/cni/net.d) ---------


#
# The bridge gets a fixed MAC (a systemd-networkd .netdev). Left alone, Linux gives a bridge the
# lowest MAC of its ports, so cni0's MAC changes as pods come and go: conntrack entries break
# (containernetworking/cni#285) and the bridge plugin's own CHECK fails with "Bridge interface
# cni0 Mac doesn't match" (found by this suite's CHECK test on Debian's plugins 1.1.1).


#
# udev must also leave the MACs of the plugin's veths alone: systemd's default
# MACAddressPolicy=persistent rewrites a new veth's MAC right after the plugin created it, so the
# ADD result no longer describes the host and CHECK fails with "Interface vethX Mac doesn't match"
# (containernetworking/plugins#805; also found by this suite's CHECK test).

VETH_LINK = "/etc/systemd/network/10-netlab-veth.link"
VETH_LINK_CONTENT = (
    "# netlab: keep the MAC a CNI plugin gave its veth (udev's default policy rewrites it)\n"
    "[Match]\nDriver=veth\n\n[Link]\nMACAddressPolicy=none\n"
)


@dataclass(frozen=True)
class CniFacts:
    conflist: str | None
    plugins: tuple[str, ...]  # binaries present in the CNI bin dir
    netdev: str | None = None
    bridge_mac: str | None = None  # cni0's MAC now, if the bridge exists
    veth_link: str | None = None
    nic_mtu: int | None = None  # the private NIC's (the VXLAN pod MTU follows it)


def bridge_netdev_path(lab: Lab) -> str:
    return f"/etc/systemd/network/05-netlab-{lab.pod_network.bridge}.netdev"


def bridge_mac(lab: Lab, node: Node) -> str:
    """0a:58 + the gateway's IPv4 bytes, as Kubernetes' bridge networking derives it."""
    gateway = netmath.gateway(node_pod_subnets(lab)[node.name])
    return "0a:58:" + ":".join(f"{b:02x}" for b in gateway.packed)


def bridge_netdev(lab: Lab, node: Node) -> str:
    return (
        "# netlab: the pod bridge, with a MAC that does not follow its ports\n"
        f"[NetDev]\nName={lab.pod_network.bridge}\nKind=bridge\n"
        f"MACAddress={bridge_mac(lab, node)}\n"
    )


def nic_mtu(lab: Lab) -> f.Fact[int | None]:
    """The private NIC's MTU (the VXLAN pod MTU follows it); CNI and VXLAN share the probe."""
    return f.Fact(
        "private NIC MTU",
        cmd("cat", f"/sys/class/net/{lab.vm.private_nic}/mtu", sudo=False),
        lambda out: int(out.stdout.strip()) if out.ok and out.stdout.strip().isdigit() else None,
    )


def cni_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    listing = cmd("ls", "-1", CNI_BIN_DIR, sudo=False)
    return {
        "conflist": f.file_text(CNI_CONFLIST_PATH),
        "plugins": f.Fact(
            "CNI plugins",
            listing,
            lambda out: tuple(sorted(out.stdout.split())) if out.ok else (),
        ),
        "netdev": f.file_text(bridge_netdev_path(lab)),
        "bridge_mac": f.text_if_ok(
            "bridge MAC",
            cmd("cat", f"/sys/class/net/{lab.pod_network.bridge}/address", sudo=False),
        ),
        "veth_link": f.file_text(VETH_LINK),
        "nic_mtu": nic_mtu(lab),
    }


def plan_cni(lab: Lab, node: Node, facts: CniFacts) -> tuple[Command, ...]:
    plan: list[Command] = []
    needed = {p["type"] for p in render_cni_conflist(lab, node, facts.nic_mtu)["plugins"]} | {
        "host-local"
    }
    if not needed <= set(facts.plugins):
        plan.append(
            cmd(
                "apt-get",
                "install",
                "-y",
                "--no-install-recommends",
                "containernetworking-plugins",
                mirror=True,
            )
        )
    wanted = render_cni_conflist_text(lab, node, facts.nic_mtu)
    if facts.conflist != wanted:
        plan.append(write_file(CNI_CONFLIST_PATH, wanted))
    netdev, mac = bridge_netdev(lab, node), bridge_mac(lab, node)
    if facts.netdev != netdev:
        plan += [write_file(bridge_netdev_path(lab), netdev), cmd("networkctl", "reload")]
    if facts.bridge_mac is not None and facts.bridge_mac != mac:
        plan.append(cmd("ip", "link", "set", lab.pod_network.bridge, "address", mac))
    if facts.veth_link != VETH_LINK_CONTENT:
        plan += [write_file(VETH_LINK, VETH_LINK_CONTENT), cmd("udevadm", "control", "--reload")]
    return tuple(plan)


CNI = Step(
    number="11",
    key="cni-config",
    title="CNI network config",
    section="安装flannel (here: bridge + host-local, one pod subnet per node)",
    scope="all",
    facts_type=CniFacts,
    facts=cni_facts,
    plan=plan_cni,
    fresh=lambda lab, node: CniFacts(
        None, ("bridge", "host-local", "loopback", "portmap"), nic_mtu=1500
    ),
)


# --- host-gw routes to every other node's pod subnet, owned by systemd-networkd -----------
#
# Vagrant configures the private NIC through systemd-networkd (50-vagrant-eth1.network). The
# routes go into a drop-in of that same .network file, so networkd re-applies them whenever it
# configures the link: at boot, after `vagrant reload`, and when the link's carrier returns.

NETWORK_DIR = "/etc/systemd/network"
DROPIN = "netlab-pod-routes.conf"


def routes_dropin(lab: Lab, node: Node) -> str:
    routes = render_pod_routes(lab, node)
    return "# netlab: routes to the other nodes' pod subnets (host-gw)\n" + "".join(
        f"\n[Route]\nDestination={r.destination}\nGateway={r.via}\n" for r in routes
    )


def parse_network_files(grep_output: str) -> dict[str, str]:
    """`grep -rH '' /etc/systemd/network` -> path -> content."""
    files: dict[str, list[str]] = {}
    for line in grep_output.splitlines():
        path, sep, text = line.partition(":")
        if sep:
            files.setdefault(path, []).append(text)
    return {path: "\n".join(lines) + "\n" for path, lines in files.items()}


def network_file_for(files: dict[str, str], nic: str) -> str | None:
    """The .network file networkd uses for `nic`: the first, in lexical order, that matches."""
    for path in sorted(p for p in files if p.endswith(".network")):
        names = [
            word
            for line in files[path].splitlines()
            if line.strip().startswith("Name=")
            for word in line.split("=", 1)[1].split()
        ]
        if nic in names:
            return path
    return None


@dataclass(frozen=True)
class RoutesFacts:
    network_files: dict[str, str]
    routes: tuple[str, ...]  # `ip -4 route show` lines


def routes_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    return {
        "network_files": f.Fact(
            "networkd files",
            cmd("grep", "-rH", "", NETWORK_DIR),
            lambda out: parse_network_files(out.stdout),
        ),
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
    fresh=lambda lab, node: RoutesFacts(
        {
            f"{NETWORK_DIR}/50-vagrant-{lab.vm.private_nic}.network": (
                f"[Match]\nName={lab.vm.private_nic}\n\n[Network]\nAddress={node.ip}/"
                f"{lab.network.private.prefixlen}\n"
            )
        },
        (),
    ),
)

OS_STEPS: tuple[AnyStep, ...] = (BRIDGE, FORWARD, SWAP, HOSTNAME)


STEPS: tuple[AnyStep, ...] = (
    tools_step("debian12", everything=False),
    *OS_STEPS,
    CNI,
    ROUTES,
    tools_step("debian12", everything=True),
)
