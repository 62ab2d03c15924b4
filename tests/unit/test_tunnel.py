"""The VXLAN data plane model and its provisioning, fed with what real nodes of the tunnel lab
printed (tests/data/vxlan/): a node as provisioned needs nothing; each missing piece is planned
back and named with the peer it cuts off and the command that restores it. And the model
(lab/podnet/tunnel.py) to the letter: the five read-only commands that probe flannel.1, what
each output is read as (and what is skipped), and every problem line a node whose tunnel is
wrong gets."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from lab.common.commands import Command, Output, render_probe, render_remote
from lab.model.labfile import load_lab
from lab.model.problems import Problem
from lab.podnet import tunnel
from lab.podnet.vxlan import render_subnet_env, vtep_mac, vxlan_mtu_problems
from provision.podnet import vxlan

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "vxlan"
LAB = load_lab(ROOT / "labs" / "ci-debian12-vxlan.yaml")
NODE1 = LAB.node("node1")
KINDS = ("link", "addr", "fdb", "neigh", "route")
FILES = {"device": "link", "addresses": "addr", "neighbors": "neigh", "routes": "route"}


def recorded(node: str, kind: str) -> str:
    kind = FILES.get(kind, kind)
    suffix = ".json" if kind in KINDS else ".txt"
    return (DATA / f"{node}-{kind}{suffix}").read_text()


def state(node: str = "node1", **edits: str) -> tunnel.TunnelState:
    texts = {k: edits.get(k, recorded(node, k)) for k in KINDS}
    return tunnel.parse_tunnel_state(*(texts[k] for k in KINDS))


def test_a_recorded_node_parses_to_flannels_data_plane() -> None:
    s = state()
    assert s.device == tunnel.VxlanDevice(
        1, 8472, "10.10.20.241", "eth1", False, 1450, vtep_mac(NODE1)
    )
    assert s.addresses == ("10.244.0.0/32",)
    assert s.fdb == (("0e:00:0a:0a:14:f2", "10.10.20.242"),)
    assert s.neighbors == (("10.244.1.0", "0e:00:0a:0a:14:f2"),)
    assert s.routes == (("10.244.1.0/24", "10.244.1.0"),)
    assert tunnel.tunnel_problems(LAB, NODE1, s) == []


def test_a_lost_fdb_entry_names_the_peer_and_the_command() -> None:
    assert tunnel.tunnel_problems(LAB, NODE1, state(fdb="[]")) == [
        "node1: no FDB entry 0e:00:0a:0a:14:f2 -> 10.10.20.242 on flannel.1: its pods cannot "
        "reach node2's (`bridge fdb append 0e:00:0a:0a:14:f2 dev flannel.1 dst 10.10.20.242`)"
    ]


def test_a_learnt_neighbour_is_not_the_permanent_one_flannel_adds() -> None:
    stale = json.dumps([{"dst": "10.244.1.0", "lladdr": "0e:00:0a:0a:14:f2", "state": ["STALE"]}])
    (problem,) = tunnel.tunnel_problems(LAB, NODE1, state(neigh=stale))
    assert problem.startswith("node1: no permanent neighbour 10.244.1.0 -> 0e:00:0a:0a:14:f2")


def test_a_vtep_on_the_management_nic_says_how_flannel_got_there() -> None:
    link = json.loads(recorded("node1", "link"))
    link[0]["linkinfo"]["info_data"].update(local="192.168.124.127", link="eth0")
    (problem,) = tunnel.tunnel_problems(LAB, NODE1, state(link=json.dumps(link)))
    assert problem == (
        "node1: flannel.1 sends from 192.168.124.127 on eth0, not from the private IP "
        "10.10.20.241 on eth1: 192.168.124.127 is the management address; flannel without "
        "--iface picks the default-route NIC (on a Vagrant box, the management one): pass "
        "--iface=eth1"
    )


def test_a_missing_device_is_one_problem() -> None:
    assert tunnel.tunnel_problems(
        LAB, NODE1, state(link="", addr="", fdb="", neigh="", route="")
    ) == ["node1: flannel.1 does not exist"]


# node1's files as provisioning must leave them, written out from the lab file
# (labs/ci-debian12-vxlan.yaml: node1 at 10.10.20.241 on eth1, pod CIDR 10.244.0.0/16 in /24s,
# so node1 leases 10.244.0.0/24 and node2 10.244.1.0/24; MTU 1450; flannel's VNI 1, port 8472,
# no learning; the VTEP MACs as recorded, tests/data/vxlan/node*-link.json), not from the
# renderers under test: a renderer that drifts from them makes the recorded node plan work.
NODE1_NETDEV = """\
# netlab: flannel v0.14.0's vxlan backend device, as flanneld creates it
[NetDev]
Name=flannel.1
Kind=vxlan
MACAddress=0e:00:0a:0a:14:f1

