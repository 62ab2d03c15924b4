"""lab.k8s (parsers, checks, renderers) on recorded-shape kubectl JSON, and the Kubernetes
driver against a strict fake of the control-plane node's SSH channel."""

from __future__ import annotations

import copy
import dataclasses
import json
import shlex
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from e2e.drivers.base import Container, Pod
from e2e.drivers.k8s import (
    K8sDriver,
    KubectlFailed,
    PodNotRunning,
    PodRequest,
    echo_container,
)
from lab import k8s, waits
from lab.adapters.ssh import RemoteResult, SshChannel
from lab.commands import Command, render_remote
from lab.config import DNS1123_LABEL, Lab
from lab.errors import CommandFailed
from lab.labfile import load_lab

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "k8s"
KUBECTL = ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf")


def text(name: str) -> str:
    return (DATA / name).read_text()


def doc(name: str) -> dict[str, Any]:
    return json.loads(text(name))  # type: ignore[no-any-return]


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


# ---------------------------------------------------------------------------------------------
# Parsers


def test_nodes_parse_to_name_readiness_addresses_and_pod_cidrs(
    nodes: tuple[k8s.ClusterNode, ...],
) -> None:
    assert [(n.name, n.ready, n.internal_ip, n.pod_cidrs, n.flannel_public_ip) for n in nodes] == [
        (
            "k8s-master",
            True,
            IPv4Address("10.10.10.241"),
            (IPv4Network("10.244.0.0/24"),),
            IPv4Address("10.10.10.241"),
        ),
        (
            "k8s-node1",
            True,
            IPv4Address("10.10.10.242"),
            (IPv4Network("10.244.1.0/24"),),
            IPv4Address("10.10.10.242"),
        ),
        (
            "k8s-node2",
            True,
            IPv4Address("10.10.10.243"),
            (IPv4Network("10.244.2.0/24"),),
            IPv4Address("10.10.10.243"),
        ),
    ]
    assert nodes[0].ready_detail == "True: KubeletReady: kubelet is posting ready status"


def test_a_single_node_object_parses_like_a_list_of_one() -> None:
    one = doc("nodes.json")["items"][1]
    (node,) = k8s.parse_nodes(json.dumps(one))
    assert node.name == "k8s-node1"


def test_a_node_without_pod_cidr_or_flannel_annotation_parses_with_empty_values() -> None:
    raw = doc("nodes.json")
    item = raw["items"][2]
    del item["spec"]["podCIDR"], item["spec"]["podCIDRs"]
    del item["metadata"]["annotations"][k8s.FLANNEL_PUBLIC_IP]
    node = k8s.parse_nodes(raw)[2]
    assert node.pod_cidrs == ()
    assert node.flannel_public_ip is None


def test_a_node_with_only_the_old_pod_cidr_field_still_has_its_cidr() -> None:
    raw = doc("nodes.json")
    del raw["items"][1]["spec"]["podCIDRs"]
    assert k8s.parse_nodes(raw)[1].pod_cidrs == (IPv4Network("10.244.1.0/24"),)


