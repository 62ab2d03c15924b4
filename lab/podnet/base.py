"""Pod-network backends (pure): what a backend is, and the registry that is the only code that
knows the backends' names.

A backend is one module (lab/podnet/<name>.py) that says everything the harness needs of one
way of wiring pods across nodes: its lab-file checks, the files it renders, the MTU it gives
pods, whether it tunnels, whether the lab file allots the node subnets (or the cluster does),
what the checks read of it on a node (routes, a tunnel device), how its pod network restarts
on a node (the disruptive fault) and what the matrix must show meanwhile, and the module of
provision/ with its steps. Everything else asks the backend (`backend_of(lab).tunnels(lab)`),
never compares a backend's name.

A new backend: docs/architecture.md, "A new pod-network backend"."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from lab.common.commands import Command
from lab.model.problems import Problem
from lab.net import netmath

if TYPE_CHECKING:
    from lab.model.config import Lab, Node

Family = Literal["routing", "tunnel"]  # the guide's two families

# The MTU of the nodes' private NIC on every box here (virtio-net on a libvirt network); a pod
# network carries at most this, less its own overhead
NIC_MTU = 1500


@dataclass(frozen=True)
class Restart:
    """How the backend's pod networking restarts on one node (the "pod network restarted"
    fault) and what the connectivity matrix must show while it lasts.

    Either commands run on the node (`inject`, then `heal`), or, on a cluster, the node's pod
    of a DaemonSet (`daemonset`: its label selector in kube-system) is deleted and its
    replacement awaited."""

    inject: tuple[Command, ...] = ()
    heal: tuple[Command, ...] = ()
    daemonset: str = ""
    # while it lasts, the node's pods are cut from the other nodes' (its routes are gone);
    # False: the data plane outlives its agent (flannel v0.14.0 exits without tearing down)
    isolates: bool = True


@dataclass(frozen=True)
class Read:
    """A read-only command on one node; `kubectl`: its argv are kubectl's arguments, run with
    the cluster's admin kubeconfig on the control plane (a backend knows no cluster client)."""

    node: str
    command: Command
    kubectl: bool = False


@dataclass(frozen=True)
class ReadyCheck:
    """One named thing to wait for, bounded: `reads` run, `ok` judges their outputs (None for a
    read that failed: not there yet)."""

    name: str
    reads: tuple[Read, ...]
    ok: Callable[[Sequence[str | None]], bool]


def routed_mtu_problems(lab: Lab) -> Iterator[Problem]:
    """The one MTU check of the backends that route pod packets as they are (host routes, flannel
    host-gw, BGP): unencapsulated pod traffic crosses the nodes' private NICs (and, on a routed
    underlay, the router's) as it is, so a pod MTU above theirs is dropped or fragmented."""
    mtu = lab.pod_network.mtu
    if mtu is not None and 576 <= mtu <= 9000 and mtu > NIC_MTU:
        yield Problem(
            "pod_network.mtu",
            mtu,
            f"is more than the {NIC_MTU} bytes the nodes' private NIC "
            f"({lab.vm.private_nic}) carries: pod packets cross nodes unencapsulated with a "
            "routing backend, and larger ones are dropped or fragmented on the way",
            f"set pod_network.mtu: {NIC_MTU}, or remove it",
        )