[VXLAN]
VNI=1
Local=10.10.20.241
DestinationPort=8472
MacLearning=no
"""
NODE1_NETWORK = """\
# netlab: flannel.1's address, and per remote node its neighbour, FDB entry and route
[Match]
Name=flannel.1

[Network]
Address=10.244.0.0/32
LinkLocalAddressing=no
IPv6AcceptRA=no

[Neighbor]
Address=10.244.1.0
LinkLayerAddress=0e:00:0a:0a:14:f2

[BridgeFDB]
MACAddress=0e:00:0a:0a:14:f2
Destination=10.10.20.242

[Route]
Destination=10.244.1.0/24
Gateway=10.244.1.0
GatewayOnLink=yes
"""
NODE1_DROPIN = "# netlab: flannel.1 rides on this NIC\n[Network]\nVXLAN=flannel.1\n"
NODE1_TMPFILES = (
    "# netlab: /run/flannel/subnet.env, as flanneld writes it, at every boot\n"
    "d /run/flannel 0755 root root -\n"
    "f+ /run/flannel/subnet.env 0644 root root - FLANNEL_NETWORK=10.244.0.0/16\\n"
    "FLANNEL_SUBNET=10.244.0.1/24\\nFLANNEL_MTU=1450\\nFLANNEL_IPMASQ=true\\n\n"
)
NODE1_MASQ_RULES = (  # flanneld --ip-masq's, as `iptables -S` prints them (the recorded node's)
    "-s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN",
    "-s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE --random-fully",
    "! -s 10.244.0.0/16 -d 10.244.0.0/24 -j RETURN",
    "! -s 10.244.0.0/16 -d 10.244.0.0/16 -j MASQUERADE --random-fully",
)
NODE1_MASQ_UNIT = (
    "# netlab: flanneld --ip-masq's POSTROUTING rules (no flanneld runs here)\n"
    "[Unit]\nDescription=netlab: flannel's --ip-masq rules\nAfter=network-pre.target\n\n"
    "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
    + "".join(
        f"ExecStart=/bin/sh -c 'iptables -t nat -C POSTROUTING {rule} 2>/dev/null || "
        f"iptables -t nat -A POSTROUTING {rule}'\n"
        for rule in NODE1_MASQ_RULES
    )
    + "\n[Install]\nWantedBy=multi-user.target\n"
)


def test_the_written_out_masquerade_rules_are_the_recorded_nodes() -> None:
    assert [f"-A POSTROUTING {r}" for r in NODE1_MASQ_RULES] == (
        recorded("node1", "nat-postrouting").splitlines()[1:]
    )


def outputs(node: str = "node1", **over: Output) -> dict[Command, Output]:
    """What each of the step's probe commands printed on the recorded node: the data plane as
    recorded (tests/data/vxlan/), its files as written out above from the lab file."""
    files = "\n".join(
        f"{path}:{line}"
        for path, text in {
            vxlan.NETDEV: NODE1_NETDEV,
            vxlan.NETWORK: NODE1_NETWORK,
            "/etc/systemd/network/50-vagrant-eth1.network": "[Match]\nName=eth1\n",
            f"/etc/systemd/network/50-vagrant-eth1.network.d/{vxlan.DROPIN}": NODE1_DROPIN,
        }.items()
        for line in text.splitlines()
    )
    answers = {
        "network_files": Output(0, files),
        **{
            k: Output(0, recorded(node, k))
            for k in ("device", "addresses", "fdb", "neighbors", "routes")
        },
        "subnet_env": Output(0, recorded(node, "subnet.env")),
        "tmpfiles": Output(0, NODE1_TMPFILES),
        "masq_unit": Output(0, NODE1_MASQ_UNIT),
        "nat_rules": Output(0, recorded(node, "nat-postrouting")),
        "nic_mtu": Output(0, "1500\n"),
    }
    answers.update(over)
    facts = vxlan.VXLAN.facts(LAB, NODE1)
    return {facts[name].command: out for name, out in answers.items()}


def read(**over: Output) -> vxlan.VxlanFacts:
    facts: vxlan.VxlanFacts = vxlan.VXLAN.read(LAB, NODE1, outputs(**over))
    return facts


def test_the_recorded_provisioned_node_plans_nothing() -> None:
    facts = read()
    assert facts.subnet_env == render_subnet_env(LAB, NODE1, 1450)
    assert vxlan.plan_vxlan(LAB, NODE1, facts) == ()


def test_a_lost_fdb_entry_is_planned_back_through_networkd() -> None:
    facts = read(fdb=Output(0, "[]"))
    plan = [c.argv for c in vxlan.plan_vxlan(LAB, NODE1, facts)]
    assert plan == [
        ("networkctl", "reconfigure", "flannel.1"),
        (vxlan.WAIT_ONLINE, "--interface=flannel.1", "--timeout=60"),
    ]


def test_an_incompatible_device_is_deleted_and_created_again() -> None:
    link = json.loads(recorded("node1", "link"))
    link[0]["linkinfo"]["info_data"]["learning"] = True
    facts = read(device=Output(0, json.dumps(link)))
    plan = [c.argv for c in vxlan.plan_vxlan(LAB, NODE1, facts)]
    assert plan[:3] == [
        ("ip", "link", "delete", "flannel.1"),
        ("networkctl", "reconfigure", "eth1"),
        ("networkctl", "reconfigure", "flannel.1"),
    ]


def test_subnet_env_after_a_reboot_and_missing_masquerade_rules_are_put_back() -> None:
    facts = read(subnet_env=Output(1, ""), nat_rules=Output(0, "-P POSTROUTING ACCEPT\n"))
    plan = [c.argv for c in vxlan.plan_vxlan(LAB, NODE1, facts)]
    assert plan == [
        ("systemd-tmpfiles", "--create", vxlan.TMPFILES),
        ("systemctl", "enable", vxlan.MASQ_UNIT),
        ("systemctl", "restart", vxlan.MASQ_UNIT),
    ]


def test_the_pod_mtu_follows_the_private_nics() -> None:
    facts = read(nic_mtu=Output(0, "9000\n"))
    plan = vxlan.plan_vxlan(LAB, NODE1, facts)
    env = next(c.stdin for c in plan if c.argv[-1] == vxlan.TMPFILES)
    assert env is not None
    assert "FLANNEL_MTU=8950" in env
    with pytest.raises(ValueError, match="the private NIC's MTU is needed"):
        vxlan.plan_vxlan(LAB, NODE1, dataclasses.replace(facts, nic_mtu=None))


def test_a_fresh_node_gets_the_whole_backend() -> None:
    plan = vxlan.plan_vxlan(LAB, NODE1, vxlan.fresh_vxlan(LAB, NODE1))
    written = [c.argv[-1] for c in plan if c.stdin is not None]
    assert written == [
        vxlan.NETDEV,
        vxlan.NETWORK,
        f"/etc/systemd/network/50-vagrant-eth1.network.d/{vxlan.DROPIN}",
        vxlan.TMPFILES,
        vxlan.MASQ_UNIT_PATH,
    ]


def test_the_fresh_facts_are_what_a_node_fresh_from_the_box_prints() -> None:
    """Vagrant's .network for eth1 and nothing of the backend: no flannel.1 (each `ip` and
    `bridge` about it exits 1), no files, the box's ACCEPT policy, a 1500-byte NIC."""
    vagrant = "[Match]\nName=eth1\n\n[Network]\nAddress=10.10.20.241/24\n"
    path = "/etc/systemd/network/50-vagrant-eth1.network"
    gone = Output(1, "")
    fresh = outputs(
        network_files=Output(0, "".join(f"{path}:{line}\n" for line in vagrant.splitlines())),
        device=gone,
        addresses=gone,
        fdb=gone,
        neighbors=gone,
        routes=gone,
        subnet_env=gone,
        tmpfiles=gone,
        masq_unit=gone,
        nat_rules=Output(0, "-P POSTROUTING ACCEPT\n"),
    )
    assert vxlan.VXLAN.read(LAB, NODE1, fresh) == vxlan.fresh_vxlan(LAB, NODE1)


