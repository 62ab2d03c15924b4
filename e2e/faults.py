"""Faults injected on purpose (disruptive tests and the nightly): each knows how to break one
node, how to heal it, and which cells of the connectivity matrix must fail while it lasts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from lab import waits
from lab.adapters.ssh import SshChannel
from lab.commands import cmd
from lab.k8s import KUBECTL, SYSTEM_NAMESPACE, ClusterPod, parse_pods
from lab.machines import LabMachines
from lab.reachability import Faults
from lab.render import render_pod_routes

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
            res = node.run(
                cmd("systemctl", "is-system-running", "--wait", sudo=False),
                timeout=120,
                check=False,
            )
            if res.exit_code not in (0, 1):  # 1 = "degraded": up, some unit failed
                rt.close()
            return res.stdout.strip() in ("running", "degraded")

        def probe() -> bool:
            try:
                return answers()
            except Exception:  # noqa: BLE001 (still booting: ssh refused or reset)
                rt.close()
                return False

        waits.wait_until(NODE_BACK, probe, bool)


@dataclass
class PodNetworkRestart:
    """The node's pod networking restarts. CI lab: its host-gw routes go, then systemd-networkd
    configures the private link again (as at boot). Kubernetes: its flannel pod is deleted and
    the DaemonSet recreates it."""

    node: str
    name: str = "pod network restarted"
    replaced: tuple[str, ...] = ()  # flannel pods deleted by inject

    @property
    def expected(self) -> Faults:
        return Faults(isolated=frozenset({self.node}))

    def inject(self, rt: LabMachines) -> None:
        node = rt.channels()[self.node]
        if rt.lab.kubernetes is None:
            for r in render_pod_routes(rt.lab, rt.lab.node(self.node)):
                node.run(cmd("ip", "route", "del", str(r.destination), "via", str(r.via)))
        else:
            self.replaced = tuple(p.name for p in self._flannel_pods(rt))
            self._plane(rt).run(
                cmd(*self._select("delete", "pod"), "--wait=false"),
            )

    def heal(self, rt: LabMachines) -> None:
        if rt.lab.kubernetes is None:  # networkd configures the link again, routes included
            rt.channels()[self.node].run(cmd("networkctl", "reconfigure", rt.lab.vm.private_nic))
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
