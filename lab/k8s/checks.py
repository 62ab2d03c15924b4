"""Checks of cluster state against the lab (pure): each returns problems (empty = as the lab
expects), one per broken object, naming the object and the values; never raises."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network

from lab import netmath
from lab.config import Lab
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


def validate_nodes_ready(nodes: Sequence[ClusterNode], lab: Lab) -> list[str]:
    """Every lab node is registered and Ready; no stranger is registered."""
    problems = []
    by_name = {n.name: n for n in nodes}
    for name in lab.node_names:
        if name not in by_name:
            listed = ", ".join(sorted(by_name)) or "none"
            problems.append(
                f"node {name}: not registered with the API server (registered: {listed}); "
                "check kubelet on it and `kubeadm join`"
            )
    for node in nodes:
        if node.name not in lab.node_names:
            problems.append(
                f"node {node.name}: registered but not a node of lab {lab.name} "
                f"({', '.join(lab.node_names)}); `kubectl delete node {node.name}` if stale"
            )
        elif not node.ready:
            problems.append(f"node {node.name}: not Ready ({node.ready_detail})")
    return problems


def validate_system_pods(
    pods: Sequence[ClusterPod], namespace: str = SYSTEM_NAMESPACE
) -> list[str]:
    """Every pod of `namespace` is Running with every container ready."""
    mine = [p for p in pods if p.namespace == namespace]
    if not mine:
        return [f"namespace {namespace}: no pods at all (is the control plane up?)"]
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
        problems.append(f"{where}: {detail}, expected Running with every container ready")
    return problems


def validate_node_addresses(nodes: Sequence[ClusterNode], lab: Lab) -> list[str]:
    """Each node's InternalIP and flannel public-ip are its private IP: kubelet and flannel
    use the private network, not the management one that holds the default route."""
    problems = []
    by_name = {n.name: n for n in nodes}
    mgmt = lab.network.management
    for lab_node in lab.nodes:
        node = by_name.get(lab_node.name)
        if node is None:
            continue  # validate_nodes_ready reports it
        want = lab_node.ip
        if node.internal_ip is None:
            problems.append(f"node {node.name}: no InternalIP address (expected {want})")
        elif node.internal_ip != want:
            hint = ""
            if node.internal_ip in mgmt:
                hint = (
                    f"; {node.internal_ip} is on the management network {mgmt}: kubelet took "
                    f"the default-route NIC, pass kubelet --node-ip={want}"
                )
            problems.append(
                f"node {node.name}: InternalIP {node.internal_ip} is not its private IP "
                f"{want}{hint}"
            )
        if node.flannel_public_ip is None:
            problems.append(
                f"node {node.name}: no {FLANNEL_PUBLIC_IP} annotation (is kube-flannel "
                f"running on it?); expected {want}"
            )
        elif node.flannel_public_ip != want:
            hint = ""
            if node.flannel_public_ip in mgmt:
                hint = (
                    f"; {node.flannel_public_ip} is on the management network {mgmt}: flannel "
                    f"took the default-route NIC, pass flanneld --iface={lab.vm.private_nic}"
                )
            problems.append(
                f"node {node.name}: {FLANNEL_PUBLIC_IP} {node.flannel_public_ip} is not its "
                f"private IP {want}{hint}"
            )
    return problems


def validate_pod_cidrs(nodes: Sequence[ClusterNode], cluster_cidr: IPv4Network) -> list[str]:
    """Every node has a podCIDR inside the cluster pod CIDR; no two nodes' podCIDRs overlap."""
    return netmath.allocation_problems(
        cluster_cidr,
        {n.name: n.pod_cidrs for n in nodes},
        missing=lambda node: (
            f"node {node}: no podCIDR assigned (kubeadm init needs "
            f"--pod-network-cidr={cluster_cidr}; flannel fails with 'pod cidr not assigned')"
        ),
        outside=lambda node, cidr: (
            f"node {node}: podCIDR {cidr} is outside the cluster pod CIDR {cluster_cidr}"
        ),
        overlap=lambda a, x, b, y: f"nodes {a} and {b}: podCIDRs {x} and {y} overlap",
    )