def test_the_step_reads_each_fact_with_the_command_the_recordings_were_made_with() -> None:
    # tests/data/vxlan/SOURCES.md's commands, and the step's own files as provisioning writes them
    facts = vxlan.VXLAN.facts(LAB, NODE1)
    assert {k: (f.name, render_remote(f.command)) for k, f in facts.items()} == {
        "network_files": ("systemd-networkd files", "sudo -n grep -rH '' /etc/systemd/network"),
        "device": ("flannel.1 device", "ip -d -j link show flannel.1"),
        "addresses": ("flannel.1 addresses", "ip -j -4 addr show dev flannel.1"),
        "fdb": ("flannel.1 FDB", "bridge -j fdb show dev flannel.1"),
        "neighbors": ("flannel.1 neighbours", "ip -j neigh show dev flannel.1"),
        "routes": ("flannel.1 routes", "ip -j -4 route show dev flannel.1"),
        "subnet_env": ("file /run/flannel/subnet.env", "sudo -n cat /run/flannel/subnet.env"),
        "tmpfiles": (
            "file /etc/tmpfiles.d/netlab-flannel.conf",
            "sudo -n cat /etc/tmpfiles.d/netlab-flannel.conf",
        ),
        "masq_unit": (
            "file /etc/systemd/system/netlab-flannel-masq.service",
            "sudo -n cat /etc/systemd/system/netlab-flannel-masq.service",
        ),
        "nat_rules": ("nat POSTROUTING rules", "sudo -n iptables -t nat -S POSTROUTING"),
        "nic_mtu": ("private NIC MTU", "cat /sys/class/net/eth1/mtu"),
    }


