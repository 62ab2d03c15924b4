"""The Kubernetes objects the network checks need (pure, frozen): only the fields they use."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Literal

FLANNEL_PUBLIC_IP = "flannel.alpha.coreos.com/public-ip"
FLANNEL_PUBLIC_IPV6 = "flannel.alpha.coreos.com/public-ipv6"
RUN_LABEL = "netlab.io/run"
E2E_LABEL = "netlab.io/e2e"
SYSTEM_NAMESPACE = "kube-system"
FLANNEL_CONFIGMAP = "kube-flannel-cfg"
# where flannel's manifest puts its ConfigMap: kube-flannel since v0.20, kube-system before
FLANNEL_NAMESPACES = ("kube-flannel", "kube-system")
KUBEADM_CONFIGMAP = "kubeadm-config"

ContainerState = Literal["running", "waiting", "terminated", "unknown"]
RestartPolicy = Literal["Always", "OnFailure", "Never"]
ServiceType = Literal["ClusterIP", "NodePort"]


@dataclass(frozen=True)
class ClusterNode:
    """A node as the checks see it. On a dual-stack cluster the IPv4 side is what the checks
    judge (this lab is IPv4); the IPv6 side is kept and shown in their messages."""

    name: str
    ready: bool
    ready_detail: str  # "status: reason: message" of the Ready condition, for problem messages
    internal_ip: IPv4Address | None  # the first IPv4 InternalIP
    pod_cidrs: tuple[IPv4Network, ...]  # IPv4 of spec.podCIDRs (or spec.podCIDR); empty until set
    flannel_public_ip: IPv4Address | None  # annotation written by flanneld
    internal_ips_v6: tuple[IPv6Address, ...] = ()
    pod_cidrs_v6: tuple[IPv6Network, ...] = ()
    flannel_public_ipv6: IPv6Address | None = None

    @property
    def ipv6_text(self) -> str:
        """` (IPv6, not checked: ...)` when the node has an IPv6 side, else empty."""
        parts = [*map(str, self.internal_ips_v6), *map(str, self.pod_cidrs_v6)]
        return f" (IPv6, not checked: {', '.join(parts)})" if parts else ""


@dataclass(frozen=True)
class ContainerStatus:
    name: str
    ready: bool
    restart_count: int
    state: ContainerState
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    container_id: str = ""  # "docker://<id>" (the runtime's own id), once created

    def describe(self) -> str:
        """`waiting: CrashLoopBackOff, 7 restarts` — what `kubectl get pods` would summarise."""
        text: str = self.state
        if self.reason:
            text += f": {self.reason}"
        if self.exit_code is not None:
            text += f" (exit code {self.exit_code})"
        return f"{text}, {self.restart_count} restart{'s' if self.restart_count != 1 else ''}"


@dataclass(frozen=True)
class ClusterPod:
    name: str
    namespace: str
    phase: str  # Pending, Running, Succeeded, Failed, Unknown
    node_name: str | None  # None until scheduled
    pod_ip: IPv4Address | None  # the IPv4 of status.podIPs; None until the sandbox has one
    host_network: bool
    containers: tuple[str, ...]  # spec.containers[*].name, in order
    statuses: tuple[ContainerStatus, ...]
    labels: tuple[tuple[str, str], ...] = ()
    reason: str = ""  # status.reason (Evicted, NodeLost, ...)
    message: str = ""
    pod_ips_v6: tuple[IPv6Address, ...] = ()  # a dual-stack pod's IPv6 addresses

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def status_of(self, container: str) -> ContainerStatus | None:
        for status in self.statuses:
            if status.name == container:
                return status
        return None

    @property
    def unready(self) -> tuple[str, ...]:
        """Containers of the spec that are not ready, each with what it is doing."""
        out = []
        for name in self.containers:
            status = self.status_of(name)
            if status is None:
                out.append(f"{name} (no status yet)")
            elif not status.ready:
                out.append(f"{name} ({status.describe()})")
        return tuple(out)

    @property
    def running_and_ready(self) -> bool:
        return self.phase == "Running" and not self.unready


@dataclass(frozen=True)
class ServicePort:
    name: str
    protocol: str
    port: int
    target_port: int | str
    node_port: int | None = None


@dataclass(frozen=True)
class Service:
    name: str
    namespace: str
    type: str
    cluster_ip: IPv4Address | None  # IPv4 of spec.clusterIPs; None: headless, ExternalName
    ports: tuple[ServicePort, ...]
    selector: tuple[tuple[str, str], ...] = ()
    cluster_ips_v6: tuple[IPv6Address, ...] = ()  # a dual-stack service's IPv6 cluster IPs

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class EndpointAddress:
    ip: IPv4Address | IPv6Address  # an IPv6-primary service's endpoints are IPv6
    ready: bool
    node_name: str | None = None
    target: str | None = None  # "Pod kube-system/coredns-..." when backed by a pod


@dataclass(frozen=True)
class Endpoints:
    name: str
    namespace: str
    addresses: tuple[EndpointAddress, ...]  # ready and not-ready, flattened over subsets

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def ready_ips(self) -> tuple[IPv4Address | IPv6Address, ...]:
        return tuple(a.ip for a in self.addresses if a.ready)


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    phase: str
    labels: tuple[tuple[str, str], ...] = ()

    def label(self, key: str) -> str | None:
        return dict(self.labels).get(key)


@dataclass(frozen=True)
class FlannelNetConf:
    network: IPv4Network
    backend_type: str
    subnet_len: int = 24
    namespace: str = SYSTEM_NAMESPACE  # where its ConfigMap was found (see FLANNEL_NAMESPACES)
    ipv6_network: IPv6Network | None = None  # dual-stack flannel (EnableIPv6): kept, not checked


@dataclass(frozen=True)
class KubeadmNetworking:
    pod_subnet: IPv4Network | None  # None when `kubeadm init` ran without --pod-network-cidr
    service_subnet: IPv4Network | None
    dns_domain: str
    kubernetes_version: str
