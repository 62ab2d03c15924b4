"""Checks of cluster state against the lab (pure): each returns problems (empty = as the lab
expects), one `Problem` per broken object, naming the object (`where`), what is wrong and the
fix; `str()` of each is the line a person reads. Never raises.

On a dual-stack cluster the IPv4 side is judged (the lab is IPv4) and the IPv6 side is shown."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network

from lab.k8s.model import (
    FLANNEL_CONFIGMAP,
    FLANNEL_PUBLIC_IP,
    KUBEADM_CONFIGMAP,
    SYSTEM_NAMESPACE,
    ClusterNode,
    ClusterPod,
    Endpoints,
    FlannelNetConf,
    KubeadmNetworking,
    Service,
)
from lab.model.config import Lab
from lab.model.problems import Problem
from lab.net import netmath


def validate_nodes_ready(nodes: Sequence[ClusterNode], lab: Lab) -> list[Problem]:
    """Every lab node is registered and Ready; no stranger is registered."""
    problems = []
    by_name = {n.name: n for n in nodes}
    for name in lab.node_names:
        if name not in by_name:
            listed = ", ".join(sorted(by_name)) or "none"
            problems.append(
                Problem(
                    f"node {name}",
                    message=f"not registered with the API server (registered: {listed})",
                    fix="check kubelet on it and `kubeadm join`",
                )
            )
    for node in nodes:
        if node.name not in lab.node_names:
            problems.append(
                Problem(
                    f"node {node.name}",
                    message=f"registered but not a node of lab {lab.name} "
                    f"({', '.join(lab.node_names)}); `kubectl delete node {node.name}` if stale",
                )
            )
        elif not node.ready:
            problems.append(
                Problem(f"node {node.name}", message=f"not Ready ({node.ready_detail})")
            )
    return problems


def validate_system_pods(
    pods: Sequence[ClusterPod], namespace: str = SYSTEM_NAMESPACE
) -> list[Problem]:
    """Every pod of `namespace` is Running with every container ready."""
    mine = [p for p in pods if p.namespace == namespace]
    if not mine:
        return [
            Problem(f"namespace {namespace}", message="no pods at all (is the control plane up?)")
        ]
    problems = []
    for pod in mine:
        if pod.running_and_ready:
            continue
        where = f"pod {pod.ref} on {pod.node_name or '<unscheduled>'}"
        detail = f"phase {pod.phase}"
        if pod.reason:
            detail += f" ({pod.reason})"
        if pod.unready:
            detail += f", containers not ready: {'; '.join(pod.unready)}"
        problems.append(
            Problem(where, message=f"{detail}, expected Running with every container ready")
        )
    return problems


def validate_node_addresses(nodes: Sequence[ClusterNode], lab: Lab) -> list[Problem]:
    """Each node's InternalIP and flannel public-ip are its private IP: kubelet and flannel
    use the private network, not the management one that holds the default route. A
    dual-stack node's IPv4 InternalIP is judged; its IPv6 side is shown."""
    problems = []
    by_name = {n.name: n for n in nodes}
    mgmt = lab.network.management
    for lab_node in lab.nodes:
        node = by_name.get(lab_node.name)
        if node is None:
            continue  # validate_nodes_ready reports it
        where, want = f"node {node.name}", lab_node.ip
        if node.internal_ip is None:
            problems.append(
                Problem(where, message=f"no InternalIP address (expected {want}){node.ipv6_text}")
            )
        elif node.internal_ip != want:
            fix = ""
            if node.internal_ip in mgmt:
                fix = (
                    f"{node.internal_ip} is on the management network {mgmt}: kubelet took "
                    f"the default-route NIC, pass kubelet --node-ip={want}"
                )
            problems.append(
                Problem(
                    where,
                    message=f"InternalIP {node.internal_ip} is not its private IP "
                    f"{want}{node.ipv6_text}",
                    fix=fix,
                )
            )
        if node.flannel_public_ip is None:
            problems.append(
                Problem(
                    where,
                    message=f"no {FLANNEL_PUBLIC_IP} annotation (is kube-flannel running on "
                    f"it?); expected {want}",
                )
            )
        elif node.flannel_public_ip != want:
            fix = ""
            if node.flannel_public_ip in mgmt:
                fix = (
                    f"{node.flannel_public_ip} is on the management network {mgmt}: flannel "
                    f"took the default-route NIC, pass flanneld --iface={lab.vm.private_nic}"
                )
            problems.append(
                Problem(
                    where,
                    message=f"{FLANNEL_PUBLIC_IP} {node.flannel_public_ip} is not its private "
                    f"IP {want}",
                    fix=fix,
                )
            )
    return problems


