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
import yaml

from lab import k8s
from lab.common.commands import Command, Output
from lab.k8s import kubectl
from lab.k8s.model import EndpointAddress
from lab.model import problems, yamldoc
from lab.model.config import parse_lab, suggest_dns1123
from lab.model.labfile import load_lab
from lab.model.strict import Ambiguous, DecodeError
from lab.net import cni, tunnel
from lab.net.reachability import Expect, Mismatch, Observation

ROOT = Path(__file__).resolve().parents[2]


def test_a_command_needs_a_word() -> None:
    with pytest.raises(ValueError, match=r"^a command needs at least one argv word$"):
        Command(())


def test_an_unknown_node_is_named_with_the_labs_nodes() -> None:
    lab = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    with pytest.raises(KeyError) as e:
        lab.node("node9")
    assert e.value.args == ("lab 'ci-debian12' has no node 'node9'; nodes: ('node1', 'node2')",)


def test_a_lab_read_without_a_file_name_comes_from_lab() -> None:
    lab, _ = parse_lab(yaml.safe_load((ROOT / "labs" / "ci-debian12.yaml").read_text()))
    assert lab is not None
    assert lab.source == "<lab>"


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("-Node_1-", "node-1"),
        ("_" * 200 + "x", "node"),  # only the first 200 characters are looked at
        ("a" * 62 + "_b", "a" * 62),  # cut at 63, no '-' left at the end
    ],
)
def test_a_hostname_suggestion_at_its_cuts(name: str, suggested: str) -> None:
    assert suggest_dns1123(name) == suggested


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


@pytest.mark.parametrize(
    ("scalar", "text", "read_as", "why"),
    [
        ("2021-06-14", "2021-06-14", "date", "a date"),
        ("2021-06-14 10:00:00", "2021-06-14 10:00:00", "datetime", "a time"),
        ("!!timestamp 2021-99-99x", "2021-99-99x", None, "a date it cannot read"),
        ("20.10", "20.10", 20.1, "the number 20.1"),
        ("!!float abc", "abc", None, "a number it cannot read"),
    ],
)
def test_yaml_11_dates_and_numbers_are_kept_with_what_they_were_read_as(
    scalar: str, text: str, read_as: object, why: str
) -> None:
    value = yamldoc.read_yaml(f"a: {scalar}")[0]["a"]  # type: ignore[index]
    assert isinstance(value, Ambiguous)
    assert (value.text, value.why) == (text, why)
    if isinstance(read_as, str):
        assert type(value.read_as).__name__ == read_as
    else:
        assert value.read_as == read_as


def test_a_float_written_as_python_would_print_it_is_a_float() -> None:
    assert yamldoc.read_yaml("a: +1.5\nb: 2.25") == ({"a": 1.5, "b": 2.25}, [])


def test_a_yaml_error_without_a_problem_or_context_says_only_where() -> None:
    mark = yaml.error.Mark("<lab>", 0, 0, 0, None, None)
    assert str(yamldoc.yaml_problem(yaml.MarkedYAMLError(problem_mark=mark), "x: 1\n")) == (
        "line 1, column 1 = 'x: 1': is not valid YAML: "
    )


def test_a_control_character_on_a_later_line_is_placed_on_that_line() -> None:
    text = "a: 1\nb: 2\nc: x\x07\n"
    with pytest.raises(yaml.YAMLError) as e:
        yaml.safe_load(text)
    assert str(yamldoc.yaml_problem(e.value, text)).startswith("line 3, column 5: ")


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


def test_an_echo_built_afresh_keeps_its_bounds() -> None:
    echo = problems._Echo()
    assert echo.repr([1, 2, 3, 4, 5]) == "[1, 2, 3, 4, ...]"
    assert echo.repr({"a": {"b": {"c": 1}}}) == "{'a': {'b': {...}}}"
    assert echo.repr(10**24) == "10000000000000000000… (25 digits)"  # never cut mid-number
    assert echo.repr(["y" * 61]) == "['" + "y" * 60 + "'… (61 characters)]"
    assert echo.repr(object.__new__(type("T", (), {"__repr__": lambda s: "z" * 70}))) == (
        "z" * 28 + "..." + "z" * 29
    )


def test_a_single_syn_retransmit_is_told() -> None:
    observed = Observation(True, "10.0.0.1", "probe", retransmits=1)
    assert "after 1 SYN retransmit(s)" in str(Mismatch("a", "b", Expect(True), observed))


def test_a_lab_error_lists_one_problem_a_line() -> None:
    from lab.model.config import LabError
    from lab.model.problems import Problem

    err = LabError("lab.yaml", [Problem("a", message="x"), Problem("b", 1, "y", "z")])
    assert str(err) == "lab.yaml: 2 problem(s)\n  - a: x\n  - b = 1: y; z"


def test_a_yaml_problem_without_a_known_fix_has_an_empty_one() -> None:
    mark = yaml.error.Mark("<lab>", 0, 0, 0, None, None)
    assert (
        yamldoc.yaml_problem(yaml.MarkedYAMLError(problem="odd", problem_mark=mark), "x").fix == ""
    )
    assert yamldoc.yaml_problem(yaml.MarkedYAMLError(problem="odd"), "x").fix == ""


def test_a_node_matrix_is_titled_node_to_pod() -> None:
    from lab.net import reachability as rm

    node = rm.Endpoint("node1", "node1", "10.10.10.241")
    assert rm.node_matrix([node], [rm.Endpoint("p", "node1", "10.244.0.2")]).title == "node -> pod"
