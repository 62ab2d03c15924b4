"""A dual-stack list holds one address per family (lab/k8s/parse.py): a pod whose
`status.podIPs` holds two IPv4 addresses, or a service whose `spec.clusterIPs` does, is a parse
problem naming the object and both addresses, not silently its first (issue 30)."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from lab import k8s
from lab.model.strict import DecodeError

DATA = Path(__file__).resolve().parents[1] / "data" / "k8s"


def doc(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / name).read_text())
    return loaded


def test_a_pod_with_two_ipv4_addresses_is_a_problem_naming_it_and_both() -> None:
    with pytest.raises(DecodeError) as info:
        k8s.parse_pods((DATA / "pods-all-two-ipv4.json").read_text())
    assert str(info.value.problem) == (
        "pod default/nginx-f89759699-hm87s: field status.podIPs: holds 2 IPv4 addresses "
        "(10.244.2.2, 172.17.0.2); the API allows one per family (a dual-stack object has one "
        "IPv4 and one IPv6 address); what wrote it is not the API server: check the network "
        "plugin's results"
    )


def test_a_dual_stack_pod_with_one_address_per_family_still_parses() -> None:
    pods = {p.name: p for p in k8s.parse_pods((DATA / "pods-all-dual-stack.json").read_text())}
    pod = pods["nginx-f89759699-hm87s"]
    assert pod.pod_ip == IPv4Address("10.244.2.2")
    assert [str(a) for a in pod.pod_ips_v6] == ["fd00:10:244:2::2"]


def test_a_pod_with_two_ipv6_addresses_is_a_problem_too() -> None:
    raw = doc("pods-all-dual-stack.json")
    raw["items"][0]["status"]["podIPs"].append({"ip": "fd00:10:244:1::99"})
    with pytest.raises(DecodeError, match=r"holds 2 IPv6 addresses") as info:
        k8s.parse_pods(raw)
    assert str(info.value) == (
        "pod default/nginx-f89759699-8qlt4: field status.podIPs: holds 2 IPv6 addresses "
        "(fd00:10:244:1::2, fd00:10:244:1::99); the API allows one per family (a dual-stack "
        "object has one IPv4 and one IPv6 address); what wrote it is not the API server: check "
        "the network plugin's results"
    )


def test_a_service_with_two_ipv4_cluster_ips_is_a_problem() -> None:
    raw = doc("services.json")
    service = copy.deepcopy(raw["items"][1])
    service["spec"]["clusterIPs"] = [service["spec"]["clusterIP"], "10.1.0.99"]
    raw["items"][1] = service
    with pytest.raises(DecodeError) as info:
        k8s.parse_services(raw)
    name = f"{service['metadata']['namespace']}/{service['metadata']['name']}"
    assert str(info.value.problem) == (
        f"service {name}: field spec.clusterIPs: holds 2 IPv4 addresses "
        f"({service['spec']['clusterIP']}, 10.1.0.99); the API allows one per family (a "
        "dual-stack object has one IPv4 and one IPv6 address); what wrote it is not the API "
        "server: check the network plugin's results"
    )
