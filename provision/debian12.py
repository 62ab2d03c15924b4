"""The Debian 12 path (the CI labs): the guide's OS steps that apply, the CNI network config of
the lab's pod-network backend (bridge + host-local), the backend's own steps, and containerd
on a lab with `runtime: containerd` (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lab.common.commands import Command, cmd
from lab.hosts import facts as f
from lab.hosts.facts import AnyFact
from lab.hosts.os import profile_of
from lab.model.config import Lab, Node
from lab.net import netmath
from lab.podnet import node_pod_subnets
from lab.podnet.bridge import CNI_CONFLIST_PATH, render_cni_conflist, render_cni_conflist_text
from provision import underlay
from provision.common import BRIDGE, FORWARD, HOSTNAME, SWAP, tools_step
from provision.containerd import containerd_step
from provision.model import AnyStep, PodnetSteps, Resources, SavingRunner, Step, write_file
from provision.networkd import nic_mtu

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


def cni_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    listing = cmd("ls", "-1", profile_of(lab).cni_bin_dir, sudo=False)
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


OS_STEPS: tuple[AnyStep, ...] = (BRIDGE, FORWARD, SWAP, HOSTNAME)


def steps(lab: Lab, resources: Resources, podnet: PodnetSteps) -> tuple[AnyStep, ...]:
    """The guide's OS steps that apply, the route across a routed underlay, the CNI config,
    the backend's steps, containerd where the lab runs it, then the closing check of the
    tools."""
    os_path = profile_of(lab)
    runtime: tuple[AnyStep, ...] = ()
    if lab.runtime == "containerd":
        if resources.images is None:
            raise ValueError(f"lab {lab.name} runs containerd: its steps need the images")
        runtime = (containerd_step(resources.images),)
    return (
        tools_step(os_path, everything=False),
        *OS_STEPS,
        *underlay.node_steps(lab),
        CNI,
        *podnet.images,
        *podnet.network,
        *podnet.after_join,
        *runtime,
        tools_step(os_path, everything=True),
    )


def inputs(lab: Lab, channels: Mapping[str, SavingRunner]) -> dict[str, Callable[[], object]]:
    """No step of this path asks for an input (there is no cluster to join)."""
    return {}