def validate_pod_ips(pods: Sequence[ClusterPod], nodes: Sequence[ClusterNode]) -> list[str]:
    """Every pod IP (hostNetwork pods excluded) lies in its node's podCIDR. Pods without an IP
    yet are skipped; nodes without a podCIDR are reported by validate_pod_cidrs."""
    problems = []
    by_name = {n.name: n for n in nodes}
    for pod in pods:
        if pod.host_network or pod.pod_ip is None or pod.node_name is None:
            continue
        node = by_name.get(pod.node_name)
        if node is None:
            problems.append(
                f"pod {pod.ref}: IP {pod.pod_ip} on node {pod.node_name}, which is not in the "
                "node list"
            )
            continue
        if node.pod_cidrs and not any(pod.pod_ip in c for c in node.pod_cidrs):
            cidrs = ", ".join(map(str, node.pod_cidrs))
            problems.append(
                f"pod {pod.ref} on {node.name}: IP {pod.pod_ip} is outside the node's podCIDR "
                f"{cidrs}"
            )
    return problems


def validate_network_config(
    flannel: FlannelNetConf, kubeadm: KubeadmNetworking, lab: Lab
) -> list[str]:
    """flannel's net-conf Network == kubeadm's podSubnet == the lab's pod CIDR (else flannel
    masquerades cross-node pod traffic); the service CIDR and the flannel backend as the lab
    says."""
    problems = []
    want = lab.pod_network.cidr
    if kubeadm.pod_subnet is None:
        problems.append(
            f"configmap {SYSTEM_NAMESPACE}/{KUBEADM_CONFIGMAP}: ClusterConfiguration has no "
            f"networking.podSubnet (kubeadm init ran without --pod-network-cidr={want})"
        )
    if flannel.network != want or kubeadm.pod_subnet not in (None, want):
        problems.append(
            "pod network CIDRs disagree: "
            f"{SYSTEM_NAMESPACE}/{FLANNEL_CONFIGMAP} net-conf.json Network {flannel.network}, "
            f"{SYSTEM_NAMESPACE}/{KUBEADM_CONFIGMAP} podSubnet {kubeadm.pod_subnet}, "
            f"lab pod_network.cidr {want}; they must be equal, else flannel masquerades "
            "cross-node pod traffic"
        )
    k8s = lab.kubernetes
    if k8s is not None and kubeadm.service_subnet != k8s.service_cidr:
        problems.append(
            f"configmap {SYSTEM_NAMESPACE}/{KUBEADM_CONFIGMAP}: serviceSubnet "
            f"{kubeadm.service_subnet} is not the lab's kubernetes.service_cidr {k8s.service_cidr}"
        )
    fl = lab.pod_network.flannel
    if fl is not None and flannel.backend_type != fl.backend:
        problems.append(
            f"configmap {SYSTEM_NAMESPACE}/{FLANNEL_CONFIGMAP}: net-conf.json Backend.Type "
            f"{flannel.backend_type!r} is not the lab's flannel backend {fl.backend!r}"
        )
    return problems


def validate_service_endpoints(
    services: Sequence[Service], endpoints: Sequence[Endpoints]
) -> list[str]:
    """Every service (ExternalName aside) has at least one ready endpoint address."""
    problems = []
    by_ref = {e.ref: e for e in endpoints}
    for svc in services:
        if svc.type == "ExternalName":
            continue
        ep = by_ref.get(svc.ref)
        if ep is None:
            problems.append(f"service {svc.ref}: no Endpoints object")
        elif not ep.ready_ips:
            not_ready = [f"{a.ip} ({a.target or a.node_name})" for a in ep.addresses]
            detail = f"; not ready: {', '.join(not_ready)}" if not_ready else ""
            problems.append(f"service {svc.ref}: no ready endpoints{detail}")
    return problems