def _broken_node(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    raw = doc("nodes.json")
    edit(raw["items"][1])
    return raw


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda n: n["spec"].update(podCIDRs=["10.244.1.0/33"]),
            r"node k8s-node1: field spec.podCIDRs\[0\] = '10.244.1.0/33' is not an IPv4 CIDR",
        ),
        (
            lambda n: n["spec"].update(podCIDR="10.244.7.0/24"),
            r"node k8s-node1: spec.podCIDR 10.244.7.0/24 differs from spec.podCIDRs\[0\]",
        ),
        (
            lambda n: n["status"]["addresses"][0].update(address="10.10.10"),
            r"node k8s-node1: field status.addresses\[0\].address = '10.10.10' is not an IPv4",
        ),
        (
            lambda n: n["metadata"]["annotations"].update({k8s.FLANNEL_PUBLIC_IP: "fe80::1"}),
            r"node k8s-node1: field metadata.annotations\[flannel.alpha.coreos.com/public-ip\]",
        ),
        (
            lambda n: n["status"].update(conditions={"type": "Ready"}),
            r"node k8s-node1: field status.conditions must be a list",
        ),
        (
            lambda n: n["status"]["conditions"].append("Ready"),
            r"node k8s-node1: field status.conditions\[\d+\] must be an object, got 'Ready'",
        ),
        (lambda n: n["metadata"].pop("name"), r"items\[1\]: field metadata.name is missing"),
    ],
)
def test_malformed_nodes_raise_naming_the_node_and_the_field(
    edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        k8s.parse_nodes(_broken_node(edit))


@pytest.mark.parametrize(
    ("parse", "file", "edit", "message"),
    [
        (
            k8s.parse_pods,
            "pods-kube-system.json",
            lambda item: item["spec"]["containers"].append(None),
            r"pod kube-system/\S+: field spec.containers\[\d+\] must be an object, got None",
        ),
        (
            k8s.parse_services,
            "services.json",
            lambda item: item["spec"]["ports"].append(53),
            r"service \S+: field spec.ports\[\d+\] must be an object, got 53",
        ),
        (
            k8s.parse_endpoints,
            "endpoints.json",
            lambda item: item["subsets"][0]["addresses"].append("10.244.0.2"),
            r"endpoints \S+ subsets\[0\]: field addresses\[\d+\] must be an object",
        ),
    ],
)
def test_a_list_entry_that_is_not_an_object_is_named(
    parse: Callable[[dict[str, Any]], object],
    file: str,
    edit: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    raw = doc(file)
    edit(next(item for item in raw["items"] if item.get("subsets", True)))
    with pytest.raises(ValueError, match=message):
        parse(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("error: the server doesn't have a resource type", "output is not JSON"),
        ('{"kind": "PodList", "items": []}', "expected kind Node, NodeList or List"),
        ('{"kind": "List", "items": {}}', "field items must be a list"),
        ('{"kind": "List", "items": [{"kind": "Pod"}]}', r"items\[0\] is a Pod, expected Node"),
        ("[]", "expected a JSON object"),
    ],
)
def test_output_that_is_no_node_list_is_rejected(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        k8s.parse_nodes(raw)


def test_kube_system_pods_parse_with_host_network_and_pod_ips() -> None:
    pods = k8s.parse_pods(text("pods-kube-system.json"))
    assert len(pods) == 12
    assert all(p.namespace == "kube-system" and p.phase == "Running" for p in pods)
    on_pod_network = sorted(
        (p.name.rsplit("-", 1)[0], str(p.pod_ip)) for p in pods if not p.host_network
    )
    assert on_pod_network == [
        ("coredns-66bff467f8", "10.244.0.2"),
        ("coredns-66bff467f8", "10.244.0.3"),
    ]
    flannel = [p for p in pods if p.name.startswith("kube-flannel-ds-")]
    assert sorted(p.node_name or "" for p in flannel) == ["k8s-master", "k8s-node1", "k8s-node2"]
    assert all(p.host_network and p.running_and_ready for p in flannel)
    assert {str(p.pod_ip) for p in flannel} == {"10.10.10.241", "10.10.10.242", "10.10.10.243"}


def test_a_crash_looping_container_keeps_its_reason_and_restarts() -> None:
    pods = k8s.parse_pods(text("pods-kube-system-crashloop.json"))
    (bad,) = [p for p in pods if not p.running_and_ready]
    status = bad.status_of("coredns")
    assert status is not None
    assert (status.state, status.reason, status.restart_count, status.ready) == (
        "waiting",
        "CrashLoopBackOff",
        7,
        False,
    )
    assert status.message.startswith("back-off 5m0s restarting failed container=coredns")
    assert bad.unready == ("coredns (waiting: CrashLoopBackOff, 7 restarts)",)


def test_a_pending_pod_has_no_ip_and_a_creating_container() -> None:
    (pod,) = k8s.parse_pods(text("e2e-pod-pending.json"))
    assert (pod.phase, pod.pod_ip, pod.node_name) == ("Pending", None, "k8s-node1")
    assert pod.unready == ("echo (waiting: ContainerCreating, 0 restarts)",)
    assert dict(pod.labels)[k8s.RUN_LABEL] == "r0614"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda p: p["status"].update(podIP="10.244.1.300"),
            r"pod default/nginx-f89759699-\w+: field status.podIP = '10.244.1.300'",
        ),
        (
            lambda p: p["status"].update(containerStatuses={"name": "nginx"}),
            r"pod default/nginx-f89759699-\w+: field status.containerStatuses must be a list",
        ),
        (
            lambda p: p["status"]["containerStatuses"][0].update(restartCount="7"),
            r"pod default/nginx-f89759699-\w+ container nginx: field restartCount must be an int",
        ),
        (
            lambda p: p["spec"].update(containers=[]),
            r"pod default/nginx-f89759699-\w+: field spec.containers is missing or empty",
        ),
        (lambda p: p["metadata"].pop("namespace"), r"field metadata.namespace is missing"),
    ],
)
def test_malformed_pods_raise_naming_the_pod_and_the_field(
    edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    raw = doc("pods-all.json")
    edit(raw["items"][0])
    with pytest.raises(ValueError, match=message):
        k8s.parse_pods(raw)


def test_services_parse_to_cluster_ips_and_ports() -> None:
    services = k8s.parse_services(text("services.json"))
    assert [(s.ref, s.type, str(s.cluster_ip)) for s in services] == [
        ("default/kubernetes", "ClusterIP", "10.1.0.1"),
        ("kube-system/kube-dns", "ClusterIP", "10.1.0.10"),
    ]
    assert services[1].ports[0] == k8s.ServicePort("dns", "UDP", 53, 53, None)
    assert services[1].selector == (("k8s-app", "kube-dns"),)


def test_a_node_port_service_keeps_its_node_port_and_a_headless_one_has_no_cluster_ip() -> None:
    raw = doc("services.json")
    svc = raw["items"][1]
    svc["spec"]["type"] = "NodePort"
    for i, port in enumerate(svc["spec"]["ports"]):
        port["nodePort"] = 30053 + i
    headless = copy.deepcopy(raw["items"][0])
    headless["metadata"]["name"] = "headless"
    headless["spec"]["clusterIP"] = "None"
    raw["items"].append(headless)
    services = k8s.parse_services(raw)
    assert [p.node_port for p in services[1].ports] == [30053, 30054, 30055]
    assert services[2].cluster_ip is None


def test_a_node_port_service_without_node_port_is_malformed() -> None:
    raw = doc("services.json")
    raw["items"][1]["spec"]["type"] = "NodePort"
    with pytest.raises(ValueError, match="service kube-system/kube-dns: type NodePort but"):
        k8s.parse_services(raw)


def test_endpoints_parse_to_ready_addresses_with_their_nodes_and_pods() -> None:
    eps = {e.ref: e for e in k8s.parse_endpoints(text("endpoints.json"))}
    assert eps["default/kubernetes"].ready_ips == (IPv4Address("10.10.10.241"),)
    dns = eps["kube-system/kube-dns"]
    assert dns.ready_ips == (IPv4Address("10.244.0.2"), IPv4Address("10.244.0.3"))
    assert {a.node_name for a in dns.addresses} == {"k8s-master"}
    assert all((a.target or "").startswith("Pod kube-system/coredns-") for a in dns.addresses)


def test_not_ready_endpoint_addresses_are_kept_as_not_ready() -> None:
    eps = {e.ref: e for e in k8s.parse_endpoints(text("endpoints-kube-dns-not-ready.json"))}
    dns = eps["kube-system/kube-dns"]
    assert dns.ready_ips == ()
    assert [a.ready for a in dns.addresses] == [False, False]


def test_malformed_endpoints_raise_naming_the_object_and_the_field() -> None:
    raw = doc("endpoints.json")
    raw["items"][1]["subsets"][0]["addresses"][0]["ip"] = "not-an-ip"
    with pytest.raises(
        ValueError, match=r"endpoints kube-system/kube-dns: field subsets\[0\].addresses\[0\].ip"
    ):
        k8s.parse_endpoints(raw)


def test_flannel_net_conf_gives_network_and_backend() -> None:
    conf = k8s.parse_flannel_netconf(text("configmap-kube-flannel-cfg.json"))
    assert conf == k8s.FlannelNetConf(IPv4Network("10.244.0.0/16"), "vxlan", 24)


@pytest.mark.parametrize(
    ("net_conf", "message"),
    [
        ('{"Network": "10.244.0.0/16",', "net-conf.json: not JSON"),
        ('{"Backend": {"Type": "vxlan"}}', "net-conf.json: field Network is missing"),
        ('{"Network": "10.244.0.1/16"}', "field Network = '10.244.0.1/16' is not an IPv4 CIDR"),
    ],
)
def test_broken_flannel_net_conf_raises(net_conf: str, message: str) -> None:
    raw = doc("configmap-kube-flannel-cfg.json")
    raw["data"]["net-conf.json"] = net_conf
    with pytest.raises(ValueError, match=message):
        k8s.parse_flannel_netconf(raw)


def test_a_config_map_without_net_conf_raises_listing_its_keys() -> None:
    raw = doc("configmap-kube-flannel-cfg.json")
    del raw["data"]["net-conf.json"]
    with pytest.raises(ValueError, match=r"data\[net-conf.json\] is missing \(keys: \['cni-conf"):
        k8s.parse_flannel_netconf(raw)


def test_kubeadm_config_gives_pod_and_service_subnets_from_the_yaml_inside() -> None:
    net = k8s.parse_kubeadm_networking(text("configmap-kubeadm-config.json"))
    assert net == k8s.KubeadmNetworking(
        IPv4Network("10.244.0.0/16"), IPv4Network("10.1.0.0/16"), "cluster.local", "v1.18.1"
    )
    missing = k8s.parse_kubeadm_networking(text("configmap-kubeadm-config-no-podsubnet.json"))
    assert missing.pod_subnet is None


def test_a_dual_stack_pod_subnet_yields_its_ipv4_part() -> None:
    raw = doc("configmap-kubeadm-config.json")
    raw["data"]["ClusterConfiguration"] = raw["data"]["ClusterConfiguration"].replace(
        "podSubnet: 10.244.0.0/16", "podSubnet: 10.244.0.0/16,fd00:10:244::/56"
    )
    assert k8s.parse_kubeadm_networking(raw).pod_subnet == IPv4Network("10.244.0.0/16")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda cc: cc + "networking: [", "ClusterConfiguration: not YAML"),
        (
            lambda cc: cc.replace("kind: ClusterConfiguration", "kind: InitConfiguration"),
            "kind is 'InitConfiguration', expected ClusterConfiguration",
        ),
        (
            lambda cc: cc.replace("serviceSubnet: 10.1.0.0/16", "serviceSubnet: 10.1.0.0/36"),
            "field networking.serviceSubnet = '10.1.0.0/36' is not an IPv4 CIDR",
        ),
    ],
)
def test_broken_kubeadm_config_raises(edit: Callable[[str], str], message: str) -> None:
    raw = doc("configmap-kubeadm-config.json")
    raw["data"]["ClusterConfiguration"] = edit(raw["data"]["ClusterConfiguration"])
    with pytest.raises(ValueError, match=message):
        k8s.parse_kubeadm_networking(raw)


