"""The kubectl JSON parsers (lab/k8s/parse.py) on recorded-shape kubectl JSON
(tests/data/k8s/): nodes, pods, services, endpoints, flannel's and kubeadm's ConfigMaps, e2e
namespaces and busybox nslookup answers. (The fields the recordings do not exercise:
test_k8s_parse.py.)"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from lab import k8s
from tests.unit.k8s_data import doc, text

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def nodes() -> tuple[k8s.ClusterNode, ...]:
    return k8s.parse_nodes(text("nodes.json"))


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
            "node k8s-node1: field spec.podCIDRs[0] = '10.244.1.0/33': is not a CIDR "
            "('10.244.1.0/33' does not appear to be an IPv4 or IPv6 network)",
        ),
        (
            lambda n: n["spec"].update(podCIDR="10.244.7.0/24"),
            "node k8s-node1: spec.podCIDR 10.244.7.0/24 differs from spec.podCIDRs[0] "
            "10.244.1.0/24",
        ),
        (
            lambda n: n["status"]["addresses"][0].update(address="10.10.10"),
            "node k8s-node1: field status.addresses[0].address = '10.10.10': is not an IP address",
        ),
        (
            lambda n: n["metadata"]["annotations"].update({k8s.FLANNEL_PUBLIC_IP: "fe80::1"}),
            "node k8s-node1: field metadata.annotations[flannel.alpha.coreos.com/public-ip] = "
            "'fe80::1': is not an IPv4 address like 10.10.10.241 (Expected 4 octets in "
            "'fe80::1')",
        ),
        (
            lambda n: n["status"].update(conditions={"type": "Ready"}),
            "node k8s-node1: field status.conditions = {'type': 'Ready'}: must be a list, not "
            "a mapping",
        ),
        (
            lambda n: n["status"]["conditions"].append("Ready"),
            "node k8s-node1: field status.conditions[5] = 'Ready': must be an object",
        ),
        (
            lambda n: n["metadata"].pop("name"),
            "kubectl get nodes: items[1]: field metadata.name: is missing",
        ),
    ],
)
def test_malformed_nodes_raise_naming_the_node_and_the_field(
    edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        k8s.parse_nodes(_broken_node(edit))


@pytest.mark.parametrize(
    ("parse", "file", "edit", "message"),
    [
        (
            k8s.parse_pods,
            "pods-kube-system.json",
            lambda item: item["spec"]["containers"].append(None),
            "pod kube-system/coredns-66bff467f8-6h8mh: field spec.containers[1] = None: must "
            "be an object",
        ),
        (
            k8s.parse_services,
            "services.json",
            lambda item: item["spec"]["ports"].append(53),
            "service default/kubernetes: field spec.ports[1] = 53: must be an object",
        ),
        (
            k8s.parse_endpoints,
            "endpoints.json",
            lambda item: item["subsets"][0]["addresses"].append("10.244.0.2"),
            "endpoints default/kubernetes subsets[0]: field addresses[1] = '10.244.0.2': must "
            "be an object",
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
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        parse(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "error: the server doesn't have a resource type",
            'kubectl get nodes = "error: the server doesn\'t have a resource type": output is '
            "not JSON (Expecting value: line 1 column 1 (char 0))",
        ),
        (
            '{"kind": "PodList", "items": []}',
            "kubectl get nodes: expected kind Node, NodeList or List, got 'PodList'",
        ),
        (
            '{"kind": "List", "items": {}}',
            "kubectl get nodes: field items = {}: must be a list, not a mapping",
        ),
        (
            '{"kind": "List", "items": [{"kind": "Pod"}]}',
            "kubectl get nodes: items[0]: is a Pod, expected Node",
        ),
        ("[]", "kubectl get nodes = []: expected a JSON object, got a list"),
    ],
)
def test_output_that_is_no_node_list_is_rejected(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
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
            "pod default/nginx-f89759699-8qlt4: field status.podIP = '10.244.1.300': is not an "
            "IP address",
        ),
        (
            lambda p: p["status"].update(containerStatuses={"name": "nginx"}),
            "pod default/nginx-f89759699-8qlt4: field status.containerStatuses = "
            "{'name': 'nginx'}: must be a list, not a mapping",
        ),
        (
            lambda p: p["status"]["containerStatuses"][0].update(restartCount="7"),
            "pod default/nginx-f89759699-8qlt4 container nginx: field restartCount = '7': must "
            "be an integer, not text; remove the quotes",
        ),
        (
            lambda p: p["spec"].update(containers=[]),
            "pod default/nginx-f89759699-8qlt4: field spec.containers: is missing or empty",
        ),
        (
            lambda p: p["metadata"].pop("namespace"),
            "kubectl get pods: items[0] (nginx-f89759699-8qlt4): field metadata.namespace: is "
            "missing",
        ),
    ],
)
def test_malformed_pods_raise_naming_the_pod_and_the_field(
    edit: Callable[[dict[str, Any]], None], message: str
) -> None:
    raw = doc("pods-all.json")
    edit(raw["items"][0])
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
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
    with pytest.raises(
        ValueError,
        match=r"^service kube-system/kube-dns: type NodePort but a port has no nodePort$",
    ):
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
        ValueError,
        match=r"^endpoints kube-system/kube-dns: field subsets\[0\].addresses\[0\].ip = "
        r"'not-an-ip': is not an IP address$",
    ):
        k8s.parse_endpoints(raw)


def test_flannel_net_conf_gives_network_and_backend() -> None:
    conf = k8s.parse_flannel_netconf(text("configmap-kube-flannel-cfg.json"))
    assert conf == k8s.FlannelNetConf(IPv4Network("10.244.0.0/16"), "vxlan", 24)


@pytest.mark.parametrize(
    ("net_conf", "message"),
    [
        (
            '{"Network": "10.244.0.0/16",',
            "configmap kube-system/kube-flannel-cfg net-conf.json: not JSON (Expecting property "
            "name enclosed in double quotes: line 1 column 29 (char 28))",
        ),
        (
            '{"Backend": {"Type": "vxlan"}}',
            "configmap kube-system/kube-flannel-cfg net-conf.json: field Network: is missing",
        ),
        (
            '{"Network": "10.244.0.1/16"}',
            "configmap kube-system/kube-flannel-cfg net-conf.json: field Network = "
            "'10.244.0.1/16': is not an IPv4 CIDR like 10.244.0.0/16 (10.244.0.1/16 has host "
            "bits set); did you mean 10.244.0.0/16?",
        ),
    ],
)
def test_broken_flannel_net_conf_raises(net_conf: str, message: str) -> None:
    raw = doc("configmap-kube-flannel-cfg.json")
    raw["data"]["net-conf.json"] = net_conf
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        k8s.parse_flannel_netconf(raw)


def test_a_config_map_without_net_conf_raises_listing_its_keys() -> None:
    raw = doc("configmap-kube-flannel-cfg.json")
    del raw["data"]["net-conf.json"]
    with pytest.raises(
        ValueError,
        match=r"^configmap kube-system/kube-flannel-cfg: field data\[net-conf.json\]: is missing "
        r"\(keys: \['cni-conf.json'\]\)$",
    ):
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
        (
            lambda cc: cc + "networking: [",
            "configmap kube-system/kubeadm-config ClusterConfiguration: not YAML (line 22, "
            "column 14 = 'networking: [': is not valid YAML: while parsing a flow node: expected "
            "the node content, but found '<stream end>')",
        ),
        (
            lambda cc: cc.replace("kind: ClusterConfiguration", "kind: InitConfiguration"),
            "configmap kube-system/kubeadm-config ClusterConfiguration: kind is "
            "'InitConfiguration', expected ClusterConfiguration",
        ),
        (
            lambda cc: cc.replace("serviceSubnet: 10.1.0.0/16", "serviceSubnet: 10.1.0.0/36"),
            "configmap kube-system/kubeadm-config ClusterConfiguration: field "
            "networking.serviceSubnet = '10.1.0.0/36': is not an IPv4 CIDR like 10.244.0.0/16 "
            "('36' is not a valid netmask)",
        ),
    ],
)
def test_broken_kubeadm_config_raises(edit: Callable[[str], str], message: str) -> None:
    raw = doc("configmap-kubeadm-config.json")
    raw["data"]["ClusterConfiguration"] = edit(raw["data"]["ClusterConfiguration"])
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
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
