"""Faults injected on purpose (disruptive tests and the nightly): each knows how to break one
node, how to heal it, which cells of the connectivity matrix must fail while it lasts, how
long its recovery may take and whether the node's pods die with it. The registry at the end
(`KINDS`) is the one list of faults: which labs each applies to (from the lab definition),
which pods watch it, and how it is made."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from e2e.ledger import Budget
from lab.adapters.ssh import SshChannel
from lab.common import waits
from lab.common.commands import Command, cmd
from lab.hosts.machines import LabMachines
from lab.k8s import KUBECTL, SYSTEM_NAMESPACE, ClusterPod, parse_pods
from lab.model.config import Lab
from lab.model.underlay import router_nic, segment_of
from lab.net.reachability import Faults
from lab.podnet import NIC_MTU, Restart, backend_of
from lab.podnet.base import Read
from lab.podnet.vxlan import VXLAN_DEVICE, vtep_mac

log = logging.getLogger(__name__)

NODE_BACK = waits.Policy("node answers ssh after a reboot", timeout_s=600, interval_s=3)
DAEMON_POD_BACK = waits.Policy(
    "the node's pod of the pod network's DaemonSet running again", timeout_s=300, interval_s=3
)


class Fault(Protocol):
    name: str
    node: str
    bound_s: float  # recovery must come within this (from the end of the fault)
    kills_pods: bool  # the node's pods die with it (recreated after, as kubelet would)
    budget: Budget  # what live flows to the node's pods may lose (e2e/ledger.py), and why

    @property
    def expected(self) -> Faults: ...

    def inject(self, machines: LabMachines) -> None: ...

    def heal(self, machines: LabMachines) -> None: ...


# --- budgets: what live flows between the node's pods and the others may lose --------------

AFTER_S = 10  # loss may outlast a fault's end by this: the peers' neighbour entries resolved
# again (ARP after a failed entry: 1 s probes) and the next datagram or connection through,
# on 1-vCPU TCG guests that have just come back (a resumed or re-linked VM's first seconds)

WITHIN_THE_FAULT = Budget(
    "fault",
    after_s=AFTER_S,
    connections_survive=True,
    reason=(
        "the path to the node's pods is gone while the fault lasts and back when it heals: "
        "loss is bounded by the fault's own length (plus the neighbour re-resolution); the "
        "pods and their sockets live on, and TCP retransmits for about 15 minutes "
        "(net.ipv4.tcp_retries2 = 15), so an established connection survives"
    ),
)

CUT_WITH_THE_PODS = Budget(
    "unbounded",
    connections_survive=False,
    reason=(
        "the node's pods die with it (their namespaces lived in memory): flows to them "
        "cannot come back and their connections are cut; the recreated pods get new "
        "addresses, and their recovery is the matrix's bound (bound_s). The ledger "
        "records when the loss began and that nothing was lost before the reset"
    ),
)

NOTHING_LOST = Budget(
    "none",
    connections_survive=True,
    reason=(
        "containerd is not on the data path: its shims keep the pods' tasks and the pods' "
        "network namespaces are the kernel's, so a workload must not notice: no datagram "
        "lost, no connection failed, no TCP retransmission, no connection cut"
    ),
)


# The router's faults (routed labs). Only the tunnel's port dropped is judged by the matrix and
# so runs live flows (e2e/disruption.py); the narrow hop and netem are judged by the underlay's
# paths (e2e/test_underlay.py), which run none. Not yet measured on a routed lab: the ledger
# and the routed underlay met in a merge.
ACROSS_THE_ROUTER = Budget(
    "fault",
    after_s=AFTER_S,
    connections_survive=True,
    reason=(
        "the router drops or delays what crosses its link toward the node's segment (the "
        "tunnel's port, packets over a narrow hop's MTU, netem's delay and loss) while the "
        "fault lasts; nothing on the nodes or in their pods changes, so loss ends with the "
        "heal (plus the neighbour re-resolution) and an established TCP connection survives "
        "by retransmitting"
    ),
)


@dataclass
class LinkDown:
    """The node's private-network NIC loses its link (libvirt); the management NIC stays up."""

    node: str
    name: str = "private link down"
    bound_s: float = 90
    kills_pods: bool = False
    budget: Budget = WITHIN_THE_FAULT

    @property
    def expected(self) -> Faults:
        return Faults(isolated=frozenset({self.node}))

    def inject(self, machines: LabMachines) -> None:
        machines.libvirt.set_link(
            machines.domain(self.node), machines.private_network(self.node), up=False
        )

    def heal(self, machines: LabMachines) -> None:
        machines.libvirt.set_link(
            machines.domain(self.node), machines.private_network(self.node), up=True
        )