def test_e2e_namespaces_parse_with_their_run_labels() -> None:
    namespaces = k8s.parse_namespaces(text("namespaces-e2e.json"))
    assert [(n.name, n.label(k8s.RUN_LABEL)) for n in namespaces] == [
        ("nl-r0613-services-1f0c2a", "r0613"),
        ("nl-r0614-services-9b41d7", "r0614"),
    ]


BUSYBOX_128_NSLOOKUP = """Server:    10.1.0.10
Address 1: 10.1.0.10 kube-dns.kube-system.svc.cluster.local

Name:      kubernetes.default
Address 1: 10.1.0.1 kubernetes.default.svc.cluster.local
"""
BUSYBOX_NEW_NSLOOKUP = """Server:\t\t10.1.0.10
Address:\t10.1.0.10:53

Name:\tkubernetes.default.svc.cluster.local
Address: 10.1.0.1

"""
BUSYBOX_NXDOMAIN = """Server:    10.1.0.10
Address 1: 10.1.0.10 kube-dns.kube-system.svc.cluster.local

nslookup: can't resolve 'nope.default'
"""


@pytest.mark.parametrize(
    ("output", "answers"),
    [
        (BUSYBOX_128_NSLOOKUP, (IPv4Address("10.1.0.1"),)),
        (BUSYBOX_NEW_NSLOOKUP, (IPv4Address("10.1.0.1"),)),
        (BUSYBOX_NXDOMAIN, ()),
    ],
)
def test_busybox_nslookup_answers_exclude_the_server(
    output: str, answers: tuple[IPv4Address, ...]
) -> None:
    assert k8s.parse_busybox_nslookup(output) == answers


# ---------------------------------------------------------------------------------------------
# Checks: the good cluster passes, each broken case gives exactly its problem


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
    assert k8s.validate_nodes_ready(nodes, lab) == [
        "node k8s-node2: not Ready (Unknown: NodeStatusUnknown: Kubelet stopped posting node "
        "status.)"
    ]


def test_a_missing_and_a_stranger_node_are_both_reported(
    lab: Lab, nodes: tuple[k8s.ClusterNode, ...]
) -> None:
    stranger = k8s.ClusterNode("localhost.localdomain", True, "True", None, (), None)
    problems = k8s.validate_nodes_ready((*nodes[:2], stranger), lab)
    assert problems == [
        "node k8s-node2: not registered with the API server (registered: k8s-master, "
        "k8s-node1, localhost.localdomain); check kubelet on it and `kubeadm join`",
        "node localhost.localdomain: registered but not a node of lab guide-centos7 "
        "(k8s-master, k8s-node1, k8s-node2); `kubectl delete node localhost.localdomain` if "
        "stale",
    ]


