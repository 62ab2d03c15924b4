"""The kubectl JSON parsers on the fields the recorded objects do not exercise, to the letter:
each refusal names what was asked, the object and the field as it is written in the object,
and each accepted odd value (a headless service, an old node) parses to exactly what it means."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from lab import k8s
from lab.strict import DecodeError

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
