"""Faults injected on purpose (disruptive tests and the nightly): each knows how to break one
node, how to heal it, and which cells of the connectivity matrix must fail while it lasts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from lab.adapters.ssh import SshChannel
from lab.common import waits
from lab.common.commands import cmd
from lab.hosts.machines import LabMachines
from lab.k8s import KUBECTL, SYSTEM_NAMESPACE, ClusterPod, parse_pods
from lab.net.reachability import Faults
from lab.net.render import VXLAN_DEVICE, node_pod_subnets, vtep_mac

log = logging.getLogger(__name__)

NODE_BACK = waits.Policy("node answers ssh after a reboot", timeout_s=600, interval_s=3)
FLANNEL_BACK = waits.Policy("flannel pod running again", timeout_s=300, interval_s=3)


class Fault(Protocol):
    name: str
    node: str

    @property
    def expected(self) -> Faults: ...

    def inject(self, rt: LabMachines) -> None: ...

    def heal(self, rt: LabMachines) -> None: ...


@dataclass
class LinkDown:
    """The node's private-network NIC loses its link (libvirt); the management NIC stays up."""

    node: str
    name: str = "private link down"

    @property
    def expected(self) -> Faults:
        return Faults(isolated=frozenset({self.node}))

    def inject(self, rt: LabMachines) -> None:
        rt.libvirt.set_link(rt.domain(self.node), rt.private_network, up=False)

    def heal(self, rt: LabMachines) -> None:
        rt.libvirt.set_link(rt.domain(self.node), rt.private_network, up=True)


@dataclass
class Suspend:
    """The whole VM is paused: nothing on it runs or answers."""

    node: str
    name: str = "node suspended"

    @property
    def expected(self) -> Faults:
        return Faults(frozen=frozenset({self.node}))

    def inject(self, rt: LabMachines) -> None:
        rt.close()  # its ssh channel would hang
        rt.libvirt.suspend(rt.domain(self.node))

    def heal(self, rt: LabMachines) -> None:
        rt.libvirt.resume(rt.domain(self.node))
        rt.close()


@dataclass
class HardReboot:
    """Reset button: no clean shutdown; the node boots again by itself. Its pods are gone
    (their namespaces lived in memory) and must be created again, as kubelet would."""

    node: str
    name: str = "node hard-rebooted"

    @property
    def expected(self) -> Faults:
        return Faults(frozen=frozenset({self.node}))

    def inject(self, rt: LabMachines) -> None:
        rt.close()
        rt.libvirt.hard_reset(rt.domain(self.node))

    def heal(self, rt: LabMachines) -> None:
        rt.close()

        def answers() -> bool:
            node = rt.channels()[self.node]
            # no --wait (systemd 240+): NODE_BACK polls "starting" until it settles
            res = node.run(cmd("systemctl", "is-system-running"), timeout=30, check=False)
            return res.stdout.strip() in ("running", "degraded")  # degraded: up, a unit failed

        def probe() -> bool:
            try:
                return answers()
            except Exception:  # noqa: BLE001 (still booting: ssh refused or reset)
                rt.close()
                return False

        waits.wait_until(NODE_BACK, probe, bool)


@dataclass
class PodNetworkRestart:
    """The node's pod networking restarts. CI labs: its routes to the other nodes' pod subnets
    go (host-gw or through flannel.1), then systemd-networkd configures the link again (as at
    boot). Kubernetes: its flannel pod is deleted and the DaemonSet recreates it."""

    node: str
    name: str = "pod network restarted"
    replaced: tuple[str, ...] = ()  # flannel pods deleted by inject

    @property
    def expected(self) -> Faults:
        return Faults(isolated=frozenset({self.node}))

    def inject(self, rt: LabMachines) -> None:
        node = rt.channels()[self.node]
        if rt.lab.kubernetes is None:  # the routes to the other nodes' pod subnets go
            subnets = node_pod_subnets(rt.lab)
            for peer in rt.lab.nodes:
                if peer.name != self.node:
                    node.run(cmd("ip", "route", "del", str(subnets[peer.name])))
        else:
            self.replaced = tuple(p.name for p in self._flannel_pods(rt))
            self._plane(rt).run(
                cmd(*self._select("delete", "pod"), "--wait=false"),
            )

    def heal(self, rt: LabMachines) -> None:
        if rt.lab.kubernetes is None:  # networkd configures the link again, routes included
            link = VXLAN_DEVICE if rt.lab.pod_network.driver == "vxlan" else rt.lab.vm.private_nic
            rt.channels()[self.node].run(cmd("networkctl", "reconfigure", link))
            return

        def replaced_and_ready() -> bool:  # the old pod may still answer while terminating
            pods = self._flannel_pods(rt)
            new = [p for p in pods if p.name not in self.replaced]
            return bool(new) and all(p.running_and_ready for p in new)

        waits.wait_until(FLANNEL_BACK, replaced_and_ready, bool)

    def _select(self, *verb: str) -> tuple[str, ...]:
        """kubectl VERB for the flannel pod(s) of this node."""
        return (
            *KUBECTL,
            "-n",
            SYSTEM_NAMESPACE,
            *verb,
            "-l",
            "app=flannel",
            "--field-selector",
            f"spec.nodeName={self.node}",
        )

    def _plane(self, rt: LabMachines) -> SshChannel:
        return rt.channels()[rt.lab.control_plane.name]  # type: ignore[union-attr]

    def _flannel_pods(self, rt: LabMachines) -> tuple[ClusterPod, ...]:
        out = self._plane(rt).run(cmd(*self._select("get", "pod"), "-o", "json"))
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

    @property
    def expected(self) -> Faults:
        return Faults()

    def inject(self, rt: LabMachines) -> None:
        rt.channels()[self.node].run(cmd("systemctl", "stop", "containerd"), timeout=120)

    def heal(self, rt: LabMachines) -> None:
        node = rt.channels()[self.node]
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

    @property
    def expected(self) -> Faults:
        return Faults(cut=frozenset({frozenset({self.node, self.peer})}))

    def inject(self, rt: LabMachines) -> None:
        peer = rt.lab.node(self.peer)
        rt.channels()[self.node].run(
            cmd("bridge", "fdb", "del", vtep_mac(peer), "dev", VXLAN_DEVICE, "dst", str(peer.ip))
        )

    def heal(self, rt: LabMachines) -> None:
        if self.reprovision is None:
            raise ValueError("FdbEntryLost needs the reprovision callback to heal")
        self.reprovision()