def test_a_crash_looping_kube_system_pod_is_named_with_its_container_state() -> None:
    pods = k8s.parse_pods(text("pods-kube-system-crashloop.json"))
    (bad,) = [p for p in pods if not p.running_and_ready]
    assert k8s.validate_system_pods(pods) == [
        f"pod kube-system/{bad.name} on k8s-master: phase Running, containers not ready: "
        "coredns (waiting: CrashLoopBackOff, 7 restarts), expected Running with every "
        "container ready"
    ]


def test_an_empty_kube_system_is_a_problem() -> None:
    assert k8s.validate_system_pods(()) == [
        "namespace kube-system: no pods at all (is the control plane up?)"
    ]


def test_flannel_public_ip_on_the_management_network_names_the_fix(recorded_lab: Lab) -> None:
    nodes = k8s.parse_nodes(text("nodes-flannel-public-ip-management.json"))
    assert k8s.validate_node_addresses(nodes, recorded_lab) == [
        "node k8s-node1: flannel.alpha.coreos.com/public-ip 192.168.121.87 is not its private "
        "IP 10.10.10.242; 192.168.121.87 is on the management network 192.168.121.0/24: "
        "flannel took the default-route NIC, pass flanneld --iface=eth1"
    ]


def test_internal_ip_on_the_management_network_names_the_fix(recorded_lab: Lab) -> None:
    nodes = k8s.parse_nodes(text("nodes-internal-ip-management.json"))
    assert k8s.validate_node_addresses(nodes, recorded_lab) == [
        "node k8s-node2: InternalIP 192.168.121.164 is not its private IP 10.10.10.243; "
        "192.168.121.164 is on the management network 192.168.121.0/24: kubelet took the "
        "default-route NIC, pass kubelet --node-ip=10.10.10.243"
    ]


def test_missing_internal_ip_and_flannel_annotation_are_reported(lab: Lab) -> None:
    raw = doc("nodes.json")
    raw["items"][0]["status"]["addresses"] = [{"address": "k8s-master", "type": "Hostname"}]
    del raw["items"][0]["metadata"]["annotations"][k8s.FLANNEL_PUBLIC_IP]
    assert k8s.validate_node_addresses(k8s.parse_nodes(raw), lab) == [
        "node k8s-master: no InternalIP address (expected 10.10.10.241)",
        "node k8s-master: no flannel.alpha.coreos.com/public-ip annotation (is kube-flannel "
        "running on it?); expected 10.10.10.241",
    ]


def test_overlapping_pod_cidrs_name_both_nodes(lab: Lab) -> None:
    nodes = k8s.parse_nodes(text("nodes-overlapping-podcidrs.json"))
    assert k8s.validate_pod_cidrs(nodes, lab.pod_network.cidr) == [
        "nodes k8s-node1 and k8s-node2: podCIDRs 10.244.1.0/24 and 10.244.1.0/24 overlap"
    ]


def test_a_pod_cidr_outside_the_cluster_cidr_and_a_missing_one_are_reported(
    nodes: tuple[k8s.ClusterNode, ...],
) -> None:
    cluster = IPv4Network("10.244.0.0/23")  # holds node 0 and 1 only
    no_cidr = k8s.ClusterNode("k8s-node3", True, "True", None, (), None)
    assert k8s.validate_pod_cidrs((*nodes, no_cidr), cluster) == [
        "node k8s-node2: podCIDR 10.244.2.0/24 is outside the cluster pod CIDR 10.244.0.0/23",
        "node k8s-node3: no podCIDR assigned (kubeadm init needs "
        "--pod-network-cidr=10.244.0.0/23; flannel fails with 'pod cidr not assigned')",
    ]


def test_a_pod_ip_outside_its_node_pod_cidr_is_named(nodes: tuple[k8s.ClusterNode, ...]) -> None:
    pods = k8s.parse_pods(text("pods-all-ip-outside-podcidr.json"))
    (bad,) = [p for p in pods if str(p.pod_ip) == "172.17.0.2"]
    assert k8s.validate_pod_ips(pods, nodes) == [
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
    assert k8s.validate_network_config(flannel, kubeadm, lab) == [
        "pod network CIDRs disagree: kube-system/kube-flannel-cfg net-conf.json Network "
        "10.100.0.0/16, kube-system/kubeadm-config podSubnet 10.244.0.0/16, lab "
        "pod_network.cidr 10.244.0.0/16; they must be equal, else flannel masquerades "
        "cross-node pod traffic"
    ]


def test_kubeadm_without_pod_subnet_names_the_missing_flag(lab: Lab) -> None:
    flannel = k8s.parse_flannel_netconf(text("configmap-kube-flannel-cfg.json"))
    kubeadm = k8s.parse_kubeadm_networking(text("configmap-kubeadm-config-no-podsubnet.json"))
    assert k8s.validate_network_config(flannel, kubeadm, lab) == [
        "configmap kube-system/kubeadm-config: ClusterConfiguration has no networking.podSubnet "
        "(kubeadm init ran without --pod-network-cidr=10.244.0.0/16)"
    ]


def test_service_subnet_and_backend_are_held_to_the_lab(lab: Lab) -> None:
    flannel = k8s.FlannelNetConf(IPv4Network("10.244.0.0/16"), "host-gw")
    kubeadm = k8s.KubeadmNetworking(
        IPv4Network("10.244.0.0/16"), IPv4Network("10.96.0.0/12"), "cluster.local", "v1.18.1"
    )
    assert k8s.validate_network_config(flannel, kubeadm, lab) == [
        "configmap kube-system/kubeadm-config: serviceSubnet 10.96.0.0/12 is not the lab's "
        "kubernetes.service_cidr 10.1.0.0/16",
        "configmap kube-system/kube-flannel-cfg: net-conf.json Backend.Type 'host-gw' is not "
        "the lab's flannel backend 'vxlan'",
    ]


def test_a_service_without_ready_endpoints_names_the_not_ready_pods() -> None:
    services = k8s.parse_services(text("services.json"))
    endpoints = k8s.parse_endpoints(text("endpoints-kube-dns-not-ready.json"))
    assert k8s.validate_service_endpoints(services, endpoints) == [
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
    assert k8s.validate_service_endpoints(services, endpoints) == [
        "service kube-system/kube-dns: no Endpoints object"
    ]


# ---------------------------------------------------------------------------------------------
# Renderers


def test_the_guides_two_container_pod_renders_pinned_labelled_and_quick_to_delete() -> None:
    manifest = k8s.render_pod(
        "two-containers",
        "nl-r0614-two-containers-0a1b2c",
        "k8s-node1",
        [
            k8s.ContainerSpec(
                "busybox",
                "busybox:1.28",
                ("/bin/sh", "-c", "while true;do echo hello;sleep 1;done"),
            ),
            k8s.ContainerSpec("nginx", "nginx:1.19"),
        ],
        "r0614",
        {"app": "nginx"},
    )
    assert manifest == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "two-containers",
            "namespace": "nl-r0614-two-containers-0a1b2c",
            "labels": {"netlab.io/run": "r0614", "netlab.io/e2e": "true", "app": "nginx"},
        },
        "spec": {
            "nodeName": "k8s-node1",
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "busybox",
                    "image": "busybox:1.28",
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["/bin/sh", "-c", "while true;do echo hello;sleep 1;done"],
                },
                {"name": "nginx", "image": "nginx:1.19", "imagePullPolicy": "IfNotPresent"},
            ],
        },
    }


