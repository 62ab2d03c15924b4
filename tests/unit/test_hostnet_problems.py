"""e2e/hostnet.py, exactly: iptables-save's edges, each match rule_matches knows (and its long
form), the walk's depth and RETURN, the sample packets the firewall and NAT judgements send,
the routes route_problems accepts and names, strict rp_filter read as the kernel reads it, the
conflist's missing and extra fields, host-local's ranges in malformed conflists, leases in any
order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e import hostnet
from lab.model.labfile import load_lab
from tests.unit.test_hostnet import FILTER, FLANNEL_MASQ, GUIDE, HOSTGW, VXLAN, healthy, problems

IP = hostnet.IPv4Address
OUT = hostnet.Packet(IP("10.244.1.2"), IP("10.244.0.2"), "tcp", 8080, "cni0", "eth1")


def rule(text: str) -> hostnet.Rule:
    return hostnet.parse_iptables_save(f"*t\n:C - [0:0]\n-A C {text}\nCOMMIT\n")["t"].rules["C"][0]


def matches(text: str, packet: hostnet.Packet = OUT) -> bool | None:
    return hostnet.rule_matches(rule(text), packet)


# --- iptables-save -----------------------------------------------------------------------------


def test_lines_outside_a_table_make_no_table_even_a_stray_commit() -> None:
    text = (
        ":INPUT DROP [0:0]\nCOMMIT\n"
        "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n"
        "-A INPUT -j DROP\nCOMMIT\n"
    )
    tables = hostnet.parse_iptables_save(text)
    assert tables == {"filter": hostnet.Table({"INPUT": "ACCEPT"}, {"INPUT": ()})}


def test_a_chain_line_without_counters_and_a_rule_of_an_undeclared_chain_are_kept() -> None:
    # iptables-restore files often leave the counters out; a rule may come before (or without)
    # its chain's line
    text = "*filter\n:FORWARD DROP\n:EMPTY -\n-A LATE -j ACCEPT\nCOMMIT\n"
    filt = hostnet.parse_iptables_save(text)["filter"]
    assert filt.policies == {"FORWARD": "DROP"}
    assert filt.rules == {
        "FORWARD": (),
        "EMPTY": (),
        "LATE": (hostnet.Rule("LATE", ("-j", "ACCEPT"), "-A LATE -j ACCEPT"),),
    }


# --- rule_matches --------------------------------------------------------------------------------


def test_each_address_protocol_and_port_match_in_its_short_and_long_form() -> None:
    for short, long in (("-s", "--source"), ("-d", "--destination")):
        assert matches(f"{short} 10.244.0.0/16 -j X") is True
        assert matches(f"{long} 10.244.0.0/16 -j X") is True
    assert matches("-s 10.244.0.0/24 -j X") is False
    assert matches("--source 10.244.0.0/24 -j X") is False
    assert matches("--destination 10.244.1.0/24 -j X") is False
    assert matches("-p tcp -j X") is True
    assert matches("--protocol tcp -j X") is True
    assert matches("--protocol udp -j X") is False
    assert matches("-p all -j X") is True
    assert matches("-p icmp -j X") is False
    assert matches("-p tcp -m tcp --dport 8080 -j X") is True
    assert matches("-p tcp -m tcp --destination-port 8080 -j X") is True
    assert matches("-p tcp -m tcp --destination-port 8081 -j X") is False


def test_an_address_with_host_bits_is_read_as_its_network_and_a_bad_one_matches_nothing() -> None:
    assert matches("-s 10.244.1.1/24 -j X") is True
    assert matches("-s 10.244.1.200/25 -j X") is False
    assert matches("-s bogus -j X") is False
    assert matches("! -s bogus -j X") is True


def test_interfaces_match_by_either_form_and_in_and_out_are_not_confused() -> None:
    assert matches("-i cni0 -j X") is True
    assert matches("--in-interface cni+ -j X") is True
    assert matches("-i eth1 -j X") is False
    assert matches("--out-interface eth1 -j X") is True
    assert matches("-o cni0 -j X") is False
    assert matches("--out-interface cni0 -j X") is False
    no_in = hostnet.Packet(OUT.src, OUT.dst, "tcp", 8080, "", "eth1")
    assert matches("-i cni0 -j X", no_in) is None  # the packet has no in-interface here


def test_conntrack_states_are_judged_for_a_new_flow() -> None:
    assert matches("-m conntrack --ctstate NEW -j X") is True
    assert matches("-m conntrack --ctstate NEW,ESTABLISHED -j X") is True
    assert matches("-m conntrack --ctstate RELATED,ESTABLISHED -j X") is False
    assert matches("-m conntrack ! --ctstate RELATED,ESTABLISHED -j X") is True


def test_address_types_say_not_local_and_otherwise_cannot_judge() -> None:
    assert matches("-m addrtype --dst-type LOCAL -j X") is False
    assert matches("-m addrtype --src-type LOCAL -j X") is False
    assert matches("-m addrtype ! --src-type LOCAL -j X") is True
    assert matches("-m addrtype --dst-type UNICAST -j X") is None
    assert matches("-m addrtype --src-type UNICAST -j X") is None


def test_a_mark_with_an_unreadable_mask_matches_nothing_even_a_zero_mark() -> None:
    assert hostnet._mark_match("0x0/0x4000") is True
    assert hostnet._mark_match("0x0/zz") is False
    assert matches("-m mark --mark 0x0/zz -j X") is False


def test_every_target_option_ends_the_matches_in_each_form() -> None:
    # what follows the target are its own options (here ones the model does not know)
    for target in ("-j", "--jump", "-g", "--goto"):
        assert matches(f"-s 10.244.1.0/24 {target} KUBE-X --unknown-option 1") is True, target


def test_an_option_lacking_its_argument_at_the_end_of_a_rule_is_judged_without_one() -> None:
    # a counting rule (no target) whose last word is an option: no IndexError, no match
    assert matches("-m physdev --physdev-is-bridged") is None
    assert matches("-p tcp -s") is False
    assert matches("-p tcp --dport") is False
    assert matches("-p tcp -m mark --mark") is False
    assert matches("-p tcp -m comment --comment") is True


# --- verdict -------------------------------------------------------------------------------------


def table(text: str) -> hostnet.Table:
    return hostnet.parse_iptables_save(f"*filter\n{text}COMMIT\n")["filter"]


def test_return_in_a_builtin_chain_leaves_it_to_the_policy_and_in_a_user_chain_goes_back() -> None:
    builtin = table(":FORWARD DROP [0:0]\n-A FORWARD -j RETURN\n-A FORWARD -j ACCEPT\n")
    assert hostnet.verdict(builtin, "FORWARD", OUT) == hostnet.Verdict("DROP", None)
    user = table(
        ":FORWARD ACCEPT [0:0]\n:MINE - [0:0]\n"
        "-A FORWARD -j MINE\n-A FORWARD -j DROP\n-A MINE -j RETURN\n"
    )
    assert hostnet.verdict(user, "FORWARD", OUT) == hostnet.Verdict(
        "DROP", hostnet.Rule("FORWARD", ("-j", "DROP"), "-A FORWARD -j DROP")
    )


def test_a_chain_without_policy_or_rules_lets_the_packet_through() -> None:
    filt = table(":FORWARD DROP [0:0]\n:MINE - [0:0]\n-A MINE -p udp -j DROP\n")
    assert hostnet.verdict(filt, "MINE", OUT) == hostnet.Verdict("ACCEPT", None)
    assert hostnet.verdict(filt, "INPUT", OUT) == hostnet.Verdict("ACCEPT", None)
    assert hostnet.verdict(table(""), "FORWARD", OUT) == hostnet.Verdict("ACCEPT", None)


def nested(depth: int) -> hostnet.Table:
    """FORWARD jumps to C1, C1 to C2, ... and C`depth` drops."""
    lines = [":FORWARD ACCEPT [0:0]"] + [f":C{k} - [0:0]" for k in range(1, depth + 1)]
    lines += ["-A FORWARD -j C1"] + [f"-A C{k} -j C{k + 1}" for k in range(1, depth)]
    lines.append(f"-A C{depth} -j DROP")
    return table("\n".join(lines) + "\n")


def test_jumps_are_followed_sixteen_chains_deep_and_no_deeper() -> None:
    found = hostnet.verdict(nested(16), "FORWARD", OUT)
    assert found.target == "DROP"
    assert found.rule is not None
    assert found.rule.text == "-A C16 -j DROP"
    assert hostnet.verdict(nested(17), "FORWARD", OUT) == hostnet.Verdict("ACCEPT", None)
    # a loop ends at that depth too
    loop = table(
        ":FORWARD DROP [0:0]\n:A - [0:0]\n:B - [0:0]\n-A FORWARD -j A\n-A A -j B\n-A B -j A\n"
    )
    assert hostnet.verdict(loop, "FORWARD", OUT) == hostnet.Verdict("DROP", None)


# --- firewall ------------------------------------------------------------------------------------


def test_a_forward_rule_dropping_exactly_the_sample_flow_is_named_one_way() -> None:
    # every match of the rule must take the sample packet: its addresses, protocol, port and
    # both interfaces (the other direction differs in all of them)
    drop = (
        "-A FORWARD -s 10.244.1.0/24 -d 10.244.0.0/24 -i cni0 -o eth1 -p tcp -m tcp "
        "--dport 8080 -j DROP"
    )
    tables = hostnet.parse_iptables_save(FILTER.replace("COMMIT", drop + "\nCOMMIT", 1))
    assert problems(HOSTGW, tables=tables) == [
        f"iptables FORWARD drops pod traffic 10.244.1.2 -> 10.244.0.2 (cni0 -> eth1): rule `{drop}`"
    ]


def test_an_out_interface_cannot_judge_the_tunnels_packet_at_input() -> None:
    # a chain INPUT shares: the tunnel's packet has no out-interface there
    shared = ":SHARED - [0:0]\n-A INPUT -j SHARED\n-A SHARED ! -o cni0 -j DROP\nCOMMIT"
    tables = hostnet.parse_iptables_save(FILTER.replace("COMMIT", shared, 1) + FLANNEL_MASQ)
    assert (
        list(hostnet.firewall_problems(VXLAN, VXLAN.node("node2"), healthy(VXLAN, tables=tables)))
        == []
    )


def test_no_firewall_judgement_without_the_filter_table_or_planned_subnets() -> None:
    assert (
        list(hostnet.firewall_problems(HOSTGW, HOSTGW.node("node2"), healthy(HOSTGW, tables={})))
        == []
    )
    dropping = hostnet.parse_iptables_save(FILTER.replace(":FORWARD ACCEPT", ":FORWARD DROP"))
    node = GUIDE.nodes[-1]
    assert list(hostnet.firewall_problems(GUIDE, node, healthy(HOSTGW, tables=dropping))) == []
    assert (
        list(hostnet.nat_problems(HOSTGW, HOSTGW.node("node2"), healthy(HOSTGW, tables={}))) == []
    )


# --- nat -----------------------------------------------------------------------------------------


def nat_with(*rules: str) -> dict[str, hostnet.Table]:
    nat = "*nat\n:POSTROUTING ACCEPT [0:0]\n" + "".join(f"{r}\n" for r in rules) + "COMMIT\n"
    return hostnet.parse_iptables_save(FILTER + nat)


def test_masquerading_onto_the_bridge_names_two_pods_of_that_bridge() -> None:
    rule = "-A POSTROUTING -o cni0 -j MASQUERADE"
    assert problems(HOSTGW, tables=nat_with(rule)) == [
        f"nat rule `{rule}` translates {proto} pod traffic 10.244.1.2 -> 10.244.1.3: a pod must "
        "see another pod's own address (no NAT between pods)"
        for proto in ("tcp", "udp")
    ]


def test_a_hairpin_masquerade_of_a_pod_to_itself_is_no_nat_between_pods() -> None:
    assert (
        problems(
            HOSTGW,
            tables=nat_with("-A POSTROUTING -s 10.244.1.2/32 -d 10.244.1.2/32 -j MASQUERADE"),
        )
        == []
    )


def test_a_port_bound_snat_to_another_node_is_named() -> None:
    rule = "-A POSTROUTING -o eth1 -p tcp -m tcp --dport 8080 -j SNAT --to-source 10.10.40.242"
    assert problems(HOSTGW, tables=nat_with(rule)) == [
        f"nat rule `{rule}` translates tcp pod traffic 10.244.1.2 -> 10.244.0.2: a pod must see "
        "another pod's own address (no NAT between pods)"
    ]


def test_an_in_interface_cannot_judge_the_packet_at_postrouting() -> None:
    tables = nat_with(
        ":SHARED - [0:0]", "-A POSTROUTING -j SHARED", "-A SHARED ! -i eth1 -j MASQUERADE"
    )
    assert problems(HOSTGW, tables=tables) == []


# --- routes --------------------------------------------------------------------------------------


def route_problems(lab: object, *extra: str, **changes: object) -> list[str]:
    state = healthy(lab, **changes)
    state = hostnet.NodeState(**{**state.__dict__, "routes": (*state.routes, *extra)})
    return list(hostnet.route_problems(lab, lab.node("node2"), state))  # type: ignore[arg-type,attr-defined]


def test_a_route_with_its_gateway_last_is_read() -> None:
    line = "10.244.0.0/24 via 10.10.40.241"
    assert hostnet.parse_route(line) == hostnet.Route("10.244.0.0/24", "10.10.40.241", None, line)


def test_a_route_destination_with_host_bits_is_read_as_its_network() -> None:
    state = healthy(HOSTGW, routes=("10.244.0.1/24 via 10.10.40.241 dev eth1",))
    ((net, _),) = hostnet._pod_routes(HOSTGW, state)
    assert net == hostnet.IPv4Network("10.244.0.0/24")


def test_a_route_sending_the_nodes_own_subnet_to_a_peer_is_named() -> None:
    wrong = "10.244.1.0/24 via 10.10.40.241 dev eth1"
    assert route_problems(HOSTGW, wrong) == [
        f"route `{wrong}` sends 10.244.1.0/24 to node1, which holds 10.244.0.0/24"
    ]


def test_a_route_to_part_of_a_peers_subnet_via_that_peer_is_fine() -> None:
    assert route_problems(HOSTGW, "10.244.0.128/25 via 10.10.40.241 dev eth1") == []


def test_a_route_on_the_bridge_or_the_nic_without_a_gateway_is_no_nodes() -> None:
    bridge, wide = "10.244.0.0/24 dev cni0 scope link", "10.244.0.0/16 dev eth1 scope link"
    assert route_problems(HOSTGW, bridge, wide) == [
        f"route `{r}` leads into the pod CIDR via {dev}, which is no node of the lab (a stale "
        "route of a deleted node? flannel-io/flannel#2554)"
        for r, dev in ((bridge, "cni0"), (wide, "eth1"))
    ]


def test_flannels_own_cidr_route_on_its_device_is_passed_and_the_next_route_still_judged() -> None:
    stale = "10.244.5.0/24 via 10.244.5.0 dev flannel.1 onlink"
    assert route_problems(VXLAN, "10.244.0.0/16 dev flannel.1") == []
    assert route_problems(VXLAN, "10.244.0.0/16 dev flannel.1", stale) == [
        f"route `{stale}` leads into the pod CIDR via 10.244.5.0, which is no node of the lab "
        "(a stale route of a deleted node? flannel-io/flannel#2554)"
    ]
    # only the whole CIDR, only on flannel.1, only without a gateway
    for odd in (
        "10.244.0.0/24 dev flannel.1",
        "10.244.0.0/16 dev eth1",
        "10.244.0.0/16 via 10.244.9.0 dev flannel.1",
    ):
        (found,) = route_problems(VXLAN, odd)
        assert found.startswith(f"route `{odd}` leads into the pod CIDR via "), odd


ASYMMETRIC = (
    "10.244.1.0/24 dev cni0 proto kernel scope link src 10.244.1.1",
    "10.244.0.0/24 via 192.168.130.11 dev eth0",
)


def strict_rpf(rp_filter: dict[str, int], routes: tuple[str, ...] = ASYMMETRIC) -> list[str]:
    state = healthy(HOSTGW, routes=routes, rp_filter=rp_filter)
    return [
        p for p in hostnet.route_problems(HOSTGW, HOSTGW.node("node2"), state) if "rp_filter" in p
    ]


@pytest.mark.parametrize(
    ("rp_filter", "strict"),
    [
        ({"all": 1, "eth1": 0}, True),  # the kernel takes the larger of all and the device
        ({"all": 0, "eth1": 1}, True),
        ({"all": 1}, True),  # the device's unread
        ({"eth1": 1}, True),  # all's unread
        ({"all": 1, "eth1": 2}, False),  # loose wins
        ({}, False),  # nothing read: nothing judged
        ({"all": 0, "eth1": 0}, False),
    ],
)
def test_strict_rp_filter_is_the_larger_of_all_and_the_arrival_device(
    rp_filter: dict[str, int], strict: bool
) -> None:
    assert strict_rpf(rp_filter) == (
        [
            "strict rp_filter (net.ipv4.conf.*.rp_filter = 1) and the route back to node1's pods "
            f"leaves by eth0 (`{ASYMMETRIC[1]}`): their packets arrive on eth1 and fail the "
            "reverse-path check"
        ]
        if strict
        else []
    )


def test_strict_rp_filter_with_the_routes_back_on_the_arrival_device_is_fine() -> None:
    assert strict_rpf({"all": 1, "eth1": 1}, healthy(HOSTGW).routes) == []
    assert (
        strict_rpf({"all": 1, "eth1": 1}, ASYMMETRIC[:1]) == []
    )  # no route back at all: said apart


# --- the conflist --------------------------------------------------------------------------------


def test_a_missing_field_and_an_extra_one_are_named_absent_on_their_side() -> None:
    conf = json.loads(healthy(HOSTGW).conflist or "")
    del conf["plugins"][0]["hairpinMode"]
    conf["plugins"][0]["promiscMode"] = None
    assert problems(HOSTGW, conflist=json.dumps(conf)) == [
        "/etc/cni/net.d/10-netlab.conflist: plugins[0].hairpinMode = (absent); the lab "
        "renders true",
        "/etc/cni/net.d/10-netlab.conflist: plugins[0].promiscMode = null; the lab renders "
        "(absent)",
    ]


def test_a_field_whose_value_is_the_word_absent_is_a_value_not_a_missing_field() -> None:
    conf = json.loads(healthy(HOSTGW).conflist or "")
    conf["plugins"][0]["hairpinMode"] = "(absent)"
    conf["plugins"][0]["note"] = "(absent)"
    assert problems(HOSTGW, conflist=json.dumps(conf)) == [
        '/etc/cni/net.d/10-netlab.conflist: plugins[0].hairpinMode = "(absent)"; the lab '
        "renders true",
        '/etc/cni/net.d/10-netlab.conflist: plugins[0].note = "(absent)"; the lab renders (absent)',
    ]


def ranges(*entries: object) -> dict[str, object]:
    return {
        "plugins": [{"type": "bridge", "ipam": {"type": "host-local", "ranges": [list(entries)]}}]
    }


def test_a_range_outside_the_pod_cidr_is_named_in_full_after_an_unreadable_one() -> None:
    node = HOSTGW.node("node2")
    assert list(
        hostnet.range_problems(
            HOSTGW,
            node,
            ranges({"subnet": "bogus"}, {"rangeStart": "x"}, {"subnet": "10.245.0.1/24"}),
        )
    ) == [
        "node2 hands out 10.245.0.0/24, outside the cluster pod CIDR 10.244.0.0/16 (flannel's "
        "Network): no other node routes to it (flannel-io/flannel#1428)"
    ]


@pytest.mark.parametrize(
    "conflist", [[], "bridge", {"plugins": None}, {"plugins": 5}, {"plugins": ["bridge", 5]}]
)
def test_a_conflist_of_another_shape_has_no_range_to_judge(conflist: object) -> None:
    assert list(hostnet.range_problems(HOSTGW, HOSTGW.node("node2"), conflist)) == []


@pytest.mark.parametrize("ipam", [None, "host-local", {"ranges": 5}, {"ranges": {"a": 1}}])
def test_an_ipam_of_another_shape_is_a_field_difference_not_a_crash(ipam: object) -> None:
    # it used to raise (None.get, iterating 5) and take the node's whole judgement with it
    conf = json.loads(healthy(HOSTGW).conflist or "")
    conf["plugins"][0]["ipam"] = ipam
    assert list(hostnet.range_problems(HOSTGW, HOSTGW.node("node2"), conf)) == []
    found = problems(HOSTGW, conflist=json.dumps(conf))
    assert found
    assert all(p.startswith("/etc/cni/net.d/10-netlab.conflist: plugins[0].ipam") for p in found)


# --- leases and the one-node lab -----------------------------------------------------------------


def test_leases_are_counted_whatever_the_listings_order() -> None:
    leases = ("lock", "last_reserved_ip.0", *(f"10.244.1.{i}" for i in range(2, 255)))
    (p,) = hostnet.lease_problems(HOSTGW, HOSTGW.node("node2"), healthy(HOSTGW, leases=leases))
    assert p.startswith("host-local has 253 of the 253 addresses of 10.244.1.0/24 reserved")


def test_a_one_node_lab_writes_its_own_conflist(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    text = (root / "labs" / "ci-debian12.yaml").read_text()
    one = text.replace("  - {name: node2, ip: 10.10.40.242}\n", "")
    assert one != text
    (tmp_path / "one.yaml").write_text(one)
    lab = load_lab(tmp_path / "one.yaml")
    assert [n.name for n in lab.nodes] == ["node1"]
    assert hostnet.conflist_of(lab)
    assert hostnet.probe_commands(lab)[6].argv == ("cat", "/etc/cni/net.d/10-netlab.conflist")
