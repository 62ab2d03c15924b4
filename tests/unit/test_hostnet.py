"""e2e/hostnet.py: a node's pod-network state judged against the lab file. A healthy node of
either CI lab has no problem; each breakage of the catalogue, written as the node would show
it, is one problem that names its setting."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from e2e import hostnet
from lab.common.commands import Output
from lab.model.labfile import load_lab
from lab.podnet.bridge import render_cni_conflist_text

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "breakages"
HOSTGW = load_lab(ROOT / "labs" / "ci-debian12.yaml")
VXLAN = load_lab(ROOT / "labs" / "ci-debian12-vxlan.yaml")

FLANNEL_MASQ = (DATA / "nat-flannel-masq.txt").read_text()

FILTER = (DATA / "filter-kube-forward.txt").read_text()


def healthy(lab: object, node: str = "node2", **changes: object) -> hostnet.NodeState:
    assert lab is HOSTGW or lab is VXLAN
    n = lab.node(node)  # type: ignore[attr-defined]
    dev = hostnet.arrival_device(lab)  # type: ignore[arg-type]
    if lab is HOSTGW:
        routes = (
            "default via 192.168.130.1 dev eth0",
            "10.244.0.0/24 via 10.10.40.241 dev eth1 proto static",
            "10.244.1.0/24 dev cni0 proto kernel scope link src 10.244.1.1",
        )
        nat = FLANNEL_MASQ.split("-A POSTROUTING -s 10.244", maxsplit=1)[0] + "COMMIT\n"
    else:
        routes = (
            "default via 192.168.124.1 dev eth0",
            "10.244.0.0/24 via 10.244.0.0 dev flannel.1 onlink",
            "10.244.1.0/24 dev cni0 proto kernel scope link src 10.244.1.1",
        )
        nat = FLANNEL_MASQ
    state = hostnet.NodeState(
        ip_forward="1",
        bridge_nf_call_iptables="1",
        rp_filter={"all": 2, dev: 2},
        tables=hostnet.parse_iptables_save(FILTER + nat),
        routes=routes,
        nic_mtu=1500,
        conflist=render_cni_conflist_text(lab, n, 1500),  # type: ignore[arg-type]
        leases=("10.244.1.2", "10.244.1.3", "last_reserved_ip.0", "lock"),
    )
    return hostnet.NodeState(**{**state.__dict__, **changes})


@pytest.mark.parametrize("lab", [HOSTGW, VXLAN], ids=["host-gw", "vxlan"])
def test_a_healthy_node_has_no_problem(lab: object) -> None:
    for node in ("node1", "node2"):
        state = healthy(lab, "node2")
        if node == "node1":
            continue
        assert hostnet.node_problems(lab, lab.node(node), state) == []  # type: ignore[arg-type,attr-defined]


def problems(lab: object, **changes: object) -> list[str]:
    return hostnet.node_problems(lab, lab.node("node2"), healthy(lab, **changes))  # type: ignore[arg-type,attr-defined]


def test_ip_forward_and_bridge_netfilter_are_named() -> None:
    assert problems(HOSTGW, ip_forward="0") == [
        "net.ipv4.ip_forward = 0: the node does not forward pod packets (the guide's step 4, "
        "开启路由转发, sets it to 1)"
    ]
    (p,) = problems(HOSTGW, bridge_nf_call_iptables=None)
    assert p.startswith("br_netfilter is not loaded")
    (p,) = problems(HOSTGW, bridge_nf_call_iptables="0")
    assert p.startswith("net.bridge.bridge-nf-call-iptables = 0: ")


def test_forward_policy_drop_is_named_with_the_packet_it_drops() -> None:
    tables = hostnet.parse_iptables_save(FILTER.replace(":FORWARD ACCEPT", ":FORWARD DROP"))
    found = problems(HOSTGW, tables=tables)
    assert found[0] == (
        "iptables FORWARD drops pod traffic 10.244.1.2 -> 10.244.0.2 (cni0 -> eth1): the FORWARD "
        "chain's policy DROP (Docker >= 1.13 sets it; flannel since v0.10 accepts its Network's "
        "traffic: kubernetes#40182)"
    )
    assert len(found) == 2  # both ways


def test_flannels_forward_accept_rules_keep_a_drop_policy_harmless() -> None:
    accepting = FILTER.replace(":FORWARD ACCEPT", ":FORWARD DROP").replace(
        "COMMIT",
        "-A FORWARD -s 10.244.0.0/16 -j ACCEPT\n-A FORWARD -d 10.244.0.0/16 -j ACCEPT\nCOMMIT",
    )
    assert problems(HOSTGW, tables=hostnet.parse_iptables_save(accepting)) == []


@pytest.mark.parametrize(
    "rule",
    [
        "-A INPUT -s 10.10.20.241/32 -p udp -m udp --dport 8472 -j DROP",
        # exactly the tunnel's packets: its source, destination and in-interface
        "-A INPUT -s 10.10.20.241/32 -d 10.10.20.242/32 -i eth1 -p udp -m udp --dport 8472 -j DROP",
    ],
)
def test_a_dropped_tunnel_port_is_named_on_tunnel_labs_only(rule: str) -> None:
    tables = hostnet.parse_iptables_save(
        FILTER.replace("COMMIT", rule + "\nCOMMIT", 1) + FLANNEL_MASQ
    )
    assert problems(VXLAN, tables=tables) == [
        f"iptables INPUT drops the tunnel's UDP 8472 from node1 (10.10.20.241): rule `{rule}` "
        "(flannel's vxlan backend needs UDP 8472 between all nodes)"
    ]


def test_a_udp_only_masquerade_is_named_and_tcp_is_not() -> None:
    rule = "-A POSTROUTING -s 10.244.1.0/24 ! -d 10.244.1.0/24 -p udp -j MASQUERADE"
    tables = hostnet.parse_iptables_save(
        FILTER
        + FLANNEL_MASQ.replace(
            '-A POSTROUTING -m comment --comment "kubernetes',
            rule + '\n-A POSTROUTING -m comment --comment "kubernetes',
            1,
        )
    )
    assert problems(VXLAN, tables=tables) == [
        f"nat rule `{rule}` translates udp pod traffic 10.244.1.2 -> 10.244.0.2: a pod must see "
        "another pod's own address (no NAT between pods)"
    ]


def test_a_cni_masquerade_chain_is_followed() -> None:
    nat = (
        "*nat\n:POSTROUTING ACCEPT [0:0]\n:CNI-abc - [0:0]\n"
        '-A POSTROUTING -s 10.244.1.2/32 -m comment --comment "name: netlab" -j CNI-abc\n'
        "-A CNI-abc -d 10.244.1.0/24 -j ACCEPT\n-A CNI-abc ! -d 224.0.0.0/4 -j MASQUERADE\nCOMMIT\n"
    )
    tcp, udp = problems(HOSTGW, tables=hostnet.parse_iptables_save(FILTER + nat))
    assert "-A CNI-abc ! -d 224.0.0.0/4 -j MASQUERADE" in tcp
    assert "tcp pod traffic" in tcp
    assert "udp pod traffic" in udp


def test_an_unknown_match_never_invents_a_problem() -> None:
    rule = "-A POSTROUTING -m statistic --mode random --probability 0.5 -j MASQUERADE"
    nat = f"*nat\n:POSTROUTING ACCEPT [0:0]\n{rule}\nCOMMIT\n"
    assert problems(HOSTGW, tables=hostnet.parse_iptables_save(FILTER + nat)) == []


def test_routes_a_stale_one_a_missing_one_and_strict_rpf_against_an_asymmetric_one() -> None:
    stale = "10.244.1.0/25 via 10.10.40.254 dev eth1"
    routes = (*healthy(HOSTGW).routes, stale)
    assert problems(HOSTGW, routes=routes) == [
        f"route `{stale}` leads into the pod CIDR via 10.10.40.254, which is no node of the lab "
        "(a stale route of a deleted node? flannel-io/flannel#2554)"
    ]
    gone = tuple(r for r in healthy(HOSTGW).routes if "10.244.0.0" not in r)
    assert problems(HOSTGW, routes=gone) == [
        "no route to node1's pod subnet 10.244.0.0/24: its pods are unreachable"
    ]
    odd = "10.244.0.0/24 via 192.168.130.11 dev eth0"
    routes = (*gone, odd)
    found = problems(HOSTGW, routes=routes, rp_filter={"all": 1, "eth1": 1})
    assert found[-1] == (
        "strict rp_filter (net.ipv4.conf.*.rp_filter = 1) and the route back to node1's pods "
        f"leaves by eth0 (`{odd}`): their packets arrive on eth1 and fail the reverse-path check"
    )
    assert not any("rp_filter" in p for p in problems(HOSTGW, routes=routes))


def test_on_a_routed_underlay_bgps_routes_via_the_router_are_the_backends_own() -> None:
    lab = load_lab(ROOT / "labs" / "ci-debian12-routed-bgp.yaml")
    node = lab.node("node2")
    learned = "10.244.0.0/24 via 10.10.53.254 dev eth1 proto bird metric 32"
    state = hostnet.NodeState(
        ip_forward="1",
        bridge_nf_call_iptables="1",
        rp_filter={"all": 2, "eth1": 2},
        tables=hostnet.parse_iptables_save(
            FILTER + FLANNEL_MASQ.split("-A POSTROUTING -s 10.244", maxsplit=1)[0] + "COMMIT\n"
        ),
        routes=(learned, "10.244.1.0/24 dev cni0 proto kernel scope link src 10.244.1.1"),
        nic_mtu=1500,
        conflist=render_cni_conflist_text(lab, node, 1500),
        leases=("10.244.1.2", "last_reserved_ip.0", "lock"),
    )
    assert list(hostnet.route_problems(lab, node, state)) == []
    elsewhere = "10.244.0.0/24 via 10.10.53.9 dev eth1 proto bird metric 32"
    assert list(
        hostnet.route_problems(
            lab, node, dataclasses.replace(state, routes=(elsewhere, *state.routes[1:]))
        )
    ) == [
        f"route `{elsewhere}` leads into the pod CIDR via 10.10.53.9, which is no node of the "
        "lab (a stale route of a deleted node? flannel-io/flannel#2554)"
    ]


def test_the_route_back_is_the_longest_matching_prefix_the_first_of_equals() -> None:
    routes = [
        (hostnet.IPv4Network(r.split()[0]), hostnet.parse_route(r))
        for r in (
            "10.244.0.0/16 dev flannel.1",
            "10.244.0.0/24 via 10.10.40.241 dev eth1",
            "10.244.0.0/24 via 192.168.130.11 dev eth0 metric 200",
            "10.244.1.0/24 dev cni0 proto kernel scope link src 10.244.1.1",
        )
    ]
    longest = hostnet._longest
    assert longest(routes, hostnet.IPv4Address("10.244.0.2")) == routes[1][1]
    assert longest(routes, hostnet.IPv4Address("10.244.2.2")) == routes[0][1]
    assert longest(routes, hostnet.IPv4Address("10.245.0.2")) is None


def test_the_conflist_is_compared_field_by_field() -> None:
    conf = json.loads(healthy(HOSTGW).conflist or "")
    conf["plugins"][0]["ipMasq"] = True
    conf["plugins"][0]["mtu"] = 1400
    found = problems(HOSTGW, conflist=json.dumps(conf))
    assert found == [
        "/etc/cni/net.d/10-netlab.conflist: plugins[0].ipMasq = true; the lab renders false",
        "/etc/cni/net.d/10-netlab.conflist: plugins[0].mtu = 1400; the lab renders 1500",
    ]


def test_an_exhausted_range_is_named() -> None:
    leases = tuple(f"10.244.1.{i}" for i in range(2, 255))
    (p,) = problems(HOSTGW, leases=leases)
    assert "253 of the 253 addresses of 10.244.1.0/24" in p
    assert "no IP addresses available in range set" in p
    assert problems(HOSTGW, leases=leases[1:]) == []


def test_parse_node_state_reads_the_probe_outputs_in_order() -> None:
    outs = [
        Output(0, "1\n"),
        Output(1, ""),
        Output(
            0, "/proc/sys/net/ipv4/conf/all/rp_filter:2\n/proc/sys/net/ipv4/conf/eth1/rp_filter:1\n"
        ),
        Output(0, FILTER),
        Output(0, "default via 1.2.3.4 dev eth0\n"),
        Output(0, "1500\n"),
        Output(0, "{}"),
        Output(2, ""),
        Output(0, "0\n"),
    ]
    state = hostnet.parse_node_state(outs, "eth1")
    assert state.ip_forward == "1"
    assert state.bridge_nf_call_iptables is None
    assert state.rp_filter == {"all": 2, "eth1": 1}
    assert state.tables["filter"].policies["FORWARD"] == "ACCEPT"
    assert state.routes == ("default via 1.2.3.4 dev eth0",)
    assert state.nic_mtu == 1500
    assert state.leases is None
    assert state.forwarding == ("eth1", "0")
    assert len(hostnet.probe_commands(HOSTGW)) == len(outs)


GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")


def test_the_probe_reads_each_setting_where_the_kernel_keeps_it_as_root() -> None:
    def argvs(lab: object) -> list[tuple[str, ...]]:
        commands = hostnet.probe_commands(lab)  # type: ignore[arg-type]
        assert all(c.sudo and c.stdin is None for c in commands)
        return [c.argv for c in commands]

    conf = "/proc/sys/net/ipv4/conf"
    assert argvs(HOSTGW) == [
        ("cat", "/proc/sys/net/ipv4/ip_forward"),
        ("cat", "/proc/sys/net/bridge/bridge-nf-call-iptables"),
        ("grep", "-H", ".", f"{conf}/all/rp_filter", f"{conf}/eth1/rp_filter"),
        ("iptables-save",),
        ("ip", "-4", "route", "show"),
        ("cat", "/sys/class/net/eth1/mtu"),
        ("cat", "/etc/cni/net.d/10-netlab.conflist"),
        ("ls", "-1", "/var/lib/cni/networks/netlab"),
        ("cat", f"{conf}/eth1/forwarding"),
    ]
    vx = argvs(VXLAN)
    assert vx[2] == ("grep", "-H", ".", f"{conf}/all/rp_filter", f"{conf}/flannel.1/rp_filter")
    assert vx[8] == ("cat", f"{conf}/flannel.1/forwarding")
    assert vx[:2] + vx[3:8] == argvs(HOSTGW)[:2] + argvs(HOSTGW)[3:8]
    # a lab whose CNI config the backend installs (flannel's own): nothing of ours to read
    guide = argvs(GUIDE)
    assert guide[6] == guide[7] == ("true",)
    assert hostnet.conflist_of(HOSTGW)
    assert hostnet.conflist_of(VXLAN)
    assert not hostnet.conflist_of(GUIDE)
    assert hostnet.rp_devices(HOSTGW) == ("all", "eth1")
    assert hostnet.rp_devices(VXLAN) == ("all", "flannel.1")


def probe_outputs(**changes: Output) -> list[Output]:
    order = ("fwd", "brnf", "rpf", "save", "routes", "mtu", "conf", "leases", "devfwd")
    outs = {
        "fwd": Output(0, "1\n"),
        "brnf": Output(0, "1\n"),
        "rpf": Output(0, "/proc/sys/net/ipv4/conf/all/rp_filter:0\n"),
        "save": Output(0, FILTER),
        "routes": Output(0, "default via 1.2.3.4 dev eth0\n"),
        "mtu": Output(0, "1500\n"),
        "conf": Output(0, "{}"),
        "leases": Output(0, "10.244.1.2\n"),
        "devfwd": Output(0, "1\n"),
    }
    return [changes.get(k, outs[k]) for k in order]


def test_parse_node_state_keeps_what_was_read_and_says_what_was_not() -> None:
    state = hostnet.parse_node_state(
        probe_outputs(
            rpf=Output(0, "/p/conf/all/rp_filter: 2 \nnot a path\n/p/conf/eth1/rp_filter:x\n:1\n"),
            routes=Output(0, "  a  \n\n b\n"),
            conf=Output(0, " \n"),
            leases=Output(0, " 10.244.1.2 \n10.244.1.3\n"),
            devfwd=Output(0, " 1 \n"),
        ),
        "eth1",
    )
    assert state.bridge_nf_call_iptables == "1"
    assert state.rp_filter == {"all": 2}
    assert state.routes == ("a", "b")
    assert state.conflist is None  # blank: as good as absent
    assert state.leases == ("10.244.1.2", "10.244.1.3")
    assert state.forwarding == ("eth1", "1")
    assert state.unread == ()
    assert state.tables.keys() == {"filter"}
    broken = hostnet.parse_node_state(
        probe_outputs(
            fwd=Output(1, "1\n"),
            save=Output(4, FILTER),
            routes=Output(2, "default via 1.2.3.4 dev eth0\n"),
            mtu=Output(0, "15x0\n"),
            conf=Output(1, "{}"),
            devfwd=Output(1, "1\n"),
        ),
        "eth1",
    )
    assert broken.ip_forward is None
    assert broken.tables == {}
    assert broken.routes == ("default via 1.2.3.4 dev eth0",)  # judged, and said unread
    assert broken.nic_mtu is None
    assert broken.conflist is None
    assert broken.forwarding is None
    assert broken.unread == ("iptables-save exited 4", "ip -4 route show exited 2")
    assert hostnet.parse_node_state(probe_outputs(), "").forwarding is None
    assert hostnet.parse_node_state(probe_outputs()).forwarding is None  # no device named
    assert hostnet.parse_node_state(probe_outputs(mtu=Output(1, "1500"))).nic_mtu is None
    assert hostnet.parse_node_state(probe_outputs(conf=Output(0, "{}"))).conflist == "{}"


def test_rp_filter_is_keyed_by_the_files_directory_and_valued_after_the_last_colon() -> None:
    # grep -H prints FILE:VALUE; the device is the directory holding rp_filter, however short
    # the path, and the value is what follows the file name's last colon
    state = hostnet.parse_node_state(
        probe_outputs(rpf=Output(0, "all/rp_filter:1\nconf/a:b/rp_filter:2\nrp_filter:0\n"))
    )
    assert state.rp_filter == {"all": 1, "a:b": 2}


def test_an_interface_matches_by_name_or_by_the_prefix_before_plus() -> None:
    match = hostnet._iface_match
    assert match("eth+", "eth1") is True
    assert match("eth+", "etx1") is False
    assert match("eth+", "enp1s0") is False
    assert match("cni0", "cni0") is True
    assert match("cni0", "cni1") is False
    assert match("eth+", "") is None  # the packet has no such interface: the rule cannot judge


def test_rule_matching_negation_marks_and_interfaces() -> None:
    packet = hostnet.Packet(
        hostnet.IPv4Address("10.244.0.2"),
        hostnet.IPv4Address("10.244.1.2"),
        "udp",
        53,
        "cni0",
        "eth1",
    )

    def rule(text):
        return hostnet.parse_iptables_save(f"*t\n:C - [0:0]\n-A C {text}\nCOMMIT\n")["t"].rules[
            "C"
        ][0]

    assert hostnet.rule_matches(rule("-s 10.244.0.0/24 -j X"), packet) is True
    assert hostnet.rule_matches(rule("! -s 10.244.0.0/24 -j X"), packet) is False
    assert hostnet.rule_matches(rule("-p tcp -j X"), packet) is False
    assert hostnet.rule_matches(rule("-o eth+ -j X"), packet) is True
    assert hostnet.rule_matches(rule("-m mark ! --mark 0x4000/0x4000 -j RETURN"), packet) is True
    assert hostnet.rule_matches(rule("-m addrtype ! --dst-type LOCAL -j X"), packet) is True
    assert hostnet.rule_matches(rule("-m physdev --physdev-is-bridged -j X"), packet) is None
    assert hostnet.rule_matches(rule("-d 10.244.1.0/24 -j X"), packet) is True
    assert hostnet.rule_matches(rule("-d 10.244.0.0/24 -j X"), packet) is False
    # a rule without a target (it only counts) matches when every match does
    assert hostnet.rule_matches(rule("-s 10.244.0.0/16 -p udp"), packet) is True


def test_an_interfaces_own_forwarding_switch_is_named() -> None:
    assert problems(VXLAN, forwarding=("flannel.1", "0")) == [
        "net.ipv4.conf.flannel.1.forwarding = 0: packets of other nodes' pods arriving on "
        "flannel.1 are not forwarded, though net.ipv4.ip_forward = 1 (an interface's own "
        "switch; projectcalico/cni-plugin#283)"
    ]
    assert problems(VXLAN, forwarding=("flannel.1", "1")) == []


def test_a_range_outside_the_pod_cidr_or_on_another_nodes_subnet_is_named() -> None:
    conf = json.loads(healthy(HOSTGW).conflist or "")
    conf["plugins"][0]["ipam"]["ranges"][0][0]["subnet"] = "10.245.0.0/24"
    (outside, *diffs) = problems(HOSTGW, conflist=json.dumps(conf))
    assert outside.startswith(
        "node2 hands out 10.245.0.0/24, outside the cluster pod CIDR 10.244.0.0/16"
    )
    assert diffs == [
        "/etc/cni/net.d/10-netlab.conflist: plugins[0].ipam.ranges[0][0].subnet = "
        '"10.245.0.0/24"; the lab renders "10.244.1.0/24"'
    ]
    conf["plugins"][0]["ipam"]["ranges"][0][0]["subnet"] = "10.244.0.0/24"
    assert problems(HOSTGW, conflist=json.dumps(conf))[0] == (
        "node2 hands out 10.244.0.0/24, which overlaps node1's subnet 10.244.0.0/24: both "
        "nodes give pods the same addresses"
    )


def test_each_sysctl_problem_says_what_it_breaks_in_full() -> None:
    assert problems(HOSTGW, bridge_nf_call_iptables=None) == [
        "br_netfilter is not loaded (no /proc/sys/net/bridge): traffic between pods on one "
        "bridge bypasses iptables, so a Service whose endpoint shares the client's bridge is "
        "never translated back (the guide's step 3; kubernetes#87426)"
    ]
    assert problems(HOSTGW, bridge_nf_call_iptables="0") == [
        "net.bridge.bridge-nf-call-iptables = 0: bridged pod traffic bypasses iptables, so a "
        "Service whose endpoint shares the client's bridge is never translated back (the "
        "guide's step 3; kubernetes#87426)"
    ]
    # forwarding off everywhere is said once: the interface's own switch is then moot
    off = problems(HOSTGW, ip_forward=None, forwarding=("eth1", "0"))
    assert off == [
        "net.ipv4.ip_forward = None: the node does not forward pod packets (the guide's step 4, "
        "开启路由转发, sets it to 1)"
    ]


def test_a_firewall_rule_or_policy_that_rejects_is_named_like_one_that_drops() -> None:
    reject = "-A FORWARD -s 10.244.0.0/24 -j REJECT --reject-with icmp-port-unreachable"
    tables = hostnet.parse_iptables_save(FILTER.replace("COMMIT", reject + "\nCOMMIT", 1))
    assert problems(HOSTGW, tables=tables) == [
        "iptables FORWARD drops pod traffic 10.244.0.2 -> 10.244.1.2 (eth1 -> cni0): "
        f"rule `{reject}`"
    ]
    closed = FILTER.replace(":INPUT ACCEPT", ":INPUT DROP") + FLANNEL_MASQ
    assert problems(VXLAN, tables=hostnet.parse_iptables_save(closed)) == [
        "iptables INPUT drops the tunnel's UDP 8472 from node1 (10.10.20.241): the INPUT "
        "policy DROP (flannel's vxlan backend needs UDP 8472 between all nodes)"
    ]
    rejected = FILTER.replace(":INPUT ACCEPT", ":INPUT REJECT") + FLANNEL_MASQ
    assert problems(VXLAN, tables=hostnet.parse_iptables_save(rejected))[0].endswith(
        "the INPUT policy REJECT (flannel's vxlan backend needs UDP 8472 between all nodes)"
    )
    # a host-gw lab has no tunnel: its INPUT chain is not judged
    assert problems(HOSTGW, tables=hostnet.parse_iptables_save(closed)) == []


def test_a_conflist_that_cannot_be_read_or_parsed_is_named_and_flannels_own_is_not_ours() -> None:
    assert problems(HOSTGW, conflist=None) == ["cannot read /etc/cni/net.d/10-netlab.conflist"]
    assert problems(HOSTGW, conflist="{") == [
        "/etc/cni/net.d/10-netlab.conflist is not JSON (Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1))"
    ]
    node = GUIDE.node(GUIDE.nodes[-1].name)
    assert list(hostnet.conflist_problems(GUIDE, node, healthy(HOSTGW, conflist=None))) == []


def test_an_exhausted_range_is_named_in_full_and_only_this_nodes_leases_count() -> None:
    leases = tuple(f"10.244.1.{i}" for i in range(2, 255))
    assert problems(HOSTGW, leases=leases) == [
        "host-local has 253 of the 253 addresses of 10.244.1.0/24 reserved "
        "(/var/lib/cni/networks/netlab): a new pod gets 'no IP addresses available in range "
        "set' (leaked leases: kubernetes#57280)"
    ]
    elsewhere = (*leases[1:], "10.244.0.2", "last_reserved_ip.0", "lock")
    assert problems(HOSTGW, leases=elsewhere) == []
    assert problems(HOSTGW, leases=None) == []  # unread: nothing to judge


def test_iptables_save_keeps_each_committed_table_its_policies_and_rules_in_order() -> None:
    text = (
        "# Generated by iptables-save\n"
        "-A INPUT -j DROP\n"  # before any table: ignored
        "*filter\n"
        ":INPUT DROP [0:0]\n"
        ":MINE - [0:0]\n"
        ":BROKEN\n"
        '-A INPUT -m comment --comment "unclosed -j ACCEPT\n'  # unparseable: skipped
        "-A INPUT -s 10.0.0.0/8 -j MINE\n"
        "  -A MINE -j ACCEPT  \n"
        "-A MINE\n"  # no match, no target: it counts every packet
        "-A\n"
        "COMMIT\n"
        "*nat\n"
        ":POSTROUTING ACCEPT [0:0]\n"
        "-A POSTROUTING -j MASQUERADE\n"  # never committed: not kept
    )
    tables = hostnet.parse_iptables_save(text)
    assert tables.keys() == {"filter"}
    filt = tables["filter"]
    assert filt.policies == {"INPUT": "DROP"}
    assert filt.rules == {
        "INPUT": (
            hostnet.Rule(
                "INPUT", ("-s", "10.0.0.0/8", "-j", "MINE"), "-A INPUT -s 10.0.0.0/8 -j MINE"
            ),
        ),
        "MINE": (
            hostnet.Rule("MINE", ("-j", "ACCEPT"), "-A MINE -j ACCEPT"),
            hostnet.Rule("MINE", (), "-A MINE"),
        ),
    }
    assert hostnet.Rule("C", ("-m", "x", "--goto", "Y"), "").target == "Y"
    assert hostnet.Rule("C", ("-g", "Y"), "").target == "Y"
    assert hostnet.Rule("C", ("--jump", "Y"), "").target == "Y"
    assert hostnet.Rule("C", ("-s", "1.2.3.4", "-j"), "").target == ""


def test_a_route_line_gives_its_destination_gateway_and_device() -> None:
    parse = hostnet.parse_route
    line = "10.244.0.0/24 via 10.10.40.241 dev eth1 proto static"
    assert parse(line) == hostnet.Route("10.244.0.0/24", "10.10.40.241", "eth1", line)
    assert parse("blackhole 10.244.9.0/24") == hostnet.Route(
        "blackhole", None, None, "blackhole 10.244.9.0/24"
    )
    assert parse("10.244.0.0/24 dev") == hostnet.Route(
        "10.244.0.0/24", None, None, "10.244.0.0/24 dev"
    )
    assert parse("10.244.0.0/24 via") == hostnet.Route(
        "10.244.0.0/24", None, None, "10.244.0.0/24 via"
    )
    assert parse("") == hostnet.Route("", None, None, "")


def test_a_mark_match_is_judged_for_a_packet_without_a_mark() -> None:
    mark = hostnet._mark_match
    assert mark("0x0") is True
    assert mark("0") is True
    assert mark("0x4000/0x4000") is False
    assert mark("0x4000/0x0") is False  # 0 & 0 is 0, not 0x4000
    assert mark("0x0/0xffff") is True
    assert mark("1") is False
    assert mark("0x4000") is False
    assert mark("zz") is False
    assert mark("0x1/zz") is False