@dataclass
class Suspend:
    """The whole VM is paused: nothing on it runs or answers."""

    node: str
    name: str = "node suspended"
    bound_s: float = 90
    kills_pods: bool = False
    # a paused VM keeps its kernel's state (sockets, neighbours): it resumes where it was
    budget: Budget = WITHIN_THE_FAULT

    @property
    def expected(self) -> Faults:
        return Faults(frozen=frozenset({self.node}))

    def inject(self, machines: LabMachines) -> None:
        machines.close()  # its ssh channel would hang
        machines.libvirt.suspend(machines.domain(self.node))

    def heal(self, machines: LabMachines) -> None:
        machines.libvirt.resume(machines.domain(self.node))
        machines.close()


@dataclass
class HardReboot:
    """Reset button: no clean shutdown; the node boots again by itself. Its pods are gone
    (their namespaces lived in memory) and must be created again, as kubelet would."""

    node: str
    name: str = "node hard-rebooted"
    bound_s: float = 420
    kills_pods: bool = True  # their namespaces lived in memory
    budget: Budget = CUT_WITH_THE_PODS

    @property
    def expected(self) -> Faults:
        return Faults(frozen=frozenset({self.node}))

    def inject(self, machines: LabMachines) -> None:
        machines.close()
        machines.libvirt.hard_reset(machines.domain(self.node))

    def heal(self, machines: LabMachines) -> None:
        machines.close()

        def answers() -> bool:
            node = machines.channels()[self.node]
            # no --wait (systemd 240+): NODE_BACK polls "starting" until it settles
            res = node.run(cmd("systemctl", "is-system-running"), timeout=30, check=False)
            return res.stdout.strip() in ("running", "degraded")  # degraded: up, a unit failed

        def probe() -> bool:
            try:
                return answers()
            except Exception:  # noqa: BLE001 (still booting: ssh refused or reset)
                machines.close()
                return False

        waits.wait_until(NODE_BACK, probe, bool)
        lab = machines.lab
        for check in backend_of(lab).reboot_checks(lab, lab.node(self.node)):
            policy = waits.Policy(check.name, timeout_s=REBOOT_CHECK_S, interval_s=3)
            waits.wait_until(policy, lambda c=check: read_all(machines, c.reads), check.ok)  # type: ignore[misc]


REBOOT_CHECK_S = 300  # each of a backend's checks after a hard reboot (a flanneld restart)


def read_all(machines: LabMachines, reads: Sequence[Read]) -> list[str | None]:
    """Each read's stdout, None where it failed or the node did not answer (not there yet)."""
    out: list[str | None] = []
    for read in reads:
        command = read.command
        if read.kubectl:
            command = cmd(*KUBECTL, *command.argv, sudo=command.sudo)
        try:
            res = machines.channels()[read.node].run(command, timeout=30, check=False)
        except Exception:  # noqa: BLE001 (a node still settling: ssh refused or reset)
            machines.close()
            out.append(None)
            continue
        out.append(res.stdout if res.exit_code == 0 else None)
    return out


@dataclass
class PodNetworkRestart:
    """The node's pod networking restarts, as its backend's `restart` says (lab/podnet/):
    on the CI labs its routes to the other nodes' pod subnets go (host-gw, or through
    flannel.1) and systemd-networkd configures the link again, as at boot; on Kubernetes its
    pod of the backend's DaemonSet is deleted and the replacement awaited."""

    node: str
    how: Restart
    name: str = "pod network restarted"
    bound_s: float = 90
    kills_pods: bool = False
    # the node's routes (or its DaemonSet pod) go and come back; its pods' interfaces stay
    budget: Budget = WITHIN_THE_FAULT
    replaced: tuple[str, ...] = ()  # the DaemonSet's pods deleted by inject

    @property
    def expected(self) -> Faults:
        return Faults(isolated=frozenset({self.node})) if self.how.isolates else Faults()

    def inject(self, machines: LabMachines) -> None:
        node = machines.channels()[self.node]
        for command in self.how.inject:
            node.run(command)
        if self.how.daemonset:
            self.replaced = tuple(p.name for p in self._daemon_pods(machines))
            self._plane(machines).run(cmd(*self._select("delete", "pod"), "--wait=false"))

    def heal(self, machines: LabMachines) -> None:
        node = machines.channels()[self.node]
        for command in self.how.heal:
            node.run(command)
        if not self.how.daemonset:
            return

        def replaced_and_ready() -> bool:  # the old pod may still answer while terminating
            pods = self._daemon_pods(machines)
            new = [p for p in pods if p.name not in self.replaced]
            return bool(new) and all(p.running_and_ready for p in new)

        waits.wait_until(DAEMON_POD_BACK, replaced_and_ready, bool)

    def _select(self, *verb: str) -> tuple[str, ...]:
        """kubectl VERB for the DaemonSet's pod(s) of this node."""
        return (
            *KUBECTL,
            "-n",
            SYSTEM_NAMESPACE,
            *verb,
            "-l",
            self.how.daemonset,
            "--field-selector",
            f"spec.nodeName={self.node}",
        )

    def _plane(self, machines: LabMachines) -> SshChannel:
        return machines.channels()[machines.lab.control_plane.name]  # type: ignore[union-attr]

    def _daemon_pods(self, machines: LabMachines) -> tuple[ClusterPod, ...]:
        out = self._plane(machines).run(cmd(*self._select("get", "pod"), "-o", "json"))
        return parse_pods(out.stdout)


