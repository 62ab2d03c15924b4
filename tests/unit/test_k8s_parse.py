"""The kubectl JSON parsers (lab/k8s/parse.py) on the fields the recorded objects do not
exercise, to the letter: each refusal names what was asked, the object and the field as it is
written in the object, and each accepted odd value (a headless service, an old node, a
dual-stack object) parses to exactly what it means."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from lab import k8s
from lab.k8s.model import EndpointAddress
from lab.model.strict import DecodeError
from tests.unit.k8s_data import doc, text

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "data" / "k8s"
NODES = json.loads((DATA / "nodes.json").read_text())


def node(spec: dict[str, Any]) -> dict[str, Any]:
    """The recorded k8s-node1 with `spec` as its whole spec."""
    item = copy.deepcopy(NODES["items"][1])
    item["spec"] = spec
    return item


def refusal(parse: Callable[[Any], object], raw: object) -> str:
    with pytest.raises(DecodeError) as e:
        parse(raw)
    return str(e.value)


NOT_A_CIDR = "is not a CIDR ('10.244.1.0/33' does not appear to be an IPv4 or IPv6 network)"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"podCIDR": "10.244.1.0/33"},
            f"node k8s-node1: field spec.podCIDR = '10.244.1.0/33': {NOT_A_CIDR}",
        ),
        (
            {"podCIDRs": ["10.244.1.0/33"]},
            f"node k8s-node1: field spec.podCIDRs[0] = '10.244.1.0/33': {NOT_A_CIDR}",
        ),
        (
            {"podCIDR": "10.244.1.0/33", "podCIDRs": ["10.244.1.0/24"]},
            f"node k8s-node1: field spec.podCIDR = '10.244.1.0/33': {NOT_A_CIDR}",
        ),
    ],
    ids=["old-field-only", "list-only", "both"],
)
def test_a_malformed_pod_cidr_is_named_by_the_field_that_holds_it(
    spec: dict[str, Any], message: str
) -> None:
    assert refusal(k8s.parse_nodes, node(spec)) == message


def endpoints(address: dict[str, Any], key: str = "addresses") -> dict[str, Any]:
    return {
        "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "ns"},
        "subsets": [{"addresses": [{"ip": "10.244.1.4"}]}, {key: [address]}],
    }


AT = "endpoints ns/web subsets[1].addresses[0]"
TEXT_7 = "was read as a number, not as text; put it in quotes: '7'"


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ({"ip": "10.244.1.5", "nodeName": 7}, f"{AT}: field nodeName = 7: {TEXT_7}"),
        (
            {"ip": "10.244.1.5", "targetRef": "pod/x"},
            f"{AT}: field targetRef = 'pod/x': must be an object",
        ),
        (
            {"ip": "10.244.1.5", "targetRef": {"name": "x", "kind": 7}},
            f"{AT}: field targetRef.kind = 7: {TEXT_7}",
        ),
        (
            {"ip": "10.244.1.5", "targetRef": {"name": "x", "namespace": 7}},
            f"{AT}: field targetRef.namespace = 7: {TEXT_7}",
        ),
        (
            {"ip": "10.244.1.5", "targetRef": {"kind": "Pod"}},
            f"{AT}: field targetRef.name: is missing",
        ),
        (
            {"ip": "10.244.1.300"},
            "endpoints ns/web: field subsets[1].addresses[0].ip = '10.244.1.300': is not an IP "
            "address",
        ),
    ],
    ids=["nodeName", "targetRef", "targetRef.kind", "targetRef.namespace", "no-name", "ip"],
)
def test_a_malformed_endpoint_address_is_named_with_its_place(
    address: dict[str, Any], message: str
) -> None:
    # the field of the address, not of the Endpoints object (whose own `kind` is fine)
    assert refusal(k8s.parse_endpoints, endpoints(address)) == message


def test_an_endpoint_address_keeps_its_node_and_target() -> None:
    ready = {
        "ip": "10.244.1.5",
        "nodeName": "n1",
        "targetRef": {"name": "web-1", "namespace": "ns"},
    }
    (got,) = k8s.parse_endpoints(endpoints(ready, key="notReadyAddresses"))
    assert got.addresses == (
        k8s.EndpointAddress(IPv4Address("10.244.1.4"), True, None, None),
        k8s.EndpointAddress(IPv4Address("10.244.1.5"), False, "n1", "Pod ns/web-1"),
    )


@pytest.mark.parametrize(
    ("parse", "message"),
    [
        (k8s.parse_nodes, "kubectl get nodes = []: expected a JSON object, got a list"),
        (
            k8s.parse_flannel_netconf,
            "kubectl get configmap kube-flannel-cfg = []: expected a JSON object, got a list",
        ),
        (
            k8s.parse_kubeadm_networking,
            "kubectl -n kube-system get configmap kubeadm-config = []: expected a JSON object, "
            "got a list",
        ),
    ],
    ids=["nodes", "flannel", "kubeadm"],
)
def test_an_answer_that_is_no_object_is_named_with_what_was_asked(
    parse: Callable[[Any], object], message: str
) -> None:
    assert refusal(parse, "[]") == message


def test_a_terminated_containers_exit_code_is_a_number_of_that_container() -> None:
    pod = {
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {
            "containerStatuses": [{"name": "c", "state": {"terminated": {"exitCode": "1"}}}]
        },
    }
    assert refusal(k8s.parse_pods, pod) == (
        "pod ns/p container c: field exitCode = '1': must be an integer, not text; remove the "
        "quotes"
    )


def two_container_pod(containers: list[Any], statuses: list[Any]) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": containers},
        "status": {"containerStatuses": statuses},
    }


@pytest.mark.parametrize(
    ("containers", "statuses", "message"),
    [
        (
            [{"name": "a"}, {"image": "busybox"}],
            [],
            "pod ns/p spec.containers[1]: field name: is missing",
        ),
        (
            [{"name": "a"}, {"name": 7}],
            [],
            f"pod ns/p spec.containers[1]: field name = 7: {TEXT_7}",
        ),
        (
            [{"name": "a"}, {"name": "b"}],
            [{"name": "a"}, {"ready": True}],
            "pod ns/p status.containerStatuses[1]: field name: is missing",
        ),
    ],
    ids=["container-without-name", "container-name-number", "status-without-name"],
)
def test_a_containers_missing_name_is_named_with_its_place(
    containers: list[Any], statuses: list[Any], message: str
) -> None:
    assert refusal(k8s.parse_pods, two_container_pod(containers, statuses)) == message


def test_a_listed_flannel_configmap_with_an_odd_namespace_is_named() -> None:
    listed = {
        "kind": "List",
        "items": [{"kind": "ConfigMap", "metadata": {"name": "kube-flannel-cfg", "namespace": 7}}],
    }
    assert refusal(k8s.parse_flannel_netconf, listed) == (
        f"kubectl get configmap kube-flannel-cfg: field metadata.namespace = 7: {TEXT_7}"
    )


def test_a_kubeadm_subnet_that_is_no_text_is_named_in_the_cluster_configuration() -> None:
    cm = json.loads((DATA / "configmap-kubeadm-config.json").read_text())
    conf = cm["data"]["ClusterConfiguration"]
    assert "podSubnet: 10.244.0.0/16" in conf
    cm["data"]["ClusterConfiguration"] = conf.replace("podSubnet: 10.244.0.0/16", "podSubnet: 7")
    assert refusal(k8s.parse_kubeadm_networking, cm) == (
        "configmap kube-system/kubeadm-config ClusterConfiguration: field networking.podSubnet "
        f"= 7: {TEXT_7}"
    )


def service(spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": "s", "namespace": "ns"}, "spec": spec}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"type": "NodePort", "ports": [{"port": 80, "nodePort": "30080"}]},
            "service ns/s spec.ports[0]: field nodePort = '30080': must be an integer, not text; "
            "remove the quotes",
        ),
        (
            {"clusterIPs": "10.96.0.10"},
            "service ns/s: field spec.clusterIPs = '10.96.0.10': must be a list, not text",
        ),
        (
            {"clusterIP": "10.96.0.300"},
            "service ns/s: field spec.clusterIP = '10.96.0.300': is not an IP address",
        ),
        # headless is "None" exactly, as the API server writes it
        *(
            (
                {"clusterIP": word},
                f"service ns/s: field spec.clusterIP = '{word}': is not an IP address",
            )
            for word in ("none", "NONE", "XXNoneXX")
        ),
        (
            {"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00::300::1"]},
            "service ns/s: field spec.clusterIPs[1] = 'fd00::300::1': is not an IP address",
        ),
    ],
    ids=[
        "nodePort",
        "clusterIPs-not-a-list",
        "old-clusterIP-only",
        "none-lowercase",
        "none-uppercase",
        "none-inside",
        "clusterIPs",
    ],
)
def test_a_malformed_service_field_is_named(spec: dict[str, Any], message: str) -> None:
    assert refusal(k8s.parse_services, service(spec)) == message


@pytest.mark.parametrize(
    "spec",
    [{"clusterIP": "None", "clusterIPs": ["None"]}, {"clusterIP": "None"}, {}],
    ids=["both-fields", "old-field-only", "none-given"],
)
def test_a_headless_service_has_no_cluster_ip(spec: dict[str, Any]) -> None:
    (svc,) = k8s.parse_services(service(spec))
    assert (svc.cluster_ip, svc.cluster_ips_v6) == (None, ())


def test_an_ipv4_address_in_flannels_ipv6_annotation_is_not_taken_for_one() -> None:
    item = copy.deepcopy(NODES["items"][1])
    item["metadata"]["annotations"][k8s.FLANNEL_PUBLIC_IPV6] = "10.10.10.242"
    (got,) = k8s.parse_nodes(item)
    assert (got.flannel_public_ip, got.flannel_public_ipv6) == (IPv4Address("10.10.10.242"), None)
    item["metadata"]["annotations"][k8s.FLANNEL_PUBLIC_IPV6] = "fd00::242"
    (got,) = k8s.parse_nodes(item)
    assert got.flannel_public_ipv6 == IPv6Address("fd00::242")


@pytest.mark.parametrize(
    ("output", "answers"),
    [
        (
            # busybox 1.28: the server's lines first, then one numbered line per answer
            "Server:    10.96.0.10\n"
            "Address 1: 10.96.0.10 kube-dns.kube-system.svc.cluster.local\n"
            "\n"
            "Name:      web.ns.svc.cluster.local\n"
            "Address 1: fd00::5 web-1.web.ns.svc.cluster.local\n"
            "Address 2: 10.244.1.5 web-1.web.ns.svc.cluster.local\n"
            "Address 3: 10.244.2.6 web-2.web.ns.svc.cluster.local\n"
            "Address 4: 10.244.1.5\n",
            ("10.244.1.5", "10.244.2.6"),
        ),
        (
            # newer busybox: `Address:` lines; one that is no address is skipped, not the end
            "Server:\t\t10.96.0.10\n"
            "Address:\t10.96.0.10:53\n"
            "\n"
            "Name:\tweb.ns.svc.cluster.local\n"
            "Address: 10.96.0.10:53\n"
            "Address: 10.244.1.5\n",
            ("10.244.1.5",),
        ),
    ],
    ids=["busybox-1.28", "newer-busybox"],
)
def test_nslookup_answers_are_the_ipv4_addresses_after_the_name_each_once(
    output: str, answers: tuple[str, ...]
) -> None:
    assert k8s.parse_busybox_nslookup(output) == tuple(IPv4Address(a) for a in answers)


@pytest.fixture(scope="module")
def nodes() -> tuple[k8s.ClusterNode, ...]:
    return k8s.parse_nodes(text("nodes.json"))


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


def test_a_pod_whose_primary_ip_is_not_the_first_of_its_pod_ips_is_malformed() -> None:
    raw = doc("pods-all-dual-stack.json")
    raw["items"][0]["status"]["podIP"] = "10.244.1.9"
    with pytest.raises(ValueError, match="differs from") as info:
        k8s.parse_pods(raw)
    assert str(info.value) == (
        "pod default/nginx-f89759699-8qlt4: status.podIP 10.244.1.9 differs from "
        "status.podIPs[0] 10.244.1.2"
    )


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


def test_the_flannel_lookup_asks_every_namespace_and_takes_the_one_in_either_home() -> None:
    assert k8s.flannel_configmap() == (
        "get", "configmap", "--all-namespaces", "--field-selector",
        "metadata.name=kube-flannel-cfg", "-o", "json",
    )  # fmt: skip
    old = doc("configmap-kube-flannel-cfg.json")
    listed = {"apiVersion": "v1", "kind": "List", "items": [old]}
    assert k8s.parse_flannel_netconf(listed).namespace == "kube-system"
    new = doc("configmaps-kube-flannel-cfg-dual-stack.json")["items"][0]
    with pytest.raises(ValueError, match="is in both kube-flannel and kube-system") as info:
        k8s.parse_flannel_netconf({"kind": "List", "items": [old, new]})
    assert str(info.value) == (
        "kubectl get configmap kube-flannel-cfg: kube-flannel-cfg is in both kube-flannel and "
        "kube-system: an upgrade from a manifest before flannel v0.20 left the old one; delete "
        "the objects of the namespace the running kube-flannel DaemonSet does not use"
    )
    elsewhere = copy.deepcopy(old)
    elsewhere["metadata"]["namespace"] = "default"
    with pytest.raises(ValueError, match="no ConfigMap kube-flannel-cfg") as info:
        k8s.parse_flannel_netconf({"kind": "List", "items": [elsewhere]})
    assert str(info.value) == (
        "kubectl get configmap kube-flannel-cfg: no ConfigMap kube-flannel-cfg in kube-flannel "
        "or kube-system; found only in default; is flannel installed? "
        "`kubectl get pods -A -l app=flannel`"
    )


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


def test_endpoints_backed_by_pods_name_their_target() -> None:
    doc = json.loads((ROOT / "tests" / "data" / "k8s" / "endpoints.json").read_text())
    item = copy.deepcopy(doc["items"][0])
    item["subsets"] = [
        {
            "addresses": [
                {"ip": "10.244.0.2", "nodeName": "n1",
                 "targetRef": {"kind": "Pod", "namespace": "ns", "name": "p1"}},
                {"ip": "10.244.0.3", "targetRef": {"name": "p2"}},
            ],
            "notReadyAddresses": [
                {"ip": "10.244.1.2", "targetRef": {"kind": "Node", "name": "n2"}}
            ],
        }
    ]  # fmt: skip
    (eps,) = k8s.parse_endpoints({"kind": "EndpointsList", "items": [item]})
    assert eps.addresses == (
        EndpointAddress(IPv4Address("10.244.0.2"), True, "n1", "Pod ns/p1"),
        EndpointAddress(IPv4Address("10.244.0.3"), True, None, "Pod p2"),
        EndpointAddress(IPv4Address("10.244.1.2"), False, None, "Node n2"),
    )
    item["subsets"][0]["addresses"][1]["targetRef"] = {"kind": "Pod"}
    with pytest.raises(DecodeError) as e:
        k8s.parse_endpoints({"kind": "EndpointsList", "items": [item]})
    assert str(e.value) == (
        "endpoints default/kubernetes subsets[0].addresses[1]: field targetRef.name: is missing"
    )
    item["subsets"][0]["addresses"][1]["targetRef"] = {"name": "p2", "namespace": 5}
    with pytest.raises(
        DecodeError,
        match=r"^endpoints default/kubernetes subsets\[0\]\.addresses\[1\]: "
        r"field targetRef\.namespace = 5",
    ):
        k8s.parse_endpoints({"kind": "EndpointsList", "items": [item]})