def test_a_fresh_nodes_plan_step_by_step_writes_what_the_lab_file_implies() -> None:
    plan = vxlan.plan_vxlan(LAB, NODE1, vxlan.fresh_vxlan(LAB, NODE1))
    dropin = "/etc/systemd/network/50-vagrant-eth1.network.d/netlab-vxlan.conf"
    install = ("install", "-D", "-m", "0644", "/dev/stdin")
    assert [(c.argv, c.stdin) for c in plan] == [
        ((*install, "/etc/systemd/network/05-netlab-flannel.netdev"), NODE1_NETDEV),
        ((*install, "/etc/systemd/network/05-netlab-flannel.network"), NODE1_NETWORK),
        ((*install, dropin), NODE1_DROPIN),
        (("networkctl", "reload"), None),
        (("networkctl", "reconfigure", "eth1"), None),
        (("networkctl", "reconfigure", "flannel.1"), None),
        (
            ("/lib/systemd/systemd-networkd-wait-online", "--interface=flannel.1", "--timeout=60"),
            None,
        ),
        ((*install, "/etc/tmpfiles.d/netlab-flannel.conf"), NODE1_TMPFILES),
        (("systemd-tmpfiles", "--create", "/etc/tmpfiles.d/netlab-flannel.conf"), None),
        ((*install, "/etc/systemd/system/netlab-flannel-masq.service"), NODE1_MASQ_UNIT),
        (("systemctl", "daemon-reload"), None),
        (("systemctl", "enable", "netlab-flannel-masq.service"), None),
        (("systemctl", "restart", "netlab-flannel-masq.service"), None),
    ]


def test_a_lost_underlay_dropin_is_written_back_and_the_nic_reconfigured() -> None:
    facts = read()
    dropin = "/etc/systemd/network/50-vagrant-eth1.network.d/netlab-vxlan.conf"
    without = {p: t for p, t in facts.network_files.items() if p != dropin}
    plan = vxlan.plan_vxlan(LAB, NODE1, dataclasses.replace(facts, network_files=without))
    assert [c.argv[-1] if c.stdin else " ".join(c.argv) for c in plan] == [
        dropin,
        "networkctl reload",
        "networkctl reconfigure eth1",
        "networkctl reconfigure flannel.1",
        "/lib/systemd/systemd-networkd-wait-online --interface=flannel.1 --timeout=60",
    ]


def test_exactly_the_masquerade_rules_and_no_more_need_no_restart() -> None:
    rules = tuple(f"-A POSTROUTING {r}" for r in NODE1_MASQ_RULES)
    assert vxlan.plan_vxlan(LAB, NODE1, dataclasses.replace(read(), nat_rules=rules)) == ()


def test_without_a_network_file_for_the_private_nic_the_plan_says_where_it_looked() -> None:
    facts = dataclasses.replace(read(), network_files={})
    with pytest.raises(ValueError, match="no systemd-networkd") as err:
        vxlan.plan_vxlan(LAB, NODE1, facts)
    assert str(err.value) == (
        "node1: no systemd-networkd .network file configures eth1 (looked in "
        "/etc/systemd/network); is the private network up?"
    )


@pytest.mark.parametrize(
    ("mtu", "refused"), [(1450, False), (1451, True), (9000, True), (9001, False)]
)
def test_a_pod_mtu_the_tunnel_cannot_carry_is_refused_within_the_valid_range(
    mtu: int, refused: bool
) -> None:
    lab = dataclasses.replace(LAB, pod_network=dataclasses.replace(LAB.pod_network, mtu=mtu))
    expected = Problem(
        "pod_network.mtu",
        mtu,
        "a VXLAN tunnel takes 50 bytes of the node network's 1500: pods get at most 1450 "
        "(flannel's FLANNEL_MTU)",
        "set pod_network.mtu: 1450",
    )
    assert list(vxlan_mtu_problems(lab)) == ([expected] if refused else [])


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


