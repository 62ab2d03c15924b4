"""Edges of the pure core that the other tests pass by: a command without words, an unknown
node, a lab read without a file name, hostname suggestions at their cuts, endpoints backed by
pods, CNI entries after a bad one, YAML 1.1 dates and numbers as the strict loader flags them,
the tunnel's facts, a bounded echo built afresh."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lab import k8s
from lab.k8s import kubectl
from lab.k8s.model import EndpointAddress
from lab.model.strict import DecodeError

ROOT = Path(__file__).resolve().parents[2]


def test_a_configmap_anywhere_is_printed_as_json_by_default() -> None:
    assert kubectl.configmap_anywhere("x") == (
        "get", "configmap", "--all-namespaces", "--field-selector", "metadata.name=x",
        "-o", "json",
    )  # fmt: skip


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
