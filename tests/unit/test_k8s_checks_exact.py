"""The cluster checks to the letter: a cluster with no nodes, a pod not yet scheduled, one
with a reason and unready containers, a node off its private IP outside the management
network (no fix to offer), an ExternalName service, endpoints with nothing ready."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path

from lab.k8s.checks import (
    validate_node_addresses,
    validate_nodes_ready,
    validate_service_endpoints,
    validate_system_pods,
)
from lab.k8s.model import (
    ClusterNode,
    ClusterPod,
    ContainerStatus,
    EndpointAddress,
    Endpoints,
    Service,
)
from lab.labfile import load_lab
from lab.problems import Problem

ROOT = Path(__file__).resolve().parents[2]
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")


def node(name: str, ip: str, flannel_ip: str | None = None) -> ClusterNode:
    flannel = IPv4Address(flannel_ip or ip)
    return ClusterNode(name, True, "True", IPv4Address(ip), (), flannel)


def test_no_registered_node_at_all_says_none() -> None:
    problems = validate_nodes_ready([], GUIDE)
    assert problems[0] == Problem(
        "node k8s-master",
        message="not registered with the API server (registered: none)",
        fix="check kubelet on it and `kubeadm join`",
    )
    assert len(problems) == 3


def test_a_pod_not_scheduled_with_a_reason_and_unready_containers() -> None:
    crash = ContainerStatus("a", False, 3, "waiting", "CrashLoopBackOff")
    pods = [
        ClusterPod("ok", "kube-system", "Running", "n1", None, True, ("a",),
                   (ContainerStatus("a", True, 0, "running"),)),
        ClusterPod("p", "kube-system", "Pending", None, None, False, ("a", "b"),
                   (crash, ContainerStatus("b", False, 0, "waiting", "ContainerCreating")),
                   reason="Unschedulable"),
        ClusterPod("q", "kube-system", "Failed", "n2", None, False, ("a",), (), reason=""),
    ]  # fmt: skip
    assert [str(p) for p in validate_system_pods(pods)] == [
        "pod kube-system/p on <unscheduled>: phase Pending (Unschedulable), containers not "
        "ready: a (waiting: CrashLoopBackOff, 3 restarts); b (waiting: ContainerCreating, 0 "
        "restarts), expected Running with every container ready",
        "pod kube-system/q on n2: phase Failed, containers not ready: a (no status yet), "
        "expected Running with every container ready",
    ]


def test_a_node_off_its_private_ip_elsewhere_than_management_gets_no_fix() -> None:
    nodes = [
        node("k8s-node1", "10.10.10.242"),
        node("k8s-master", "10.10.10.99", "10.10.10.98"),
    ]
    assert validate_node_addresses(nodes, GUIDE) == [
        Problem(
            "node k8s-master",
            message="InternalIP 10.10.10.99 is not its private IP 10.10.10.241",
            fix="",
        ),
        Problem(
            "node k8s-master",
            message="flannel.alpha.coreos.com/public-ip 10.10.10.98 is not its private IP "
            "10.10.10.241",
            fix="",
        ),
    ]


def test_external_name_services_need_no_endpoints_and_unready_ones_are_listed() -> None:
    services = [
        Service("ext", "default", "ExternalName", None, ()),
        Service("web", "default", "ClusterIP", IPv4Address("10.1.0.9"), ()),
        Service("dns", "kube-system", "ClusterIP", IPv4Address("10.1.0.10"), ()),
        Service("api", "default", "ClusterIP", IPv4Address("10.1.0.1"), ()),
    ]
    endpoints = [
        Endpoints("web", "default", ()),
        Endpoints(
            "dns",
            "kube-system",
            (
                EndpointAddress(IPv4Address("10.244.0.2"), False, "n1", "Pod kube-system/c1"),
                EndpointAddress(IPv4Address("10.244.1.2"), False, "n2"),
            ),
        ),
    ]
    assert [str(p) for p in validate_service_endpoints(services, endpoints)] == [
        "service default/web: no ready endpoints",
        "service kube-system/dns: no ready endpoints; not ready: 10.244.0.2 (Pod "
        "kube-system/c1), 10.244.1.2 (n2)",
        "service default/api: no Endpoints object",
    ]
