"""The flannel-shaped VXLAN pod network on Debian (pure): flannel v0.14.0's vxlan backend as
systemd-networkd keeps it (the device, its address, per remote node a neighbour, an FDB entry
and an onlink route), /run/flannel/subnet.env, and flanneld's --ip-masq rules.

Facts are read from the kernel as well as from the files, so a lost FDB entry or neighbour
(the classic VXLAN failures) is planned back; a device whose VXLAN settings differ (another
VNI, port or local address: e.g. bound to the management NIC) is deleted and created again,
as flanneld does with an incompatible device."""

from __future__ import annotations

from dataclasses import dataclass

from lab.common.commands import Command, cmd
from lab.hosts import facts as f
from lab.hosts.facts import AnyFact
from lab.model.config import Lab, Node
from lab.podnet import tunnel
from lab.podnet.vxlan import (
    VXLAN_DEVICE,
    flannel_mtu,
    render_flannel_masq_rules,
    render_subnet_env,
    render_vxlan_netdev,
    render_vxlan_network,
    render_vxlan_underlay_dropin,
)
from provision.model import AnyStep, Resources, Step, write_file
from provision.networkd import (
    NETWORK_DIR,
    WAIT_ONLINE,
    fresh_network_files,
    network_file_for,
    network_files_fact,
    nic_mtu,
)

NETDEV = f"{NETWORK_DIR}/05-netlab-flannel.netdev"
NETWORK = f"{NETWORK_DIR}/05-netlab-flannel.network"
DROPIN = "netlab-vxlan.conf"
SUBNET_ENV = "/run/flannel/subnet.env"
TMPFILES = "/etc/tmpfiles.d/netlab-flannel.conf"
MASQ_UNIT = "netlab-flannel-masq.service"
MASQ_UNIT_PATH = f"/etc/systemd/system/{MASQ_UNIT}"


@dataclass(frozen=True)
class VxlanFacts:
    network_files: dict[str, str]
    device: tunnel.VxlanDevice | None  # None: no flannel.1
    addresses: tuple[str, ...]  # "10.244.0.0/32"
    fdb: tuple[tuple[str, str], ...]  # (mac, dst) of flannel.1's FDB entries with a dst
    neighbors: tuple[tuple[str, str], ...]  # (ip, mac) of permanent neighbours on flannel.1
    routes: tuple[tuple[str, str], ...]  # (dst, gateway) of onlink routes via flannel.1
    subnet_env: str | None
    tmpfiles: str | None
    masq_unit: str | None
    nat_rules: tuple[str, ...]  # `iptables -t nat -S POSTROUTING` lines
    nic_mtu: int | None


def vxlan_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    return {
        "network_files": network_files_fact(),
        **tunnel.tunnel_facts(),
        "subnet_env": f.file_text(SUBNET_ENV),
        "tmpfiles": f.file_text(TMPFILES),
        "masq_unit": f.file_text(MASQ_UNIT_PATH),
        "nat_rules": f.stdout_lines(
            "nat POSTROUTING rules", cmd("iptables", "-t", "nat", "-S", "POSTROUTING")
        ),
        "nic_mtu": nic_mtu(lab),
    }


def render_tmpfiles(lab: Lab, node: Node, mtu: int) -> str:
    """subnet.env lives in /run (gone at every boot): systemd-tmpfiles writes it again."""
    env = render_subnet_env(lab, node, mtu).replace("\n", "\\n")
    return (
        "# netlab: /run/flannel/subnet.env, as flanneld writes it, at every boot\n"
        "d /run/flannel 0755 root root -\n"
        f"f+ {SUBNET_ENV} 0644 root root - {env}\n"
    )


def masq_rule_lines(lab: Lab, node: Node) -> tuple[str, ...]:
    """The rules as `iptables -S` prints them (the form the facts hold)."""
    return tuple(
        "-A POSTROUTING " + " ".join(rule) for rule in render_flannel_masq_rules(lab, node)
    )


