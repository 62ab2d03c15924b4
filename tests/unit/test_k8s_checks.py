"""The cluster checks to the letter: a cluster with no nodes, a pod not yet scheduled, one
with a reason and unready containers, a node off its private IP outside the management
network (no fix to offer), an ExternalName service, endpoints with nothing ready."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from lab.k8s.checks import (
    validate_node_addresses,
    validate_nodes_ready,
    validate_pod_ips,
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
from lab.model.labfile import load_lab
from lab.model.problems import Problem

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


def test_an_unregistered_node_does_not_stop_the_address_check_of_the_next() -> None:
    # k8s-master, first in the lab, is not registered (validate_nodes_ready says so): the
    # nodes after it are still checked
    nodes = [node("k8s-node1", "10.10.10.242"), node("k8s-node2", "10.10.10.99")]
    assert [str(p) for p in validate_node_addresses(nodes, GUIDE)] == [
        "node k8s-node2: InternalIP 10.10.10.99 is not its private IP 10.10.10.243",
        "node k8s-node2: flannel.alpha.coreos.com/public-ip 10.10.10.99 is not its private IP "
        "10.10.10.243",
    ]


def test_pods_without_an_ip_of_their_own_do_not_stop_the_check_of_the_next() -> None:
    n1 = ClusterNode(
        "n1", True, "True", IPv4Address("10.10.10.2"), (IPv4Network("10.244.1.0/24"),), None
    )
    host = IPv4Address("10.10.10.2")
    pods = [
        ClusterPod("host", "kube-system", "Running", "n1", host, True, ("a",), ()),
        ClusterPod("pending", "ns", "Pending", "n1", None, False, ("a",), ()),
        ClusterPod("unscheduled", "ns", "Pending", None, None, False, ("a",), ()),
        ClusterPod("off", "ns", "Running", "n1", IPv4Address("10.244.2.5"), False, ("a",), ()),
    ]
    assert [str(p) for p in validate_pod_ips(pods, [n1])] == [
        "pod ns/off on n1: IP 10.244.2.5 is outside the node's podCIDR 10.244.1.0/24"
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