class Backend:
    """One pod-network backend. Subclasses set the class attributes and override what differs;
    an instance is registered once (`register`)."""

    name: ClassVar[str]  # pod_network.driver
    description: ClassVar[str]
    family: ClassVar[Family]
    # the module of provision/ with `steps(lab, resources)` (and optionally `after_join(lab)`):
    # resolved by provision/steps.py only, lab/ never imports provision/
    provisioning: ClassVar[str]
    # the pods run on Kubernetes (the guide's flannel DaemonSet): a lab needs an OS path
    # that installs it (OsProfile.kubernetes)
    needs_kubernetes: ClassVar[bool] = False
    # the lab programs the tunnel itself (no agent): its kernel state follows from the lab
    # file alone, so the suite can compare it field by field and heal it by provisioning
    programs_tunnel: ClassVar[bool] = False
    overhead: ClassVar[int] = 0  # bytes of encapsulation per packet
    sections: ClassVar[tuple[str, ...]] = ()  # the pod_network sub-sections it reads

    # --- what the rest of the harness asks ---------------------------------------------------

    def tunnels(self, lab: Lab) -> bool:
        """Pods' packets between nodes travel encapsulated (VXLAN)."""
        return self.family == "tunnel"

    def dataplane(self, lab: Lab) -> str:
        """The short name reports use for how packets cross nodes ("host-gw", "vxlan")."""
        return self.name

    def max_pod_mtu(self, lab: Lab) -> int:
        """The largest pod MTU the node network carries through this backend."""
        return NIC_MTU - (self.overhead if self.tunnels(lab) else 0)

    def pod_mtu(self, lab: Lab) -> int:
        """The MTU the pods' interfaces must have: the lab's, else the backend's."""
        mtu = lab.pod_network.mtu
        return mtu if mtu is not None else self.max_pod_mtu(lab)

    def allots_subnets(self, lab: Lab) -> bool:
        """The lab file allots each node's pod subnet (node i gets the i-th); False: the
        cluster does (kubeadm, in join order), so only their shape can be expected."""
        return True

    def planned_subnets(self, lab: Lab) -> dict[str, IPv4Network] | None:
        """Each node's pod subnet as the lab file allots it; None where the cluster does."""
        return node_pod_subnets(lab) if self.allots_subnets(lab) else None

    def tunnel_device(self, lab: Lab) -> str | None:
        """The device the tunnel's packets leave through (None: no tunnel)."""
        return None

    def tunnel_port(self, lab: Lab) -> int | None:
        """The UDP port the tunnel's encapsulated packets travel to on the private NIC (None:
        no tunnel: pod packets cross as they are)."""
        return None

    def validate(self, lab: Lab) -> Iterator[Problem]:
        """The backend's own lab-file checks (the generic ones run for every backend)."""
        return iter(())

    def conflist(self, lab: Lab, node: Node, nic_mtu: int | None) -> dict[str, Any] | None:
        """The CNI network config the node's runtime uses (None: the backend installs its
        own, e.g. the flannel DaemonSet). `nic_mtu`: the private NIC's, as the node reports."""
        return None

    def render_files(self, lab: Lab, flannel_upstream: str | None) -> dict[str, str]:
        """Files `python -m lab render` writes for this backend (name -> content)."""
        return {}

    def expected_routes(self, lab: Lab, node: Node) -> tuple[str, ...]:
        """Routes (`ip -4 route` lines) the node must hold for pods of other nodes, when the
        backend programs them as plain routes (checked on every node)."""
        return ()

    def restart(self, lab: Lab, node: Node) -> Restart:
        raise NotImplementedError(f"backend {self.name} has no restart fault")

    def reboot_checks(self, lab: Lab, node: Node) -> tuple[ReadyCheck, ...]:
        """What the node's pod network must show again after a hard reboot before the fault
        counts as healed (beyond the node answering), in order; () when the lab's own
        provisioning persists it all (systemd-networkd brings it back at boot)."""
        return ()


def node_pod_subnets(lab: Lab) -> dict[str, IPv4Network]:
    """The lab file's allocation of node pod subnets: node i gets the i-th /subnet_len of the
    pod CIDR (kubeadm's controller-manager hands out the same sequence in join order)."""
    pn = lab.pod_network
    subnets = netmath.node_subnets(pn.cidr, pn.subnet_len, len(lab.nodes))
    return {node.name: subnet for node, subnet in zip(lab.nodes, subnets, strict=True)}


# The shipped backends, by the module that registers each: imported on first lookup (as
# testinfra's BACKENDS), so that the lab model can consult the registry while the backends'
# modules use the model
BUILTIN = {
    "bgp": "lab.podnet.bgp",
    "flannel": "lab.podnet.flannel",
    "host-routes": "lab.podnet.hostroutes",
    "vxlan": "lab.podnet.vxlan",
}
_BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Make a backend known to validation, rendering, provisioning and the suite."""
    if backend.name in BUILTIN:  # the shipped one first (a no-op while its module registers it)
        importlib.import_module(BUILTIN[backend.name])
    if backend.name in _BACKENDS and _BACKENDS[backend.name] is not backend:
        raise ValueError(f"pod-network backend {backend.name!r} is already registered")
    _BACKENDS[backend.name] = backend
    return backend


def unregister(name: str) -> None:
    """Forget a backend (tests that register a toy one)."""
    _BACKENDS.pop(name, None)


def names() -> tuple[str, ...]:
    return tuple(sorted({*_BACKENDS, *BUILTIN}))


def backend(name: str) -> Backend:
    if name not in _BACKENDS and name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    try:
        return _BACKENDS[name]
    except (KeyError, TypeError):
        raise KeyError(
            f"unknown pod-network backend {name!r}; known: {', '.join(names())}"
        ) from None


def backend_of(lab: Lab) -> Backend:
    return backend(lab.pod_network.driver)
