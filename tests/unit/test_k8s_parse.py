"""The kubectl JSON parsers on the fields the recorded objects do not exercise, to the letter:
each refusal names what was asked, the object and the field as it is written in the object,
and each accepted odd value (a headless service, an old node) parses to exactly what it means."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

import pytest

from lab import k8s
from lab.model.strict import DecodeError

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