GOOD = tunnel.VxlanDevice(1, 8472, "10.10.20.241", "eth1", False, 1450, "0e:00:0a:0a:14:f1")


def test_the_tunnel_probe_is_five_json_reads_without_sudo() -> None:
    probes = tunnel.probe_tunnel_state()
    assert [(c.argv, c.sudo, c.stdin) for c in probes] == [
        (("ip", "-d", "-j", "link", "show", "flannel.1"), False, None),
        (("ip", "-j", "-4", "addr", "show", "dev", "flannel.1"), False, None),
        (("bridge", "-j", "fdb", "show", "dev", "flannel.1"), False, None),
        (("ip", "-j", "neigh", "show", "dev", "flannel.1"), False, None),
        (("ip", "-j", "-4", "route", "show", "dev", "flannel.1"), False, None),
    ]
    assert (
        render_probe(tunnel.probe_tunnel_state("vx0"))
        .splitlines()[0]
        .startswith("ip -d -j link show vx0 2>/dev/null;")
    )


def test_outputs_that_are_no_list_or_lack_a_field_are_skipped() -> None:
    state = tunnel.parse_tunnel_state(
        json.dumps({"ifname": "flannel.1"}),  # an object, not ip's list
        json.dumps([{"ifname": "flannel.1"}, {"addr_info": [{"family": "inet6"}]}]),
        json.dumps([{"mac": "0e:00:0a:0a:14:f2"}, {"dst": "10.10.20.242"}]),
        json.dumps([{"dst": "10.244.1.0", "state": ["PERMANENT"]}]),
        json.dumps(
            [
                {"dst": "10.244.1.0/24", "gateway": "10.244.1.0"},
                {"dst": "10.244.2.0/24", "flags": ["onlink"]},
            ]
        ),
    )
    assert state == tunnel.TunnelState(None, (), (), (), ())


def test_a_device_bound_by_link_index_reads_its_lower_link_from_the_link() -> None:
    link = json.loads((DATA / "node1-link.json").read_text())
    del link[0]["linkinfo"]["info_data"]["link"]
    link[0]["link"] = "eth1"
    assert tunnel.parse_device(link) == GOOD


def problems(**changes: object) -> list[str]:
    return tunnel.device_problems(LAB, NODE1, dataclasses.replace(GOOD, **changes))


def test_a_device_unlike_flannels_gets_each_problem_to_the_letter() -> None:
    assert problems() == []
    assert problems(port=4789) == ["node1: flannel.1 has VNI 1 port 4789; flannel uses 1 / 8472"]
    assert problems(vni=2) == ["node1: flannel.1 has VNI 2 port 8472; flannel uses 1 / 8472"]
    assert problems(learning=None) == ["node1: flannel.1 learns MACs; flannel's VTEP is nolearning"]
    assert problems(link=None) == []
    assert problems(link="eth0") == [
        "node1: flannel.1 sends from 10.10.20.241 on eth0, not from the private IP "
        "10.10.20.241 on eth1"
    ]
    assert problems(local="10.10.20.9") == [
        "node1: flannel.1 sends from 10.10.20.9 on eth1, not from the private IP "
        "10.10.20.241 on eth1"
    ]
    assert problems(local=None) == [
        "node1: flannel.1 sends from None on eth1, not from the private IP 10.10.20.241 on eth1"
    ]
    assert problems(local="not-an-ip") == [
        "node1: flannel.1 sends from not-an-ip on eth1, not from the private IP "
        "10.10.20.241 on eth1"
    ]


def test_a_bare_device_lacks_its_address_routes_and_mtu() -> None:
    state = tunnel.TunnelState(dataclasses.replace(GOOD, mtu=1500), (), (), (), ())
    got = tunnel.tunnel_problems(LAB, NODE1, state)
    assert got[0] == "node1: flannel.1 lacks its address 10.244.0.0/32"
    assert got[-2:] == [
        "node1: no route 10.244.1.0/24 via 10.244.1.0 onlink dev flannel.1 "
        "(`ip route replace 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink`)",
        "node1: flannel.1 MTU is 1500, the pods' is 1450: a full-size pod packet does not "
        "fit the tunnel",
    ]
    assert len(got) == 5
