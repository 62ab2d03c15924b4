"""Edges of the pure core that the other tests pass by: a command without words, an unknown
node, a lab read without a file name, hostname suggestions at their cuts, endpoints backed by
pods, CNI entries after a bad one, YAML 1.1 dates and numbers as the strict loader flags them,
the tunnel's facts, a bounded echo built afresh."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab import k8s
from lab.common.commands import Output
from lab.k8s import kubectl
from lab.k8s.model import EndpointAddress
from lab.model.strict import DecodeError
from lab.net import cni
from lab.net.reachability import Expect, Mismatch, Observation
from lab.podnet import tunnel

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


def test_cni_entries_after_a_bad_one_are_still_checked() -> None:
    result = {
        "cniVersion": "0.4.0",
        "interfaces": [{"name": ""}, {"name": "eth0", "mac": "zz", "sandbox": "/p"}],
        "ips": [7, {"version": "4", "interface": 1, "address": "x"}],
        "routes": [7, {"dst": "x"}],
    }
    assert cni.validate_result(result, "0.4.0") == [
        "interfaces[0]: needs a name",
        "interfaces[1].mac 'zz' is not a MAC address",
        "ips[0] 7 is not an object",
        "ips[1].address 'x' is not CIDR notation",
        "routes[0] 7 is not an object",
        "routes[1].dst 'x' is not CIDR notation",
    ]


def test_a_conflists_subnets_come_from_every_range_of_every_plugin() -> None:
    conflist = {
        "plugins": [
            {"type": "bridge", "ipam": {"ranges": [[{"subnet": "10.244.0.0/24"}],
                                                   [{"subnet": "10.245.0.0/24"}]]}},
            {"type": "portmap"},
        ]
    }  # fmt: skip
    assert cni.node_subnets_from_conflist(conflist) == (
        IPv4Network("10.244.0.0/24"),
        IPv4Network("10.245.0.0/24"),
    )
    assert cni.node_subnets_from_conflist({}) == ()


def test_the_tunnels_facts_read_each_probe_and_an_output_that_failed_as_empty() -> None:
    facts = tunnel.tunnel_facts("vx0")
    assert {k: (f.name, f.command) for k, f in facts.items()} == {
        k: (name, c)
        for (k, name), c in zip(
            [("device", "vx0 device"), ("addresses", "vx0 addresses"), ("fdb", "vx0 FDB"),
             ("neighbors", "vx0 neighbours"), ("routes", "vx0 routes")],
            tunnel.probe_tunnel_state("vx0"),
            strict=True,
        )
    }  # fmt: skip
    addr = '[{"addr_info": [{"family": "inet", "local": "10.244.0.0", "prefixlen": 32}]}]'
    assert facts["addresses"].parse(Output(0, addr)) == ("10.244.0.0/32",)
    assert facts["addresses"].parse(Output(1, addr)) == ()
    assert facts["device"].parse(Output(1, "garbage")) is None


def test_a_single_syn_retransmit_is_told() -> None:
    observed = Observation(True, "10.0.0.1", "probe", retransmits=1)
    assert "after 1 SYN retransmit(s)" in str(Mismatch("a", "b", Expect(True), observed))


def test_a_node_matrix_is_titled_node_to_pod() -> None:
    from lab.net import reachability as rm

    node = rm.Endpoint("node1", "node1", "10.10.10.241")
    assert rm.node_matrix([node], [rm.Endpoint("p", "node1", "10.244.0.2")]).title == "node -> pod"