def test_a_long_running_pod_can_ask_for_restart_policy_always() -> None:
    manifest = k8s.render_pod(
        "web",
        "ns",
        "k8s-node1",
        [k8s.ContainerSpec("web", "nginx:1.19")],
        "r1",
        restart_policy="Always",
    )
    assert manifest["spec"]["restartPolicy"] == "Always"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Two_Containers"}, "pod name 'Two_Containers' must be a DNS-1123 subdomain"),
        ({"namespace": "NS"}, "namespace name 'NS' must be a DNS-1123 label"),
        ({"containers": []}, "pod p: needs at least one container"),
        ({"containers": [k8s.ContainerSpec("c", "")]}, "pod p: container c has no image"),
        (
            {"containers": [k8s.ContainerSpec("c", "i"), k8s.ContainerSpec("c", "i")]},
            r"pod p: container names repeat: \['c', 'c'\]",
        ),
        ({"run_id": "run id with spaces"}, "label netlab.io/run='run id with spaces'"),
        ({"labels": {"app": "-bad-"}}, "label app='-bad-'"),
    ],
)
def test_invalid_pods_are_refused_before_reaching_the_api(
    kwargs: dict[str, Any], message: str
) -> None:
    args: dict[str, Any] = {
        "name": "p",
        "namespace": "ns",
        "node": "k8s-node1",
        "containers": [k8s.ContainerSpec("c", "busybox:1.28")],
        "run_id": "r1",
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        k8s.render_pod(**args)


def test_namespace_renders_with_the_run_labels() -> None:
    assert k8s.render_namespace("nl-r1-x-abcdef", "r1") == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "nl-r1-x-abcdef",
            "labels": {"netlab.io/run": "r1", "netlab.io/e2e": "true"},
        },
    }


def test_cluster_ip_and_node_port_services_select_pods_by_label() -> None:
    cluster_ip = k8s.render_service("echo", "ns", "r1", {"netlab.io/app": "echo"}, 80, 8080)
    assert cluster_ip == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "echo",
            "namespace": "ns",
            "labels": {"netlab.io/run": "r1", "netlab.io/e2e": "true"},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": {"netlab.io/app": "echo"},
            "ports": [{"name": "tcp", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        },
    }
    node_port = k8s.render_service(
        "echo-np", "ns", "r1", {"netlab.io/app": "echo"}, 80, 8080, "NodePort", 30080
    )
    assert node_port["spec"]["type"] == "NodePort"
    assert node_port["spec"]["ports"][0]["nodePort"] == 30080
    allocated = k8s.render_service("echo-np", "ns", "r1", {"a": "b"}, 80, 8080, "NodePort")
    assert "nodePort" not in allocated["spec"]["ports"][0]


def test_a_node_port_needs_a_node_port_service_and_a_service_needs_a_selector() -> None:
    with pytest.raises(ValueError, match="nodePort needs type NodePort"):
        k8s.render_service("echo", "ns", "r1", {"a": "b"}, 80, 8080, node_port=30080)
    with pytest.raises(ValueError, match="needs a selector"):
        k8s.render_service("echo", "ns", "r1", {}, 80, 8080)


def test_namespace_names_are_valid_unique_and_stable() -> None:
    long_test = (
        "test_cluster_ip_is_reached_from_every_pod_and_every_node_and_reaches_every_endpoint"
    )
    a = k8s.namespace_for("20210614-0910-ab12", long_test)
    b = k8s.namespace_for("20210614-0910-ab12", long_test + "[x]")
    assert a == k8s.namespace_for("20210614-0910-ab12", long_test)
    assert a != b
    for name in (a, b, k8s.namespace_for("R_1", "Test.X")):
        assert DNS1123_LABEL.match(name), name
        assert len(name) <= 63, name
    assert a.startswith("nl-20210614-0910-ab12-test-cluster-ip-")


def test_a_manifest_is_one_list_document() -> None:
    text_ = k8s.render_manifest([k8s.render_namespace("ns", "r1")])
    assert json.loads(text_) == {
        "apiVersion": "v1",
        "kind": "List",
        "items": [k8s.render_namespace("ns", "r1")],
    }


# ---------------------------------------------------------------------------------------------
# The driver against a strict fake of the control plane's SSH channel


