"""lab.k8s (parsers, checks, renderers) on recorded-shape kubectl JSON, and the Kubernetes
driver against a strict fake of the control-plane node's SSH channel."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from lab import k8s
from lab.model.config import DNS1123_LABEL, Lab
from lab.model.labfile import load_lab

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "k8s"
KUBECTL = ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf")


def text(name: str) -> str:
    return (DATA / name).read_text()


def texts(problems: list[k8s.Problem]) -> list[str]:
    """Problems as a person reads them (the checks return typed Problems)."""
    return [str(p) for p in problems]


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
            r"node k8s-node1: field spec.podCIDRs\[0\] = '10.244.1.0/33': is not a CIDR",
        ),
        (
            lambda n: n["spec"].update(podCIDR="10.244.7.0/24"),
            r"node k8s-node1: spec.podCIDR 10.244.7.0/24 differs from spec.podCIDRs\[0\]",
        ),
        (
            lambda n: n["status"]["addresses"][0].update(address="10.10.10"),
            r"node k8s-node1: field status.addresses\[0\].address = '10.10.10': is not an IP",
        ),
        (
            lambda n: n["metadata"]["annotations"].update({k8s.FLANNEL_PUBLIC_IP: "fe80::1"}),
            r"node k8s-node1: field metadata.annotations\[flannel.alpha.coreos.com/public-ip\]",
        ),
        (
            lambda n: n["status"].update(conditions={"type": "Ready"}),
            r"node k8s-node1: field status.conditions = \{'type': 'Ready'\}: must be a list",
        ),
        (
            lambda n: n["status"]["conditions"].append("Ready"),
            r"node k8s-node1: field status.conditions\[\d+\] = 'Ready': must be an object",
        ),
        (
            lambda n: n["metadata"].pop("name"),
            r"kubectl get nodes: items\[1\]: field metadata.name: is missing",
        ),
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
            r"pod kube-system/\S+: field spec.containers\[\d+\] = None: must be an object",
        ),
        (
            k8s.parse_services,
            "services.json",
            lambda item: item["spec"]["ports"].append(53),
            r"service \S+: field spec.ports\[\d+\] = 53: must be an object",
        ),
        (
            k8s.parse_endpoints,
            "endpoints.json",
            lambda item: item["subsets"][0]["addresses"].append("10.244.0.2"),
            r"endpoints \S+ subsets\[0\]: field addresses\[\d+\] = '10.244.0.2': must be an object",
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
        ('{"kind": "List", "items": {}}', "field items = {}: must be a list"),
        ('{"kind": "List", "items": [{"kind": "Pod"}]}', r"items\[0\]: is a Pod, expected Node"),
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
            r"pod default/nginx-f89759699-\w+: field status.containerStatuses = .*: must be a list",
        ),
        (
            lambda p: p["status"]["containerStatuses"][0].update(restartCount="7"),
            r"pod default/nginx-f89759699-\w+ container nginx: field restartCount = '7': must be",
        ),
        (
            lambda p: p["spec"].update(containers=[]),
            r"pod default/nginx-f89759699-\w+: field spec.containers: is missing or empty",
        ),
        (lambda p: p["metadata"].pop("namespace"), r"field metadata.namespace: is missing"),
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
        ('{"Backend": {"Type": "vxlan"}}', "net-conf.json: field Network: is missing"),
        ('{"Network": "10.244.0.1/16"}', "field Network = '10.244.0.1/16': is not an IPv4 CIDR"),
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
    with pytest.raises(ValueError, match=r"data\[net-conf.json\]: is missing \(keys: \['cni-conf"):
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
            "field networking.serviceSubnet = '10.1.0.0/36': is not an IPv4 CIDR",
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
# Dual-stack clusters: the IPv4 side is judged, the IPv6 side kept and shown


def test_dual_stack_nodes_read_their_ipv4_side_even_with_ipv6_listed_first(
    nodes: tuple[k8s.ClusterNode, ...],
) -> None:
    dual = k8s.parse_nodes(text("nodes-dual-stack.json"))
    assert [(n.name, n.internal_ip, n.pod_cidrs, n.flannel_public_ip) for n in dual] == [
        (n.name, n.internal_ip, n.pod_cidrs, n.flannel_public_ip) for n in nodes
    ]
    node2 = dual[2]
    assert node2.internal_ips_v6 == (IPv6Address("fd00:10:10::243"),)
    assert node2.pod_cidrs_v6 == (IPv6Network("fd00:10:244:2::/64"),)
    assert node2.flannel_public_ipv6 == IPv6Address("fd00:10:10::243")
    assert node2.ipv6_text == " (IPv6, not checked: fd00:10:10::243, fd00:10:244:2::/64)"


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


def test_a_pod_whose_primary_ip_is_not_the_first_of_its_pod_ips_is_malformed() -> None:
    raw = doc("pods-all-dual-stack.json")
    raw["items"][0]["status"]["podIP"] = "10.244.1.9"
    with pytest.raises(ValueError, match=r"status.podIP 10.244.1.9 differs from status.podIPs"):
        k8s.parse_pods(raw)


def test_an_ipv6_primary_service_keeps_its_ipv4_cluster_ip_where_the_checks_look() -> None:
    raw = doc("services.json")
    dns = raw["items"][1]["spec"]
    dns["clusterIP"] = "fd00:10:96::a"
    dns["clusterIPs"] = ["fd00:10:96::a", "10.1.0.10"]
    dns["ipFamilies"] = ["IPv6", "IPv4"]
    dns["ipFamilyPolicy"] = "PreferDualStack"
    service = k8s.parse_services(raw)[1]
    assert service.cluster_ip == IPv4Address("10.1.0.10")
    assert service.cluster_ips_v6 == (IPv6Address("fd00:10:96::a"),)
    raw = doc("endpoints.json")
    raw["items"][1]["subsets"][0]["addresses"][0]["ip"] = "fd00:10:244::2"
    dns_ep = k8s.parse_endpoints(raw)[1]
    assert dns_ep.ready_ips[0] == IPv6Address("fd00:10:244::2")


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


def test_the_flannel_lookup_asks_every_namespace_and_takes_the_one_in_either_home() -> None:
    assert k8s.flannel_configmap() == (
        "get", "configmap", "--all-namespaces", "--field-selector",
        "metadata.name=kube-flannel-cfg", "-o", "json",
    )  # fmt: skip
    old = doc("configmap-kube-flannel-cfg.json")
    listed = {"apiVersion": "v1", "kind": "List", "items": [old]}
    assert k8s.parse_flannel_netconf(listed).namespace == "kube-system"
    new = doc("configmaps-kube-flannel-cfg-dual-stack.json")["items"][0]
    with pytest.raises(ValueError, match="is in both kube-flannel and kube-system: an upgrade"):
        k8s.parse_flannel_netconf({"kind": "List", "items": [old, new]})
    elsewhere = copy.deepcopy(old)
    elsewhere["metadata"]["namespace"] = "default"
    with pytest.raises(
        ValueError, match="no ConfigMap kube-flannel-cfg in kube-flannel or kube-system; found "
    ):
        k8s.parse_flannel_netconf({"kind": "List", "items": [elsewhere]})


@pytest.mark.parametrize(
    ("target", "shown"),
    [([80], "[80]"), (True, "True"), ({"a": 1}, "{'a': 1}"), (None, "None")],
    ids=["list", "bool", "mapping", "null"],
)
def test_a_target_port_that_is_no_number_and_no_name_is_named_exactly(
    target: object, shown: str
) -> None:
    raw = doc("services.json")
    raw["items"][1]["spec"]["ports"][0]["targetPort"] = target
    with pytest.raises(ValueError, match="targetPort") as info:
        k8s.parse_services(raw)
    assert str(info.value) == (
        f"service kube-system/kube-dns spec.ports[0]: field targetPort = {shown}: "
        "must be a number or a name"
    )


def test_a_target_port_may_be_a_name_and_a_service_takes_kubernetes_defaults() -> None:
    raw = doc("services.json")
    spec = raw["items"][1]["spec"]
    del spec["type"]
    spec["ports"][0]["targetPort"] = "dns"
    del spec["ports"][1]["targetPort"]
    del spec["ports"][1]["protocol"]
    del spec["ports"][2]["name"]
    svc = k8s.parse_services(raw)[1]
    assert svc.type == "ClusterIP"
    assert [(p.name, p.protocol, p.port, p.target_port, p.node_port) for p in svc.ports] == [
        ("dns", "UDP", 53, "dns", None),
        ("dns-tcp", "TCP", 53, 53, None),
        ("", "TCP", 9153, 9153, None),
    ]


def test_a_node_port_service_without_node_port_is_named_exactly() -> None:
    raw = doc("services.json")
    raw["items"][1]["spec"]["type"] = "NodePort"
    with pytest.raises(ValueError, match="NodePort") as info:
        k8s.parse_services(raw)
    assert (
        str(info.value) == "service kube-system/kube-dns: type NodePort but a port has no nodePort"
    )


POD = "pod default/nginx-f89759699-8qlt4"


def first_pod_with(**status: object) -> k8s.ClusterPod:
    raw = doc("pods-all.json")
    item = raw["items"][0]
    for key, value in status.items():
        if key == "hostNetwork":
            item["spec"][key] = value
        elif value is None:
            item["status"].pop(key, None)
        else:
            item["status"][key] = value
    return k8s.parse_pods(raw)[0]


def test_a_pods_reason_message_and_host_network_are_read() -> None:
    pod = first_pod_with(reason="Evicted", message="The node was low on memory.", hostNetwork=True)
    assert (pod.reason, pod.message, pod.host_network) == (
        "Evicted",
        "The node was low on memory.",
        True,
    )
    pod = first_pod_with()
    assert (pod.reason, pod.message, pod.host_network) == ("", "", False)


def test_without_pod_ips_the_pod_ip_field_is_read_alone() -> None:
    assert first_pod_with(podIPs=None, podIP="10.244.1.7").pod_ip == IPv4Address("10.244.1.7")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (
            {"reason": 5},
            "field status.reason = 5: was read as a number, not as text; put it in quotes: '5'",
        ),
        ({"message": ["x"]}, "field status.message = ['x']: must be text, not a list"),
        ({"hostNetwork": "yes"}, "field spec.hostNetwork = 'yes': must be true or false, not text"),
        (
            {"podIPs": None, "podIP": "10.244.x"},
            "field status.podIP = '10.244.x': is not an IP address",
        ),
        ({"podIPs": [{"ip": "bad"}]}, "field status.podIPs[0].ip = 'bad': is not an IP address"),
        (
            {"podIPs": [{"ip": "10.244.9.9"}]},
            "status.podIP 10.244.1.2 differs from status.podIPs[0] 10.244.9.9",
        ),
    ],
    ids=["reason", "message", "host-network", "pod-ip", "pod-ips", "disagree"],
)
def test_a_malformed_pod_status_is_named_exactly(status: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match="pod default/") as info:
        first_pod_with(**status)
    assert str(info.value) == f"{POD}: {error}"