@dataclass
class ContainerdRestart:
    """containerd goes down on the node and comes back (`systemctl stop`, then `start`), as in
    a package upgrade. Its shims keep the pods' tasks (Debian's unit: KillMode=process), so the
    pods' network must not notice: no cell may fail while it is down. Healed when containerd's
    API answers again (`ctr version`); the disruptive test then waits for its CRI too
    (flow.wait_runtime_back) before the CRI's own checks."""

    node: str
    name: str = "containerd restarted"
    bound_s: float = 120
    kills_pods: bool = False
    budget: Budget = NOTHING_LOST

    @property
    def expected(self) -> Faults:
        return Faults()

    def inject(self, machines: LabMachines) -> None:
        machines.channels()[self.node].run(cmd("systemctl", "stop", "containerd"), timeout=120)

    def heal(self, machines: LabMachines) -> None:
        node = machines.channels()[self.node]
        node.run(cmd("systemctl", "start", "containerd"), timeout=120)
        waits.wait_until(
            CONTAINERD_BACK,
            lambda: node.run(cmd("ctr", "version"), timeout=30, check=False),
            lambda res: res.ok,
        )


CONTAINERD_BACK = waits.Policy("containerd answers on its socket again", timeout_s=120)


@dataclass
class FdbEntryLost:
    """On a VXLAN lab: the node loses the FDB entry of a peer's VTEP (`bridge fdb del`), so
    it can no longer encapsulate for that peer; every cell between the two fails (TCP needs
    both ways). Healed as a person would: by provisioning again, which reads the kernel, finds
    the entry missing and has systemd-networkd put it back."""

    node: str
    peer: str = ""
    reprovision: Callable[[], object] | None = None
    name: str = "FDB entry lost"
    bound_s: float = 120
    kills_pods: bool = False
    # the peer's encapsulation goes until provisioning puts the entry back (the heal)
    budget: Budget = WITHIN_THE_FAULT

    @property
    def expected(self) -> Faults:
        return Faults(cut=frozenset({frozenset({self.node, self.peer})}))

    def inject(self, machines: LabMachines) -> None:
        peer = machines.lab.node(self.peer)
        machines.channels()[self.node].run(
            cmd("bridge", "fdb", "del", vtep_mac(peer), "dev", VXLAN_DEVICE, "dst", str(peer.ip))
        )

    def heal(self, machines: LabMachines) -> None:
        if self.reprovision is None:
            raise ValueError("FdbEntryLost needs the reprovision callback to heal")
        self.reprovision()


# --- the routed underlay's faults, made on the router VM (a real hop) ------------------------
#
# Each hits the router's NIC toward the victim's segment: every path between a node of that
# segment and a node of another crosses it. Their commands are pure (`plan_*`) and tagged with
# FAULT_TAG, so a heal removes exactly what the fault added.

FAULT_TAG = "netlab-fault"
HOP_MTU = 1400  # a narrow link behind the router (a tunnel, a provider's link)
NETEM_DELAY_MS = 300  # well above a TCG guest's own connect times (tens of ms when busy)
NETEM_LOSS_PCT = 10


def _tagged(*rule: str) -> tuple[str, ...]:
    return (*rule, "-m", "comment", "--comment", FAULT_TAG)