@dataclass
class Step:
    """One expected command: on `node`, exactly `argv`; answers with the given output.
    `stdin` (if given) checks what was fed to the command; `no_exit` simulates a timeout."""

    node: str
    argv: tuple[str, ...]
    stdout: str = ""
    exit_code: int = 0
    stderr: str = ""
    stdin: Callable[[str | None], None] | None = None
    no_exit: bool = False


@dataclass
class Script:
    steps: deque[Step]
    ran: list[tuple[str, Command, float]] = field(default_factory=list)

    def take(self, node: str, command: Command, timeout: float) -> Step:
        if not self.steps:
            raise AssertionError(f"unexpected command on {node}: {command.argv}")
        step = self.steps.popleft()
        if (step.node, step.argv) != (node, command.argv):
            raise AssertionError(
                f"expected on {step.node}: {step.argv}\n     got on {node}: {command.argv}"
            )
        if step.stdin is not None:
            step.stdin(command.stdin)
        self.ran.append((node, command, timeout))
        return step

    def done(self) -> None:
        assert not self.steps, f"{len(self.steps)} expected command(s) never ran: {self.steps[0]}"


class FakeNode:
    """A strict stand-in for lab.adapters.ssh.Node: runs nothing, answers from the script."""

    def __init__(self, lab: str, name: str, script: Script) -> None:
        self.lab = lab
        self.name = name
        self.script = script

    def reproduce(self, remote: str) -> str:
        return SshChannel.reproduce(self, remote)  # type: ignore[arg-type]  # the real format

    def run(self, command: Command, timeout: float = 120, check: bool = True) -> RemoteResult:
        step = self.script.take(self.name, command, timeout)
        remote = render_remote(command)
        if step.no_exit:
            raise CommandFailed(remote, None, step.stdout, step.stderr, where=self.name)
        if check and step.exit_code != 0:
            raise CommandFailed(remote, step.exit_code, step.stdout, step.stderr, where=self.name)
        return RemoteResult(self.name, remote, step.exit_code, step.stdout, step.stderr)


FAST = waits.Policy("test wait", timeout_s=30, interval_s=0, max_attempts=3)


def driver_for(lab: Lab, *steps: Step, namespace: str | None = None) -> tuple[K8sDriver, Script]:
    script = Script(deque(steps))
    nodes = {name: FakeNode(lab.name, name, script) for name in lab.node_names}
    sleeps: list[float] = []
    driver = K8sDriver(
        lab,
        nodes,
        "r0614",
        namespace,
        sleep=sleeps.append,
        pod_wait=FAST,
        namespace_wait=FAST,
        endpoints_wait=FAST,
    )
    return driver, script


def kubectl(*args: str) -> tuple[str, ...]:
    return ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", *args)


NS = "nl-r0614-services-9b41d7"


def applies(kind: str, name: str, check: Callable[[dict[str, Any]], None] | None = None) -> Any:
    def verify(stdin: str | None) -> None:
        assert stdin is not None, "kubectl apply -f - needs the manifest on stdin"
        (obj,) = json.loads(stdin)["items"]
        assert (obj["kind"], obj["metadata"]["name"]) == (kind, name)
        assert obj["metadata"]["labels"]["netlab.io/run"] == "r0614"
        if check is not None:
            check(obj)

    return verify


def namespace_steps() -> list[Step]:
    return [
        Step(
            "k8s-master",
            kubectl("apply", "-f", "-"),
            "namespace/x created",
            stdin=applies("Namespace", NS),
        ),
        Step(
            "k8s-master",
            kubectl("-n", NS, "get", "serviceaccount", "default", "-o", "name"),
            exit_code=1,
            stderr='Error from server (NotFound): serviceaccounts "default" not found',
        ),
        Step(
            "k8s-master",
            kubectl("-n", NS, "get", "serviceaccount", "default", "-o", "name"),
            "serviceaccount/default",
        ),
    ]


def pod_json(name: str, phase_file: str = "e2e-pod-running.json", **status: Any) -> str:
    raw = doc(phase_file)
    raw["metadata"]["name"] = name
    raw["metadata"]["namespace"] = NS
    raw["status"].update(status)
    return json.dumps(raw)


def test_create_pod_applies_a_pinned_pod_and_waits_until_it_runs(lab: Lab) -> None:
    def pinned(obj: dict[str, Any]) -> None:
        assert obj["spec"]["nodeName"] == "k8s-node1"
        assert obj["spec"]["containers"] == [
            {
                "name": "echo",
                "image": "registry.aliyuncs.com/google_containers/agnhost:2.21",
                "imagePullPolicy": "IfNotPresent",
                "command": ["/agnhost", "netexec", "--http-port=8080"],
            }
        ]
        assert obj["metadata"]["labels"]["netlab.io/app"] == "echo"

    get_pod = kubectl("-n", NS, "get", "pod", "echo-k8s-node1", "-o", "json")
    driver, script = driver_for(
        lab,
        *namespace_steps(),
        Step(
            "k8s-master",
            kubectl("apply", "-f", "-"),
            "pod/echo-k8s-node1 created",
            stdin=applies("Pod", "echo-k8s-node1", pinned),
        ),
        Step("k8s-master", get_pod, pod_json("echo-k8s-node1", "e2e-pod-pending.json")),
        Step("k8s-master", get_pod, pod_json("echo-k8s-node1")),
        namespace=NS,
    )
    pod = driver.create_pod(
        "echo-k8s-node1", "k8s-node1", (echo_container(),), {"netlab.io/app": "echo"}
    )
    script.done()
    assert (pod.name, pod.node, pod.ip) == (
        "echo-k8s-node1",
        "k8s-node1",
        IPv4Address("10.244.1.7"),
    )
    assert pod.details["namespace"] == NS


def test_a_container_without_image_runs_the_busybox_image(lab: Lab) -> None:
    def busybox(obj: dict[str, Any]) -> None:
        assert obj["spec"]["containers"][0]["image"] == "busybox:1.28"

    driver, script = driver_for(
        lab,
        *namespace_steps(),
        Step("k8s-master", kubectl("apply", "-f", "-"), stdin=applies("Pod", "c", busybox)),
        namespace=NS,
    )
    driver.start_pod("c", "k8s-node2", (Container("client", ("sleep", "60")),))
    script.done()


