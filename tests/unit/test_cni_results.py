"""What a CNI result must be (lab/net/cni.py), one fault at a time: each broken ADD result gets
exactly its problem line and no other, for the 0.3.x/0.4.0 and the 1.x shapes; a plugin's error
and result JSON read field by field."""

from __future__ import annotations

import copy
import json
from ipaddress import IPv4Network
from typing import Any

import pytest

from lab.net import cni

SUBNET = IPv4Network("10.244.0.0/24")
RESULT: dict[str, Any] = {
    "cniVersion": "0.4.0",
    "interfaces": [
        {"name": "cni0", "mac": "8a:3c:5b:0e:41:7d"},
        {"name": "veth4f2a1c3b", "mac": "b6:0e:9c:22:51:aa"},
        {"name": "eth0", "mac": "3a:91:c4:7e:02:19", "sandbox": "/var/run/netns/p"},
    ],
    "ips": [{"version": "4", "interface": 2, "address": "10.244.0.2/24", "gateway": "10.244.0.1"}],
    "routes": [{"dst": "0.0.0.0/0"}],
}


def broken(path: str, value: object) -> dict[str, Any]:
    """RESULT with one field set (`ips.0.gateway`), or removed (value `...`)."""
    result = copy.deepcopy(RESULT)
    *parents, last = path.split(".")
    target: Any = result
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is ...:
        del target[int(last) if last.isdigit() else last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return result


FAULTS = {
    "interfaces.2.mac": (
        "3A:91:C4:7E:02:19",
        ["interfaces[2].mac '3A:91:C4:7E:02:19' is not a MAC address"],
    ),
    "interfaces.1.name": ("", ["interfaces[1]: needs a name"]),
    "interfaces.0": ("cni0", ["interfaces[0] 'cni0' is not an object"]),
    "ips.0.version": ("6x", ["ips[0].version must be '4' or '6' in 0.4.0"]),
    "ips.0.gateway": ("10.244.9.1", ["ips[0].gateway 10.244.9.1 is outside 10.244.0.0/24"]),
    "ips.0.interface": (1, ["ips[0] is not on a sandbox interface"]),
}


@pytest.mark.parametrize("path", sorted(FAULTS))
def test_one_fault_gets_exactly_its_problem(path: str) -> None:
    value, problems = FAULTS[path]
    assert cni.validate_result(broken(path, value), "0.4.0", SUBNET) == problems


def test_every_fault_of_an_ip_entry_is_named_and_the_next_entries_still_checked() -> None:
    result = copy.deepcopy(RESULT)
    result["ips"] = [
        {"version": "4", "address": "10.244.0.300/24"},
        {"version": "4", "interface": 3, "address": "10.244.0.3/24", "gateway": "x"},
        {"version": "4", "interface": 0, "address": "10.9.0.3/24"},
        {"version": "4", "address": "10.244.0.4/24"},
    ]
    result["interfaces"][0] = {"name": "cni0", "mac": "8a:3c:5b:0e:41:7d"}
    result["routes"] = [{"dst": "0.0.0.0/0"}, {"gw": "10.244.0.1"}, {"dst": "default"}]
    assert cni.validate_result(result, "0.4.0", SUBNET) == [
        "ips[0].address '10.244.0.300/24' is not CIDR notation",
        "ips[1].gateway 'x' is not an address",
        "ips[1].interface 3 does not index interfaces",
        "ips[2] is not on a sandbox interface",
        "ips[2].address 10.9.0.3/24 is outside the node subnet 10.244.0.0/24",
        "routes[1].dst None is not CIDR notation",
        "routes[2].dst 'default' is not CIDR notation",
    ]


def test_an_interface_without_a_mac_and_an_ip_without_an_address() -> None:
    result = broken("interfaces.1.mac", ...)
    assert cni.validate_result(result, "0.4.0", SUBNET) == []
    result = broken("ips.0.address", ...)
    assert cni.validate_result(result, "0.4.0", SUBNET) == [
        "ips[0].address None is not CIDR notation"
    ]


def test_an_entry_that_is_no_object_does_not_stop_the_others() -> None:
    result = copy.deepcopy(RESULT)
    result["interfaces"] = ["x", {"name": ""}, {"name": "eth0", "mac": "zz", "sandbox": "/p"}]
    result["ips"] = [7, {"version": "4", "interface": 2, "address": "10.244.0.2/24"}]
    assert cni.validate_result(result, "0.4.0", SUBNET) == [
        "interfaces[0] 'x' is not an object",
        "interfaces[1]: needs a name",
        "interfaces[2].mac 'zz' is not a MAC address",
        "ips[0] 7 is not an object",
    ]


def test_an_ip_on_an_interface_that_is_no_object_is_not_on_a_sandbox() -> None:
    result = copy.deepcopy(RESULT)
    result["interfaces"][2] = "eth0"
    assert cni.validate_result(result, "0.4.0", SUBNET) == [
        "interfaces[2] 'eth0' is not an object",
        "ips[0] is not on a sandbox interface",
    ]


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0"])
def test_0x_results_need_the_ip_version(version: str) -> None:
    result = {**broken("ips.0.version", ...), "cniVersion": version}
    assert cni.validate_result(result, version) == [
        f"ips[0].version must be '4' or '6' in {version}"
    ]
    six = {**broken("ips.0.version", "6"), "cniVersion": version}
    assert cni.validate_result(six, version) == []


def test_1x_results_have_no_ip_version() -> None:
    result = {**RESULT, "cniVersion": "1.0.0"}
    assert cni.validate_result(result, "1.0.0") == ["ips[0].version was removed in 1.0.0"]
    assert (
        cni.validate_result({**broken("ips.0.version", ...), "cniVersion": "1.1.0"}, "1.1.0") == []
    )


def test_a_result_of_another_version_than_asked() -> None:
    assert cni.validate_result(RESULT, "0.3.1") == ["cniVersion is '0.4.0', config asked '0.3.1'"]


def test_routes_may_be_absent_or_empty_but_not_another_type() -> None:
    assert cni.validate_result(broken("routes", ...), "0.4.0") == []
    assert cni.validate_result(broken("routes", []), "0.4.0") == []
    assert cni.validate_result(broken("routes", "x"), "0.4.0") == ["routes: not a list"]


def test_a_plugin_error_reads_code_message_and_details() -> None:
    assert cni.parse_error('{"code": 7, "msg": "m", "details": "d"}') == cni.CniError(7, "m", "d")
    assert cni.parse_error('{"code": 7, "msg": "m"}') == cni.CniError(7, "m", "")
    for not_an_error in ('{"msg": "m"}', '{"code": "7", "msg": "m"}', '{"code": 7}', "[1]", "x"):
        assert cni.parse_error(not_an_error) is None


def test_a_result_reads_its_version_interfaces_and_ips_defaulting_to_empty() -> None:
    full = cni.parse_result(json.dumps(RESULT))
    assert (full.cni_version, full.interfaces, full.ips, full.raw) == (
        "0.4.0",
        tuple(RESULT["interfaces"]),
        tuple(RESULT["ips"]),
        RESULT,
    )
    assert cni.parse_result("{}") == cni.CniResult("", (), (), {})
    with pytest.raises(ValueError, match=r"^CNI result is not a JSON object$"):
        cni.parse_result("[]")


def test_an_invocation_sends_its_config_with_sorted_keys_and_refuses_a_bad_id() -> None:
    conflist = {"name": "n", "cniVersion": "0.4.0", "plugins": [{"type": "bridge", "b": 1, "a": 2}]}
    call = cni.invocation("ADD", conflist, 0, "c1", "/ns", "eth0", "/bin", None)
    assert call.stdin == '{"a": 2, "b": 1, "cniVersion": "0.4.0", "name": "n", "type": "bridge"}'
    with pytest.raises(ValueError, match=r"^container id 'a b' is not valid for CNI$"):
        cni.invocation("ADD", conflist, 0, "a b", "/ns", "eth0", "/bin", None)


def test_the_flannel_subnet_env_gives_the_node_subnet() -> None:
    text = "FLANNEL_NETWORK=10.244.0.0/16\n FLANNEL_SUBNET = 10.244.1.1/24\nFLANNEL_MTU=1450\n"
    assert cni.parse_flannel_subnet_env(text) == (IPv4Network("10.244.1.0/24"),)
    assert cni.parse_flannel_subnet_env("FLANNEL_MTU=1450\n") == ()