def hop_rules(nic: str, mtu: int) -> tuple[tuple[str, ...], ...]:
    """(table, chain, match..., target) of a narrow link between the router and `nic`'s
    segment: it carries at most `mtu` bytes and says nothing about it. The router's ICMP
    "fragmentation needed" for a don't-fragment packet is dropped (flannel#1614, calico#9433:
    filtered ICMP); a larger packet is dropped in either direction instead of fragmented, as
    on a link that cannot carry it (so a VXLAN packet, whose outer header has no DF, is lost
    too): toward the segment after the router's own TTL check (the router answers a TTL probe,
    the link after it does not), from it before (the link before the router drops it)."""
    over = ("-m", "length", "--length", f"{mtu + 1}:65535")
    return (
        ("filter", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP"),
        ("filter", "FORWARD", "-o", nic, *over, "-j", "DROP"),
        ("raw", "PREROUTING", "-i", nic, *over, "-j", "DROP"),
    )


def plan_narrow_hop(nic: str, mtu: int) -> tuple[tuple[Command, ...], tuple[Command, ...]]:
    """(inject, heal) on the router: the NIC's MTU lowered, the hop's rules; then undone."""
    rules = hop_rules(nic, mtu)
    inject = (
        cmd("ip", "link", "set", nic, "mtu", str(mtu)),
        *(cmd("iptables", "-t", t, "-I", chain, *_tagged(*rest)) for t, chain, *rest in rules),
    )
    heal = (
        *(cmd("iptables", "-t", t, "-D", chain, *_tagged(*rest)) for t, chain, *rest in rules),
        cmd("ip", "link", "set", nic, "mtu", str(NIC_MTU)),
    )
    return inject, heal


def plan_port_dropped(nic: str, port: int) -> tuple[tuple[Command, ...], tuple[Command, ...]]:
    """(inject, heal) on the router: every UDP packet to `port` it forwards out of `nic`
    dropped (a middlebox that filters VXLAN: flannel#2388), then allowed again."""
    rule = _tagged("-o", nic, "-p", "udp", "--dport", str(port), "-j", "DROP")
    return (cmd("iptables", "-I", "FORWARD", *rule),), (cmd("iptables", "-D", "FORWARD", *rule),)


def plan_netem(nic: str, delay_ms: int, loss_pct: int) -> tuple[tuple[Command, ...], ...]:
    """(inject, heal) on the router: netem delay and loss on everything it sends out of `nic`
    (the Debian cloud kernel of the VM has sch_netem; the CI host's kernel has not)."""
    inject = (
        cmd(
            "tc", "qdisc", "replace", "dev", nic, "root", "netem",
            "delay", f"{delay_ms}ms", "loss", f"{loss_pct}%",
        ),
    )  # fmt: skip
    return inject, (cmd("tc", "qdisc", "del", "dev", nic, "root"),)


def victims_hop(lab: Lab, node: str) -> tuple[str, str]:
    """(the router's NIC toward `node`'s segment, a name for the hop in reports)."""
    seg = segment_of(lab, lab.node(node))
    if seg is None:
        raise ValueError(f"lab {lab.name} has no routed underlay: no hop to break")
    nic = router_nic(lab, seg)
    return nic, f"{lab.network.router_vm.name} {nic} (toward {seg.name})"


def crosses_hop(lab: Lab, node: str, a: str, b: str) -> bool:
    """A cell between nodes `a` and `b` crosses the router's NIC toward `node`'s segment."""
    home = segment_of(lab, lab.node(node))
    sa, sb = segment_of(lab, lab.node(a)), segment_of(lab, lab.node(b))
    return sa != sb and home in (sa, sb)


@dataclass
class RouterFault:
    """A fault made on the router VM by commands (inject, then heal)."""

    node: str  # the victim: the router's NIC toward its segment is hit
    name: str
    inject_commands: tuple[Command, ...]
    heal_commands: tuple[Command, ...]
    faults: Faults = field(default_factory=Faults)
    hop: str = ""
    bound_s: float = 90
    kills_pods: bool = False
    budget: Budget = ACROSS_THE_ROUTER

    @property
    def expected(self) -> Faults:
        return self.faults

    def inject(self, machines: LabMachines) -> None:
        router = machines.router()
        for command in self.inject_commands:
            router.run(command)

    def heal(self, machines: LabMachines) -> None:
        router = machines.router()
        for command in self.heal_commands:
            router.run(command)


def narrow_hop(lab: Lab, node: str) -> RouterFault:
    nic, hop = victims_hop(lab, node)
    inject, heal = plan_narrow_hop(nic, HOP_MTU)
    return RouterFault(node, f"narrow hop (MTU {HOP_MTU}, no ICMP) at {hop}", inject, heal, hop=hop)


def vxlan_port_dropped(lab: Lab, node: str) -> RouterFault:
    """The tunnel's UDP port dropped at the router: every cell between the victim's segment
    and another is cut (TCP needs both ways; node -> pod goes through the tunnel too)."""
    nic, hop = victims_hop(lab, node)
    port = backend_of(lab).tunnel_port(lab)
    if port is None:
        raise ValueError(f"lab {lab.name}: its pod network has no tunnel port to drop")
    inject, heal = plan_port_dropped(nic, port)
    cut = frozenset(
        frozenset({a, b})
        for a in lab.node_names
        for b in lab.node_names
        if a < b and crosses_hop(lab, node, a, b)
    )
    return RouterFault(node, f"UDP {port} dropped at {hop}", inject, heal, Faults(cut=cut), hop=hop)


def link_netem(lab: Lab, node: str) -> RouterFault:
    nic, hop = victims_hop(lab, node)
    inject, heal = plan_netem(nic, NETEM_DELAY_MS, NETEM_LOSS_PCT)
    return RouterFault(
        node,
        f"netem delay {NETEM_DELAY_MS}ms loss {NETEM_LOSS_PCT}% at {hop}",
        inject,
        heal,
        hop=hop,
    )


# --- the registry ---------------------------------------------------------------------------

Reprovision = Callable[[], object]


@dataclass(frozen=True)
class Kind:
    """One fault of the registry: how it is made for a node, which labs can take it (from
    the lab definition only, so every worker collects the same), and which pods watch it:
    the CNI-direct sandboxes, or CRI pods probed from their network namespace (their
    runtime is what the fault takes down)."""

    make: Callable[[Lab, str, Reprovision], Fault]
    applies: Callable[[Lab], bool] = lambda lab: True
    watched_by: Literal["cni", "cri"] = "cni"
    # how the fault is judged: by which cells of the matrix fail (e2e/test_disruptive.py), or
    # by what it does to the underlay's paths: sizes that cross, connect times
    # (e2e/underlay.py, e2e/test_underlay.py)
    judged: Literal["matrix", "path", "latency"] = "matrix"


def _other_node(lab: Lab, node: str) -> str:
    return next(n for n in sorted(lab.node_names) if n != node)


KINDS: dict[str, Kind] = {
    "private-link-down": Kind(lambda lab, node, _: LinkDown(node)),
    "node-suspended": Kind(lambda lab, node, _: Suspend(node)),
    "node-hard-rebooted": Kind(lambda lab, node, _: HardReboot(node)),
    "pod-network-restarted": Kind(
        lambda lab, node, _: PodNetworkRestart(node, backend_of(lab).restart(lab, lab.node(node)))
    ),
    # heals by provisioning, which reads the tunnel from the kernel: where the lab programs it
    "fdb-entry-lost": Kind(
        lambda lab, node, again: FdbEntryLost(node, _other_node(lab, node), again),
        applies=lambda lab: backend_of(lab).programs_tunnel,
    ),
    "containerd-restarted": Kind(
        lambda lab, node, _: ContainerdRestart(node),
        applies=lambda lab: lab.runtime == "containerd",
        watched_by="cri",
    ),
    # the routed underlay's, made on the router (labs with network.segments only)
    "vxlan-port-dropped": Kind(
        lambda lab, node, _: vxlan_port_dropped(lab, node),
        applies=lambda lab: lab.network.routed and backend_of(lab).tunnels(lab),
    ),
    "hop-mtu-blackhole": Kind(
        lambda lab, node, _: narrow_hop(lab, node),
        applies=lambda lab: lab.network.routed,
        judged="path",
    ),
    "link-netem": Kind(
        lambda lab, node, _: link_netem(lab, node),
        applies=lambda lab: lab.network.routed,
        judged="latency",
    ),
}


def faults_for(lab: Lab, judged: str = "matrix") -> list[str]:
    """The faults a lab can take, from its definition, sorted: those judged by the matrix
    (the default: e2e/test_disruptive.py), or by the underlay's paths (`path`, `latency`)."""
    return sorted(
        name for name, kind in KINDS.items() if kind.applies(lab) and kind.judged == judged
    )


def make_fault(name: str, lab: Lab, node: str, reprovision: Reprovision) -> Fault:
    return KINDS[name].make(lab, node, reprovision)


def victim(lab: Lab) -> str:
    """The node every fault hits: the last one, from the lab definition."""
    return sorted(lab.node_names)[-1]