def test_create_pods_applies_all_before_waiting_for_any(lab: Lab) -> None:
    a = kubectl("-n", NS, "get", "pod", "a", "-o", "json")
    b = kubectl("-n", NS, "get", "pod", "b", "-o", "json")
    driver, script = driver_for(
        lab,
        *namespace_steps(),
        Step("k8s-master", kubectl("apply", "-f", "-"), stdin=applies("Pod", "a")),
        Step("k8s-master", kubectl("apply", "-f", "-"), stdin=applies("Pod", "b")),
        Step("k8s-master", a, pod_json("a")),
        Step("k8s-master", b, pod_json("b", podIP="10.244.1.8", podIPs=[{"ip": "10.244.1.8"}])),
        namespace=NS,
    )
    pods = driver.create_pods(
        [
            PodRequest("a", "k8s-node1", (echo_container(),)),
            PodRequest("b", "k8s-node1", (echo_container(),)),
        ]
    )
    script.done()
    assert [str(p.ip) for p in pods] == ["10.244.1.7", "10.244.1.8"]


def test_a_crash_looping_pod_fails_at_once_with_its_state_and_how_to_inspect(lab: Lab) -> None:
    crashed = {
        "containerStatuses": [
            {
                "name": "echo",
                "ready": False,
                "restartCount": 0,
                "image": "x",
                "imageID": "",
                "state": {"terminated": {"exitCode": 2, "reason": "Error"}},
            }
        ]
    }
    driver, script = driver_for(
        lab,
        Step(
            "k8s-master",
            kubectl("-n", NS, "get", "pod", "p", "-o", "json"),
            pod_json("p", **crashed),
        ),
        namespace=NS,
    )
    with pytest.raises(PodNotRunning) as err:
        driver.wait_for_pod("p", "k8s-node1", (echo_container(),))
    script.done()
    assert str(err.value) == (
        f"pod {NS}/p on k8s-node1: phase Running; containers: echo terminated: Error (exit "
        "code 2), 0 restarts\n"
        "  inspect: python -m lab ssh guide-centos7 k8s-master -- 'sudo -n kubectl "
        f"--kubeconfig /etc/kubernetes/admin.conf -n {NS} describe pod p'"
    )


def test_a_pod_that_never_starts_fails_within_the_named_wait_with_an_image_hint(lab: Lab) -> None:
    pulling = {
        "containerStatuses": [
            {
                "name": "echo",
                "ready": False,
                "restartCount": 0,
                "image": "x",
                "imageID": "",
                "state": {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": 'Back-off pulling image "registry.aliyuncs.com/x"',
                    }
                },
            }
        ]
    }
    get_pod = kubectl("-n", NS, "get", "pod", "p", "-o", "json")
    pending = pod_json("p", "e2e-pod-pending.json", **pulling)
    driver, script = driver_for(
        lab, *(Step("k8s-master", get_pod, pending) for _ in range(3)), namespace=NS
    )
    with pytest.raises(PodNotRunning, match="within 30s \\(test wait\\): phase Pending") as err:
        driver.wait_for_pod("p", "k8s-node1", (echo_container(),))
    script.done()
    assert "echo waiting: ImagePullBackOff, 0 restarts: Back-off pulling image" in str(err.value)
    assert "the node cannot pull an image" in str(err.value)


def test_exec_runs_kubectl_exec_and_reproduces_as_one_ssh_command(lab: Lab) -> None:
    pod = Pod("client-k8s-node1", "k8s-node1", IPv4Address("10.244.1.9"), (), {"namespace": NS})
    argv = ("wget", "-qO-", "-T", "2", "http://10.1.23.4/hostname")
    driver, script = driver_for(
        lab,
        Step(
            "k8s-master",
            kubectl("exec", "-n", NS, "client-k8s-node1", "-c", "client", "--", *argv),
            "echo-k8s-node2\n",
        ),
    )
    result = driver.exec(pod, "client", argv, timeout=10)
    script.done()
    assert (result.exit_code, result.stdout) == (0, "echo-k8s-node2\n")
    remote = (
        "sudo -n kubectl --kubeconfig /etc/kubernetes/admin.conf exec -n "
        f"{NS} client-k8s-node1 -c client -- wget -qO- -T 2 http://10.1.23.4/hostname"
    )
    assert (
        result.reproduce == f"python -m lab ssh guide-centos7 k8s-master -- {shlex.quote(remote)}"
    )
    assert script.ran[0][2] == 25  # the probe's 10 s plus kubectl's own start-up


def test_exec_keeps_the_commands_exit_code_and_a_timeout_becomes_124(lab: Lab) -> None:
    pod = Pod("p", "k8s-node1", IPv4Address("10.244.1.9"), (), {"namespace": NS})
    exec_argv = kubectl("exec", "-n", NS, "p", "-c", "c", "--", "false")
    driver, script = driver_for(
        lab,
        Step("k8s-master", exec_argv, exit_code=1, stderr="command terminated with exit code 1"),
        Step("k8s-master", exec_argv, no_exit=True),
    )
    assert driver.exec(pod, "c", ("false",)).exit_code == 1
    timed_out = driver.exec(pod, "c", ("false",))
    script.done()
    assert timed_out.exit_code == 124
    assert "timed out or SSH failed" in timed_out.stderr


def test_exec_on_node_runs_on_that_node(lab: Lab) -> None:
    argv = ("curl", "-s", "--max-time", "3", "http://10.10.10.243:30080/hostname")
    driver, script = driver_for(lab, Step("k8s-node1", argv, "echo-k8s-node2"))
    result = driver.exec_on_node("k8s-node1", argv)
    script.done()
    assert result.stdout == "echo-k8s-node2"
    assert result.reproduce.startswith("python -m lab ssh guide-centos7 k8s-node1 -- ")


