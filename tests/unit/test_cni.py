"""The runtime side of the CNI contract, and result/error validation (pure)."""

from __future__ import annotations

import json
from ipaddress import IPv4Network

from lab.net import cni

CONFLIST = {
    "cniVersion": "0.4.0",
    "name": "netlab",
    "plugins": [
        {
            "type": "bridge",
            "bridge": "cni0",
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.244.0.0/24", "gateway": "10.244.0.1"}]],
                "dataDir": "/var/lib/cni/networks",
            },
        },
        {"type": "portmap", "capabilities": {"portMappings": True}},
    ],
}
# An ADD result as the bridge plugin prints it (cniVersion 0.4.0); replaced by a capture below.
ADD_RESULT = {
    "cniVersion": "0.4.0",
    "interfaces": [
        {"name": "cni0", "mac": "8a:3c:5b:0e:41:7d"},
        {"name": "veth4f2a1c3b", "mac": "b6:0e:9c:22:51:aa"},
        {"name": "eth0", "mac": "3a:91:c4:7e:02:19", "sandbox": "/var/run/netns/nl-r1-a"},
    ],
    "ips": [{"version": "4", "interface": 2, "address": "10.244.0.2/24", "gateway": "10.244.0.1"}],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {},
}


def test_add_chains_prev_result_and_sets_the_environment() -> None:
    first = cni.invocation(
        "ADD", CONFLIST, 0, "nl-r1-a", "/var/run/netns/nl-r1-a", "eth0", "/usr/lib/cni", None
    )
    second = cni.invocation(
        "ADD", CONFLIST, 1, "nl-r1-a", "/var/run/netns/nl-r1-a", "eth0", "/usr/lib/cni", ADD_RESULT
    )
    assert first.plugin == "bridge"
    assert dict(first.env) == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "nl-r1-a",
        "CNI_NETNS": "/var/run/netns/nl-r1-a",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/usr/lib/cni",
    }
    conf0, conf1 = json.loads(first.stdin), json.loads(second.stdin)
    assert conf0["name"] == conf1["name"] == "netlab"
    assert conf0["cniVersion"] == "0.4.0"
    assert "prevResult" not in conf0
    assert conf1["prevResult"] == ADD_RESULT
    assert second.argv("/usr/lib/cni")[-1] == "/usr/lib/cni/portmap"
    assert second.argv("/usr/lib/cni")[:2] == ("env", "CNI_COMMAND=ADD")


def test_del_runs_the_plugins_in_reverse_order() -> None:
    assert cni.plugin_order(CONFLIST, "ADD") == [0, 1]
    assert cni.plugin_order(CONFLIST, "CHECK") == [0, 1]
    assert cni.plugin_order(CONFLIST, "DEL") == [1, 0]


def test_a_valid_result_has_no_problems_and_yields_the_sandbox_address() -> None:
    assert cni.validate_result(ADD_RESULT, "0.4.0", IPv4Network("10.244.0.0/24")) == []
    result = cni.parse_result(json.dumps(ADD_RESULT))
    assert [str(a) for a in result.sandbox_addresses] == ["10.244.0.2/24"]
    odd = {**ADD_RESULT, "ips": [{**ip, "interface": 9} for ip in ADD_RESULT["ips"]]}
    assert cni.parse_result(json.dumps(odd)).sandbox_addresses == ()
    empty = [{**i, "sandbox": ""} if i.get("sandbox") else i for i in ADD_RESULT["interfaces"]]
    assert cni.parse_result(json.dumps({**ADD_RESULT, "interfaces": empty})).sandbox_addresses == ()
    assert result.host_interfaces == ("cni0", "veth4f2a1c3b")


def test_broken_results_are_named() -> None:
    broken = json.loads(json.dumps(ADD_RESULT))
    broken["cniVersion"] = "0.3.1"
    broken["ips"][0].update(address="10.244.9.2/24", gateway="10.244.8.1", interface=7)
    del broken["ips"][0]["version"]
    problems = cni.validate_result(broken, "0.4.0", IPv4Network("10.244.0.0/24"))
    assert any("cniVersion is '0.3.1'" in p for p in problems)
    assert any("version must be '4' or '6'" in p for p in problems)
    assert any("gateway 10.244.8.1 is outside 10.244.9.0/24" in p for p in problems)
    assert any("interface 7 does not index interfaces" in p for p in problems)
    assert any("outside the node subnet 10.244.0.0/24" in p for p in problems)
    assert cni.validate_result({"cniVersion": "1.0.0"}, "1.0.0") == [
        "interfaces: missing or empty",
        "ips: missing or empty",
    ]


def test_result_entries_that_are_not_objects_are_named_not_a_crash() -> None:
    broken = json.loads(json.dumps(ADD_RESULT))
    broken["interfaces"].append("eth9")
    broken["ips"].insert(0, "10.244.0.9/24")
    broken["routes"] = [None]
    assert cni.validate_result(broken, "0.4.0", IPv4Network("10.244.0.0/24")) == [
        f"interfaces[{len(ADD_RESULT['interfaces'])}] 'eth9' is not an object",
        "ips[0] '10.244.0.9/24' is not an object",
        "routes[0] None is not an object",
    ]
    assert cni.validate_result({**ADD_RESULT, "routes": {}}, "0.4.0") == []
    assert cni.validate_result({**ADD_RESULT, "routes": "0.0.0.0/0"}, "0.4.0") == [
        "routes: not a list"
    ]


def test_error_json_is_recognised() -> None:
    err = cni.parse_error('{"code": 999, "msg": "no IP ranges specified"}')
    assert err == cni.CniError(999, "no IP ranges specified")
    assert cni.parse_error(json.dumps(ADD_RESULT)) is None
    assert cni.parse_error("panic: runtime error") is None


def test_node_subnets_from_a_conflist_and_from_flannel() -> None:
    assert cni.node_subnets_from_conflist(CONFLIST) == (IPv4Network("10.244.0.0/24"),)
    env = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.2.1/24\nFLANNEL_MTU=1450\n"
    assert cni.parse_flannel_subnet_env(env) == (IPv4Network("10.244.2.0/24"),)


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