def validate_pod_cidrs(nodes: Sequence[ClusterNode], cluster_cidr: IPv4Network) -> list[Problem]:
    """Every node has an (IPv4) podCIDR inside the cluster pod CIDR; no two nodes' overlap."""
    ipv6 = {n.name: n.ipv6_text for n in nodes}
    return netmath.allocation_problems(
        cluster_cidr,
        {n.name: n.pod_cidrs for n in nodes},
        missing=lambda node: Problem(
            f"node {node}",
            message=f"no podCIDR assigned{ipv6[node]} (kubeadm init needs "
            f"--pod-network-cidr={cluster_cidr}; flannel fails with 'pod cidr not assigned')",
        ),
        outside=lambda node, cidr: Problem(
            f"node {node}",
            message=f"podCIDR {cidr} is outside the cluster pod CIDR {cluster_cidr}",
        ),
        overlap=lambda a, x, b, y: Problem(
            f"nodes {a} and {b}", message=f"podCIDRs {x} and {y} overlap"
        ),
    )


def validate_pod_ips(pods: Sequence[ClusterPod], nodes: Sequence[ClusterNode]) -> list[Problem]:
    """Every pod IP (hostNetwork pods excluded) lies in its node's podCIDR. Pods without an IP
    yet are skipped; nodes without a podCIDR are reported by validate_pod_cidrs. A dual-stack
    pod's IPv4 address is judged against the node's IPv4 podCIDR; its IPv6 ones are shown."""
    problems = []
    by_name = {n.name: n for n in nodes}
    for pod in pods:
        if pod.host_network or pod.pod_ip is None or pod.node_name is None:
            continue
        node = by_name.get(pod.node_name)
        ipv6 = "".join(f" (and {ip})" for ip in pod.pod_ips_v6)
        if node is None:
            problems.append(
                Problem(
                    f"pod {pod.ref}",
                    message=f"IP {pod.pod_ip}{ipv6} on node {pod.node_name}, which is not in the "
                    "node list",
                )
            )
            continue
        if node.pod_cidrs and not any(pod.pod_ip in c for c in node.pod_cidrs):
            cidrs = ", ".join(map(str, node.pod_cidrs))
            problems.append(
                Problem(
                    f"pod {pod.ref} on {node.name}",
                    message=f"IP {pod.pod_ip}{ipv6} is outside the node's podCIDR {cidrs}",
                )
            )
    return problems


def validate_network_config(
    flannel: FlannelNetConf, kubeadm: KubeadmNetworking, lab: Lab
) -> list[Problem]:
    """flannel's net-conf Network == kubeadm's podSubnet == the lab's pod CIDR (else flannel
    masquerades cross-node pod traffic); the service CIDR and the flannel backend as the lab
    says."""
    problems = []
    want = lab.pod_network.cidr
    kubeadm_cm = f"{SYSTEM_NAMESPACE}/{KUBEADM_CONFIGMAP}"
    flannel_cm = f"{flannel.namespace}/{FLANNEL_CONFIGMAP}"
    if kubeadm.pod_subnet is None:
        problems.append(
            Problem(
                f"configmap {kubeadm_cm}",
                message="ClusterConfiguration has no networking.podSubnet (kubeadm init ran "
                f"without --pod-network-cidr={want})",
            )
        )
    if flannel.network != want or kubeadm.pod_subnet not in (None, want):
        problems.append(
            Problem(
                "pod network CIDRs disagree",
                message=f"{flannel_cm} net-conf.json Network {flannel.network}, {kubeadm_cm} "
                f"podSubnet {kubeadm.pod_subnet}, lab pod_network.cidr {want}",
                fix="they must be equal, else flannel masquerades cross-node pod traffic",
            )
        )
    k8s = lab.kubernetes
    if k8s is not None and kubeadm.service_subnet != k8s.service_cidr:
        problems.append(
            Problem(
                f"configmap {kubeadm_cm}",
                message=f"serviceSubnet {kubeadm.service_subnet} is not the lab's "
                f"kubernetes.service_cidr {k8s.service_cidr}",
            )
        )
    fl = lab.pod_network.flannel
    if fl is not None and flannel.backend_type != fl.backend:
        problems.append(
            Problem(
                f"configmap {flannel_cm}",
                message=f"net-conf.json Backend.Type {flannel.backend_type!r} is not the lab's "
                f"flannel backend {fl.backend!r}",
            )
        )
    return problems


def validate_service_endpoints(
    services: Sequence[Service], endpoints: Sequence[Endpoints]
) -> list[Problem]:
    """Every service (ExternalName aside) has at least one ready endpoint address."""
    problems = []
    by_ref = {e.ref: e for e in endpoints}
    for svc in services:
        if svc.type == "ExternalName":
            continue
        ep = by_ref.get(svc.ref)
        if ep is None:
            problems.append(Problem(f"service {svc.ref}", message="no Endpoints object"))
        elif not ep.ready_ips:
            not_ready = [f"{a.ip} ({a.target or a.node_name})" for a in ep.addresses]
            detail = f"; not ready: {', '.join(not_ready)}" if not_ready else ""
            problems.append(Problem(f"service {svc.ref}", message=f"no ready endpoints{detail}"))
    return problems