def test_delete_pod_deletes_in_the_pods_namespace(lab: Lab) -> None:
    pod = Pod("p", "k8s-node1", IPv4Address("10.244.1.9"), (), {"namespace": NS})
    driver, script = driver_for(
        lab,
        Step(
            "k8s-master",
            kubectl("delete", "pod", "p", "-n", NS, "--ignore-not-found", "--timeout=60s"),
        ),
    )
    driver.delete_pod(pod)
    script.done()


def test_sweep_deletes_only_e2e_namespaces_of_other_runs(lab: Lab) -> None:
    listing = kubectl("get", "namespaces", "-l", "netlab.io/e2e=true", "-o", "json")
    driver, script = driver_for(
        lab,
        Step("k8s-master", listing, text("namespaces-e2e.json")),
        Step(
            "k8s-master",
            kubectl(
                "delete",
                "namespace",
                "nl-r0613-services-1f0c2a",
                "--ignore-not-found",
                "--wait=false",
            ),
        ),
        Step("k8s-master", listing, text("namespaces-e2e.json")),
    )
    assert driver.sweep() == ["nl-r0613-services-1f0c2a"]
    assert driver.sweep(keep_prefix="nl-r0613") == []  # nothing to delete: no delete command
    script.done()


def test_a_failed_kubectl_says_what_failed_and_how_to_reproduce(lab: Lab) -> None:
    driver, script = driver_for(
        lab,
        Step(
            "k8s-master",
            kubectl("get", "nodes", "-o", "json"),
            exit_code=1,
            stderr="The connection to the server 10.10.10.241:6443 was refused",
        ),
    )
    with pytest.raises(KubectlFailed) as err:
        driver.get_nodes()
    script.done()
    assert str(err.value) == (
        "list nodes: kubectl exited 1: The connection to the server 10.10.10.241:6443 was "
        "refused\n  reproduce: python -m lab ssh guide-centos7 k8s-master -- 'sudo -n kubectl "
        "--kubeconfig /etc/kubernetes/admin.conf get nodes -o json'"
    )


def test_cluster_reads_parse_kubectl_json(lab: Lab) -> None:
    cm = ("-n", "kube-system", "get", "configmap")
    driver, script = driver_for(
        lab,
        Step("k8s-master", kubectl("get", "nodes", "-o", "json"), text("nodes.json")),
        Step(
            "k8s-master",
            kubectl("get", "pods", "-n", "kube-system", "-o", "json"),
            text("pods-kube-system.json"),
        ),
        Step(
            "k8s-master",
            kubectl("get", "services", "--all-namespaces", "-o", "json"),
            text("services.json"),
        ),
        Step(
            "k8s-master",
            kubectl("get", "endpoints", "--all-namespaces", "-o", "json"),
            text("endpoints.json"),
        ),
        Step(
            "k8s-master",
            kubectl(*cm, "kube-flannel-cfg", "-o", "json"),
            text("configmap-kube-flannel-cfg.json"),
        ),
        Step(
            "k8s-master",
            kubectl(*cm, "kubeadm-config", "-o", "json"),
            text("configmap-kubeadm-config.json"),
        ),
    )
    assert len(driver.get_nodes()) == 3
    assert len(driver.get_pods("kube-system")) == 12
    assert len(driver.get_services()) == 2
    assert len(driver.get_endpoints()) == 2
    assert driver.get_flannel_netconf().network == IPv4Network("10.244.0.0/16")
    assert driver.get_kubeadm_networking().service_subnet == IPv4Network("10.1.0.0/16")
    script.done()


def test_create_service_and_wait_for_its_endpoints(lab: Lab) -> None:
    svc = doc("services.json")["items"][1]
    svc["metadata"].update(name="echo", namespace=NS)
    svc["spec"].update(
        clusterIP="10.1.23.4",
        ports=[{"name": "tcp", "port": 80, "protocol": "TCP", "targetPort": 8080}],
    )
    eps = doc("endpoints.json")["items"][1]
    eps["metadata"].update(name="echo", namespace=NS)
    one_ready = copy.deepcopy(eps)
    one_ready["subsets"][0]["addresses"] = one_ready["subsets"][0]["addresses"][:1]
    get_eps = kubectl("-n", NS, "get", "endpoints", "echo", "-o", "json")
    driver, script = driver_for(
        lab,
        *namespace_steps(),
        Step("k8s-master", kubectl("apply", "-f", "-"), stdin=applies("Service", "echo")),
        Step(
            "k8s-master", kubectl("-n", NS, "get", "service", "echo", "-o", "json"), json.dumps(svc)
        ),
        Step("k8s-master", get_eps, json.dumps(one_ready)),
        Step("k8s-master", get_eps, json.dumps(eps)),
        namespace=NS,
    )
    service = driver.create_service("echo", {"netlab.io/app": "echo"}, 80, 8080)
    ready = driver.wait_for_endpoints(
        "echo", [IPv4Address("10.244.0.2"), IPv4Address("10.244.0.3")]
    )
    script.done()
    assert service.cluster_ip == IPv4Address("10.1.23.4")
    assert len(ready.ready_ips) == 2


def test_an_unexpected_command_is_an_error_of_the_fake(lab: Lab) -> None:
    driver, _ = driver_for(lab)
    with pytest.raises(AssertionError, match="unexpected command on k8s-master"):
        driver.get_nodes()


def test_an_unbound_driver_refuses_namespaced_work(lab: Lab) -> None:
    driver, _ = driver_for(lab)
    with pytest.raises(ValueError, match="not bound to a namespace"):
        driver.start_pod("p", "k8s-node1", (echo_container(),))
    with pytest.raises(ValueError, match="'k8s-node9' is not a node of lab guide-centos7"):
        driver.in_namespace(NS).start_pod("p", "k8s-node9", (echo_container(),))


def test_a_lab_without_kubernetes_has_no_kubernetes_driver() -> None:
    ci = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    with pytest.raises(ValueError, match="has no kubernetes section"):
        K8sDriver(ci, {}, "r1")
