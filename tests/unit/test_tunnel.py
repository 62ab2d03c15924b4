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

from lab.common.commands import Command, Output, render_probe
from lab.model.labfile import load_lab
from lab.podnet import tunnel
from lab.podnet.vxlan import render_subnet_env, vtep_mac
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


def outputs(node: str = "node1", **over: Output) -> dict[Command, Output]:
    """What each of the step's probe commands printed on the recorded node (its networkd
    files as written by provisioning: the lab's own renderers, the files themselves)."""
    files = "\n".join(
        f"{path}:{line}"
        for path, text in {
            vxlan.NETDEV: vxlan.render_vxlan_netdev(LAB, NODE1),
            vxlan.NETWORK: vxlan.render_vxlan_network(LAB, NODE1),
            "/etc/systemd/network/50-vagrant-eth1.network": "[Match]\nName=eth1\n",
            f"/etc/systemd/network/50-vagrant-eth1.network.d/{vxlan.DROPIN}": (
                vxlan.render_vxlan_underlay_dropin()
            ),
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
        "tmpfiles": Output(0, vxlan.render_tmpfiles(LAB, NODE1, 1450)),
        "masq_unit": Output(0, vxlan.render_masq_unit(LAB, NODE1)),
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