def render_masq_unit(lab: Lab, node: Node) -> str:
    checks = "\n".join(
        f"ExecStart=/bin/sh -c 'iptables -t nat -C POSTROUTING {' '.join(r)} 2>/dev/null || "
        f"iptables -t nat -A POSTROUTING {' '.join(r)}'"
        for r in render_flannel_masq_rules(lab, node)
    )
    return (
        "# netlab: flanneld --ip-masq's POSTROUTING rules (no flanneld runs here)\n"
        "[Unit]\nDescription=netlab: flannel's --ip-masq rules\nAfter=network-pre.target\n\n"
        f"[Service]\nType=oneshot\nRemainAfterExit=yes\n{checks}\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def plan_vxlan(lab: Lab, node: Node, facts: VxlanFacts) -> tuple[Command, ...]:
    nic = lab.vm.private_nic
    underlay = network_file_for(facts.network_files, nic)
    if underlay is None:
        raise ValueError(
            f"{node.name}: no systemd-networkd .network file configures {nic} "
            f"(looked in {NETWORK_DIR}); is the private network up?"
        )
    mtu = flannel_mtu(facts.nic_mtu)
    dropin = f"{underlay}.d/{DROPIN}"
    files = {
        NETDEV: render_vxlan_netdev(lab, node),
        NETWORK: render_vxlan_network(lab, node),
        dropin: render_vxlan_underlay_dropin(),
    }
    plan: list[Command] = [
        write_file(path, content)
        for path, content in files.items()
        if facts.network_files.get(path) != content
    ]
    if plan:
        plan.append(cmd("networkctl", "reload"))
    device = facts.device
    recreate = device is not None and bool(tunnel.device_problems(lab, node, device))
    if recreate:
        plan.append(cmd("ip", "link", "delete", VXLAN_DEVICE))
    addresses, fdb, neighbors, routes = tunnel.wanted_state(lab, node)
    kernel_ok = (
        device is not None
        and not recreate
        and set(facts.addresses) == addresses
        and fdb <= set(facts.fdb)
        and neighbors <= set(facts.neighbors)
        and routes <= set(facts.routes)
    )
    if plan or not kernel_ok:
        if device is None or recreate or dropin in {c.argv[-1] for c in plan if c.stdin}:
            plan.append(cmd("networkctl", "reconfigure", nic))  # creates the stacked flannel.1
        plan += [
            cmd("networkctl", "reconfigure", VXLAN_DEVICE),
            cmd(WAIT_ONLINE, f"--interface={VXLAN_DEVICE}", "--timeout=60"),
        ]
    tmpfiles = render_tmpfiles(lab, node, mtu)
    if facts.tmpfiles != tmpfiles:
        plan.append(write_file(TMPFILES, tmpfiles))
    if facts.tmpfiles != tmpfiles or facts.subnet_env != render_subnet_env(lab, node, mtu):
        plan.append(cmd("systemd-tmpfiles", "--create", TMPFILES))
    unit = render_masq_unit(lab, node)
    rules_missing = not set(masq_rule_lines(lab, node)) <= set(facts.nat_rules)
    if facts.masq_unit != unit:
        plan += [write_file(MASQ_UNIT_PATH, unit), cmd("systemctl", "daemon-reload")]
    if facts.masq_unit != unit or rules_missing:
        plan += [
            cmd("systemctl", "enable", MASQ_UNIT),
            cmd("systemctl", "restart", MASQ_UNIT),
        ]
    return tuple(plan)


def fresh_vxlan(lab: Lab, node: Node) -> VxlanFacts:
    """A node fresh from the box: Vagrant's .network for the private NIC, nothing else."""
    return VxlanFacts(
        network_files=fresh_network_files(lab, node),
        device=None,
        addresses=(),
        fdb=(),
        neighbors=(),
        routes=(),
        subnet_env=None,
        tmpfiles=None,
        masq_unit=None,
        nat_rules=("-P POSTROUTING ACCEPT",),
        nic_mtu=1500,
    )


VXLAN = Step(
    number="11v",
    key="vxlan",
    title="flannel-shaped VXLAN (flannel.1)",
    section="K8S网络实现方案 / 隧道方案: flannel vxlan backend, programmed as flanneld does",
    scope="all",
    facts_type=VxlanFacts,
    facts=vxlan_facts,
    plan=plan_vxlan,
    fresh=fresh_vxlan,
)


def steps(lab: Lab, resources: Resources) -> tuple[AnyStep, ...]:
    return (VXLAN,)
