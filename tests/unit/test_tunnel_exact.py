"""The VXLAN model (lab/podnet/tunnel.py) to the letter: the five read-only commands that probe
flannel.1, what each output is read as (and what is skipped), and every problem line a node
whose tunnel is wrong gets."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from lab.common.commands import render_probe
from lab.model.labfile import load_lab
from lab.podnet import tunnel

ROOT = Path(__file__).resolve().parents[2]
LAB = load_lab(ROOT / "labs" / "ci-debian12-vxlan.yaml")
NODE1 = LAB.node("node1")
DATA = ROOT / "tests" / "data" / "vxlan"
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
