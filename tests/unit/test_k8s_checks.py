"""The cluster checks (lab/k8s/checks.py): the recorded good cluster passes every check, each
broken case gives exactly its problem, a dual-stack cluster is judged by its IPv4 side; and to
the letter: a cluster with no nodes, a pod not yet scheduled, one with a reason and unready
containers, a node off its private IP outside the management network (no fix to offer), an
ExternalName service, endpoints with nothing ready."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

import pytest

from lab import k8s
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
from lab.model.config import Lab
from lab.model.labfile import load_lab
from lab.model.problems import Problem
from tests.unit.k8s_data import doc, text

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


def texts(problems: list[k8s.Problem]) -> list[str]:
    """Problems as a person reads them (the checks return typed Problems)."""
    return [str(p) for p in problems]


@pytest.fixture(scope="module")
def lab() -> Lab:
    return load_lab(ROOT / "labs" / "guide-centos7.yaml")


@pytest.fixture(scope="module")
def recorded_lab(lab: Lab) -> Lab:
    """The guide lab on the management range the recordings were made on (vagrant-libvirt's
    default 192.168.121.0/24; the lab file now uses its own range)."""
    management = IPv4Network("192.168.121.0/24")
    return dataclasses.replace(lab, network=dataclasses.replace(lab.network, management=management))


@pytest.fixture(scope="module")
def nodes() -> tuple[k8s.ClusterNode, ...]:
    return k8s.parse_nodes(text("nodes.json"))


def test_the_good_cluster_passes_every_check(lab: Lab, nodes: tuple[k8s.ClusterNode, ...]) -> None:
    pods = k8s.parse_pods(text("pods-all.json"))
    services = k8s.parse_services(text("services.json"))
    endpoints = k8s.parse_endpoints(text("endpoints.json"))
    flannel = k8s.parse_flannel_netconf(text("configmap-kube-flannel-cfg.json"))
    kubeadm = k8s.parse_kubeadm_networking(text("configmap-kubeadm-config.json"))
    assert k8s.validate_nodes_ready(nodes, lab) == []
    assert k8s.validate_system_pods(k8s.parse_pods(text("pods-kube-system.json"))) == []
    assert k8s.validate_system_pods(pods) == []
    assert k8s.validate_node_addresses(nodes, lab) == []
    assert k8s.validate_pod_cidrs(nodes, lab.pod_network.cidr) == []
    assert k8s.validate_pod_ips(pods, nodes) == []
    assert k8s.validate_network_config(flannel, kubeadm, lab) == []
    assert k8s.validate_service_endpoints(services, endpoints) == []


def test_a_not_ready_node_is_named_with_its_condition(lab: Lab) -> None:
    nodes = k8s.parse_nodes(text("nodes-not-ready.json"))
    assert texts(k8s.validate_nodes_ready(nodes, lab)) == [
        "node k8s-node2: not Ready (Unknown: NodeStatusUnknown: Kubelet stopped posting node "
        "status.)"
    ]


def test_a_missing_and_a_stranger_node_are_both_reported(
    lab: Lab, nodes: tuple[k8s.ClusterNode, ...]
) -> None:
    stranger = k8s.ClusterNode("localhost.localdomain", True, "True", None, (), None)
    problems = k8s.validate_nodes_ready((*nodes[:2], stranger), lab)
    assert texts(problems) == [
        "node k8s-node2: not registered with the API server (registered: k8s-master, "
        "k8s-node1, localhost.localdomain); check kubelet on it and `kubeadm join`",
        "node localhost.localdomain: registered but not a node of lab guide-centos7 "
        "(k8s-master, k8s-node1, k8s-node2); `kubectl delete node localhost.localdomain` if "
        "stale",
    ]


def test_a_crash_looping_kube_system_pod_is_named_with_its_container_state() -> None:
    pods = k8s.parse_pods(text("pods-kube-system-crashloop.json"))
    (bad,) = [p for p in pods if not p.running_and_ready]
    assert texts(k8s.validate_system_pods(pods)) == [
        f"pod kube-system/{bad.name} on k8s-master: phase Running, containers not ready: "
        "coredns (waiting: CrashLoopBackOff, 7 restarts), expected Running with every "
        "container ready"
    ]


def test_an_empty_kube_system_is_a_problem() -> None:
    assert texts(k8s.validate_system_pods(())) == [
        "namespace kube-system: no pods at all (is the control plane up?)"
    ]


def test_flannel_public_ip_on_the_management_network_names_the_fix(recorded_lab: Lab) -> None:
    nodes = k8s.parse_nodes(text("nodes-flannel-public-ip-management.json"))
    assert texts(k8s.validate_node_addresses(nodes, recorded_lab)) == [
        "node k8s-node1: flannel.alpha.coreos.com/public-ip 192.168.121.87 is not its private "
        "IP 10.10.10.242; 192.168.121.87 is on the management network 192.168.121.0/24: "
        "flannel took the default-route NIC, pass flanneld --iface=eth1"
    ]


def test_internal_ip_on_the_management_network_names_the_fix(recorded_lab: Lab) -> None:
    nodes = k8s.parse_nodes(text("nodes-internal-ip-management.json"))
    assert texts(k8s.validate_node_addresses(nodes, recorded_lab)) == [
        "node k8s-node2: InternalIP 192.168.121.164 is not its private IP 10.10.10.243; "
        "192.168.121.164 is on the management network 192.168.121.0/24: kubelet took the "
        "default-route NIC, pass kubelet --node-ip=10.10.10.243"
    ]


def test_missing_internal_ip_and_flannel_annotation_are_reported(lab: Lab) -> None:
    raw = doc("nodes.json")
    raw["items"][0]["status"]["addresses"] = [{"address": "k8s-master", "type": "Hostname"}]
    del raw["items"][0]["metadata"]["annotations"][k8s.FLANNEL_PUBLIC_IP]
    assert texts(k8s.validate_node_addresses(k8s.parse_nodes(raw), lab)) == [
        "node k8s-master: no InternalIP address (expected 10.10.10.241)",
        "node k8s-master: no flannel.alpha.coreos.com/public-ip annotation (is kube-flannel "
        "running on it?); expected 10.10.10.241",
    ]


def test_overlapping_pod_cidrs_name_both_nodes(lab: Lab) -> None:
    nodes = k8s.parse_nodes(text("nodes-overlapping-podcidrs.json"))
    assert texts(k8s.validate_pod_cidrs(nodes, lab.pod_network.cidr)) == [
        "nodes k8s-node1 and k8s-node2: podCIDRs 10.244.1.0/24 and 10.244.1.0/24 overlap"
    ]


def test_a_pod_cidr_outside_the_cluster_cidr_and_a_missing_one_are_reported(
    nodes: tuple[k8s.ClusterNode, ...],
) -> None:
    cluster = IPv4Network("10.244.0.0/23")  # holds node 0 and 1 only
    no_cidr = k8s.ClusterNode("k8s-node3", True, "True", None, (), None)
    assert texts(k8s.validate_pod_cidrs((*nodes, no_cidr), cluster)) == [
        "node k8s-node2: podCIDR 10.244.2.0/24 is outside the cluster pod CIDR 10.244.0.0/23",
        "node k8s-node3: no podCIDR assigned (kubeadm init needs "
        "--pod-network-cidr=10.244.0.0/23; flannel fails with 'pod cidr not assigned')",
    ]


def test_a_pod_ip_outside_its_node_pod_cidr_is_named(nodes: tuple[k8s.ClusterNode, ...]) -> None:
    pods = k8s.parse_pods(text("pods-all-ip-outside-podcidr.json"))
    (bad,) = [p for p in pods if str(p.pod_ip) == "172.17.0.2"]
    assert texts(k8s.validate_pod_ips(pods, nodes)) == [
        f"pod default/{bad.name} on k8s-node2: IP 172.17.0.2 is outside the node's podCIDR "
        "10.244.2.0/24"
    ]


def test_host_network_and_pending_pods_are_not_held_to_the_pod_cidr(
    nodes: tuple[k8s.ClusterNode, ...],
) -> None:
    pods = k8s.parse_pods(text("pods-kube-system.json")) + k8s.parse_pods(
        text("e2e-pod-pending.json")
    )
    assert any(p.host_network for p in pods)
    assert k8s.validate_pod_ips(pods, nodes) == []


def test_flannel_network_differing_from_kubeadm_pod_subnet_is_one_problem(lab: Lab) -> None:
    flannel = k8s.parse_flannel_netconf(text("configmap-kube-flannel-cfg-network-10.100.json"))
    kubeadm = k8s.parse_kubeadm_networking(text("configmap-kubeadm-config.json"))
    assert texts(k8s.validate_network_config(flannel, kubeadm, lab)) == [
        "pod network CIDRs disagree: kube-system/kube-flannel-cfg net-conf.json Network "
        "10.100.0.0/16, kube-system/kubeadm-config podSubnet 10.244.0.0/16, lab "
        "pod_network.cidr 10.244.0.0/16; they must be equal, else flannel masquerades "
        "cross-node pod traffic"
    ]


def test_kubeadm_without_pod_subnet_names_the_missing_flag(lab: Lab) -> None:
    flannel = k8s.parse_flannel_netconf(text("configmap-kube-flannel-cfg.json"))
    kubeadm = k8s.parse_kubeadm_networking(text("configmap-kubeadm-config-no-podsubnet.json"))
    assert texts(k8s.validate_network_config(flannel, kubeadm, lab)) == [
        "configmap kube-system/kubeadm-config: ClusterConfiguration has no networking.podSubnet "
        "(kubeadm init ran without --pod-network-cidr=10.244.0.0/16)"
    ]


def test_service_subnet_and_backend_are_held_to_the_lab(lab: Lab) -> None:
    flannel = k8s.FlannelNetConf(IPv4Network("10.244.0.0/16"), "host-gw")
    kubeadm = k8s.KubeadmNetworking(
        IPv4Network("10.244.0.0/16"), IPv4Network("10.96.0.0/12"), "cluster.local", "v1.18.1"
    )
    assert texts(k8s.validate_network_config(flannel, kubeadm, lab)) == [
        "configmap kube-system/kubeadm-config: serviceSubnet 10.96.0.0/12 is not the lab's "
        "kubernetes.service_cidr 10.1.0.0/16",
        "configmap kube-system/kube-flannel-cfg: net-conf.json Backend.Type 'host-gw' is not "
        "the lab's flannel backend 'vxlan'",
    ]


def test_a_service_without_ready_endpoints_names_the_not_ready_pods() -> None:
    services = k8s.parse_services(text("services.json"))
    endpoints = k8s.parse_endpoints(text("endpoints-kube-dns-not-ready.json"))
    assert texts(k8s.validate_service_endpoints(services, endpoints)) == [
        "service kube-system/kube-dns: no ready endpoints; not ready: "
        f"10.244.0.2 ({_target_of(endpoints, '10.244.0.2')}), "
        f"10.244.0.3 ({_target_of(endpoints, '10.244.0.3')})"
    ]


def _target_of(endpoints: tuple[k8s.Endpoints, ...], ip: str) -> str:
    for ep in endpoints:
        for a in ep.addresses:
            if str(a.ip) == ip:
                return a.target or ""
    raise AssertionError(ip)


def test_a_service_without_endpoints_object_is_reported() -> None:
    services = k8s.parse_services(text("services.json"))
    endpoints = k8s.parse_endpoints(text("endpoints.json"))[:1]
    assert texts(k8s.validate_service_endpoints(services, endpoints)) == [
        "service kube-system/kube-dns: no Endpoints object"
    ]


def test_the_checks_judge_a_dual_stack_cluster_by_its_ipv4_side(lab: Lab) -> None:
    nodes = k8s.parse_nodes(text("nodes-dual-stack.json"))
    pods = k8s.parse_pods(text("pods-all-dual-stack.json"))
    assert k8s.validate_nodes_ready(nodes, lab) == []
    assert k8s.validate_node_addresses(nodes, lab) == []
    assert k8s.validate_pod_cidrs(nodes, lab.pod_network.cidr) == []
    assert k8s.validate_pod_ips(pods, nodes) == []
    assert k8s.validate_system_pods(pods) == []
    flannel = [p for p in pods if p.name.startswith("kube-flannel-ds-")]
    assert {p.namespace for p in flannel} == {"kube-flannel"}
    assert k8s.validate_system_pods(pods, "kube-flannel") == []


def test_a_dual_stack_node_without_its_ipv4_side_is_reported_with_its_ipv6_shown(lab: Lab) -> None:
    raw = doc("nodes-dual-stack.json")
    node2 = raw["items"][2]
    node2["status"]["addresses"] = [
        a for a in node2["status"]["addresses"] if ":" in a["address"] or a["type"] != "InternalIP"
    ]
    node2["spec"]["podCIDRs"] = node2["spec"]["podCIDRs"][1:]
    node2["spec"]["podCIDR"] = node2["spec"]["podCIDRs"][0]
    nodes = k8s.parse_nodes(raw)
    ipv6 = " (IPv6, not checked: fd00:10:10::243, fd00:10:244:2::/64)"
    assert texts(k8s.validate_node_addresses(nodes, lab)) == [
        f"node k8s-node2: no InternalIP address (expected 10.10.10.243){ipv6}"
    ]
    assert texts(k8s.validate_pod_cidrs(nodes, lab.pod_network.cidr)) == [
        f"node k8s-node2: no podCIDR assigned{ipv6} (kubeadm init needs "
        "--pod-network-cidr=10.244.0.0/16; flannel fails with 'pod cidr not assigned')"
    ]


def test_a_dual_stack_pod_keeps_its_ipv6_address_and_shows_it_when_misplaced() -> None:
    raw = doc("pods-all-dual-stack.json")
    pod = next(p for p in raw["items"] if p["metadata"]["name"] == "nginx-f89759699-hm87s")
    pod["status"]["podIP"] = "172.17.0.2"
    pod["status"]["podIPs"] = [{"ip": "172.17.0.2"}, {"ip": "fd00:10:244:2::2"}]
    pods = k8s.parse_pods(raw)
    nodes = k8s.parse_nodes(text("nodes-dual-stack.json"))
    assert texts(k8s.validate_pod_ips(pods, nodes)) == [
        "pod default/nginx-f89759699-hm87s on k8s-node2: IP 172.17.0.2 (and fd00:10:244:2::2) "
        "is outside the node's podCIDR 10.244.2.0/24"
    ]


def test_flannel_config_is_found_in_kube_flannel_and_its_ipv6_network_kept(lab: Lab) -> None:
    conf = k8s.parse_flannel_netconf(text("configmaps-kube-flannel-cfg-dual-stack.json"))
    assert conf == k8s.FlannelNetConf(
        IPv4Network("10.244.0.0/16"),
        "vxlan",
        24,
        namespace="kube-flannel",
        ipv6_network=IPv6Network("fd00:10:244::/56"),
    )
    kubeadm = k8s.parse_kubeadm_networking(text("configmap-kubeadm-config.json"))
    assert k8s.validate_network_config(conf, kubeadm, lab) == []
    other = dataclasses.replace(conf, network=IPv4Network("10.100.0.0/16"))
    (problem,) = texts(k8s.validate_network_config(other, kubeadm, lab))
    assert "kube-flannel/kube-flannel-cfg net-conf.json Network 10.100.0.0/16" in problem


def pod(name: str, ip: str, node: str | None, v6: tuple[str, ...] = ()) -> ClusterPod:
    return ClusterPod(
        name, "ns", "Running", node, IPv4Address(ip), False, ("c",), (),
        pod_ips_v6=tuple(IPv6Address(a) for a in v6),
    )  # fmt: skip


def test_pod_ips_off_their_node_or_on_an_unknown_node() -> None:
    nodes = [
        ClusterNode("n1", True, "", IPv4Address("10.10.10.1"),
                    (IPv4Network("10.244.0.0/24"), IPv4Network("10.244.9.0/24")), None),
        ClusterNode("n2", True, "", IPv4Address("10.10.10.2"), (), None),
    ]  # fmt: skip
    pods = [
        pod("ghost", "10.244.5.2", "n9", ("fd00::5", "fd00::6")),
        pod("in", "10.244.9.3", "n1"),
        pod("out", "10.244.1.2", "n1", ("fd00::7",)),
        pod("nocidr", "10.244.1.3", "n2"),
    ]
    assert [str(p) for p in validate_pod_ips(pods, nodes)] == [
        "pod ns/ghost: IP 10.244.5.2 (and fd00::5) (and fd00::6) on node n9, which is not in "
        "the node list",
        "pod ns/out on n1: IP 10.244.1.2 (and fd00::7) is outside the node's podCIDR "
        "10.244.0.0/24, 10.244.9.0/24",
    ]
