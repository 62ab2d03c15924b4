"""The Calico-shaped BGP backend (lab/podnet/bgp.py): who peers with whom (the mesh inside a
segment, the router as every node's top-of-rack peer, an AS per segment), bird2's
configuration (pinned by tests/golden/render/ci-debian12-routed-bgp/), what `birdc show
protocols` and the kernel's `proto bird` routes say, and the problems named from them: a
session that is not Established with its state, a withdrawn subnet, a route not learned."""

from __future__ import annotations

import dataclasses
import json
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from lab.model.config import Node
from lab.model.labfile import load_lab
from lab.podnet import backend_of, bgp

ROOT = Path(__file__).resolve().parents[2]
ROUTED = load_lab(ROOT / "labs" / "ci-debian12-routed-bgp.yaml")
FLAT = dataclasses.replace(
    load_lab(ROOT / "labs" / "ci-debian12-3node.yaml"),
    pod_network=dataclasses.replace(ROUTED.pod_network),
)
# three nodes on a routed underlay: two share rack1 (a mesh between them), one on rack2
THREE = dataclasses.replace(
    ROUTED,
    nodes=(*ROUTED.nodes, Node("node3", IPv4Address("10.10.52.243"))),
)

# what bird 2.0.12 printed in a netns rehearsal of this lab (node2, then node1)
HEALTHY = """BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     09:10:15.315
netlab_blocks Static     master4    up     09:10:15.315
netlab_kernel Kernel     master4    up     09:10:15.315
Node_10_10_53_254 BGP        ---        up     09:10:16.256  Established
"""
DISABLED = HEALTHY.replace(
    "Node_10_10_53_254 BGP        ---        up     09:10:16.256  Established",
    "Node_10_10_53_254 BGP        ---        down   09:10:25.989",
)
REFUSED = HEALTHY.replace(
    "up     09:10:16.256  Established",
    "start  09:10:28.042  Active        Socket: Connection refused",
)
WITHDRAWN = HEALTHY.replace(
    "netlab_blocks Static     master4    up", "netlab_blocks Static     master4    down"
)


def test_the_backend_is_registered_as_the_routing_family_over_bgp() -> None:
    backend = backend_of(ROUTED)
    assert (backend.name, backend.family, backend.dataplane(ROUTED)) == ("bgp", "routing", "bgp")
    assert backend.description == "Calico-shaped BGP: bird from Debian, no calico-node"
    assert not backend.tunnels(ROUTED)
    assert backend.pod_mtu(ROUTED) == 1500
    assert backend.provisioning == "provision.podnet.bgp"


def test_on_a_routed_underlay_each_node_peers_with_the_router_of_its_segment() -> None:
    node1, node2 = ROUTED.nodes
    assert bgp.peers(ROUTED, node1) == (
        bgp.Peer("Node_10_10_52_254", "tor", IPv4Address("10.10.52.254"), 64512, node1.ip, "tor"),
    )
    assert bgp.router_peers(ROUTED) == (
        bgp.Peer(
            "Node_10_10_52_241", "node1", node1.ip, 64513, IPv4Address("10.10.52.254"), "node"
        ),
        bgp.Peer(
            "Node_10_10_53_242", "node2", node2.ip, 64514, IPv4Address("10.10.53.254"), "node"
        ),
    )
    assert [bgp.node_asn(ROUTED, n) for n in ROUTED.nodes] == [64513, 64514]
    assert bgp.learned_via(ROUTED, node1, node2) == IPv4Address("10.10.52.254")


def test_nodes_that_share_a_segment_form_calicos_mesh_besides_the_router() -> None:
    node1, _, node3 = THREE.nodes
    assert [(p.protocol, p.role) for p in bgp.peers(THREE, node1)] == [
        ("Mesh_10_10_52_243", "mesh"),
        ("Node_10_10_52_254", "tor"),
    ]
    assert bgp.learned_via(THREE, node1, node3) == node3.ip  # on-link, not via the router
    assert "protocol bgp Mesh_10_10_52_243 from netlab_peer" in bgp.render_bird_conf(THREE, node1)


def test_on_a_flat_lab_every_node_is_in_calicos_default_as_in_one_mesh() -> None:
    node1 = FLAT.nodes[0]
    assert [(p.protocol, p.asn) for p in bgp.peers(FLAT, node1)] == [
        ("Mesh_10_10_30_242", 64512),
        ("Mesh_10_10_30_243", 64512),
    ]
    conf = bgp.render_bird_conf(FLAT, node1)
    assert "local as 64512;" in conf
    assert "Node_" not in conf
    assert "bird-router.conf" not in backend_of(FLAT).render_files(FLAT, None)


def test_a_node_announces_only_its_own_subnet_and_learns_only_pod_subnets() -> None:
    conf = bgp.render_bird_conf(ROUTED, ROUTED.nodes[1])
    assert "route 10.244.1.0/24 blackhole;" in conf
    assert "export filter { if net = 10.244.1.0/24 then accept; reject; };" in conf
    assert (
        "import filter { if net ~ [ 10.244.0.0/16+ ] && net != 10.244.1.0/24 then accept; "
        "reject; };" in conf
    )
    # into the kernel: what BGP learned, nothing else (the node's own subnet is cni0's)
    assert "if source = RTS_BGP && net ~ [ 10.244.0.0/16+ ] then accept; reject;" in conf


def test_the_expected_routes_are_birds_via_the_router() -> None:
    assert backend_of(ROUTED).expected_routes(ROUTED, ROUTED.nodes[0]) == (
        "10.244.1.0/24 via 10.10.52.254 dev eth1 proto bird",
    )


def test_the_restart_fault_stops_bird_and_isolates_the_node() -> None:
    how = backend_of(ROUTED).restart(ROUTED, ROUTED.nodes[1])
    assert [c.argv for c in how.inject] == [("systemctl", "stop", "bird")]
    assert [c.argv for c in how.heal] == [("systemctl", "start", "bird")]
    assert how.isolates


def test_birdc_show_protocols_is_parsed_with_state_and_info() -> None:
    found = bgp.parse_protocols(REFUSED)
    assert set(found) == {"device1", "netlab_blocks", "netlab_kernel", "Node_10_10_53_254"}
    assert found["Node_10_10_53_254"] == bgp.Protocol(
        "Node_10_10_53_254", "BGP", "start", "Active        Socket: Connection refused"
    )
    assert not found["Node_10_10_53_254"].established
    assert bgp.parse_protocols(HEALTHY)["Node_10_10_53_254"].established
    dated = "Mesh_10_0_0_2 BGP ---  up  2024-01-02 10:00:00  Established"
    assert bgp.parse_protocols(dated)["Mesh_10_0_0_2"].established


@pytest.mark.parametrize(
    ("output", "state"),
    [(DISABLED, "is down, not Established"), (REFUSED, "is start, Active        Socket")],
    ids=["disabled", "refused"],
)
def test_a_session_that_is_not_established_is_named_with_its_state(output: str, state: str) -> None:
    node2 = ROUTED.nodes[1]
    (problem,) = bgp.session_problems(ROUTED, node2, bgp.parse_protocols(output))
    assert problem.startswith(
        f"node2: BGP session Node_10_10_53_254 to tor 10.10.53.254 (AS 64512) {state}"
    )
    assert "node2's pod subnet 10.244.1.0/24 is not announced beyond its segment" in problem
    assert problem.endswith("(`birdc show protocols all Node_10_10_53_254`)")
    assert bgp.session_problems(ROUTED, node2, bgp.parse_protocols(HEALTHY)) == []


def test_a_withdrawn_subnet_and_a_silent_bird_are_named() -> None:
    node2 = ROUTED.nodes[1]
    assert bgp.session_problems(ROUTED, node2, bgp.parse_protocols(WITHDRAWN)) == [
        "node2: bird's static protocol netlab_blocks (its pod subnet 10.244.1.0/24) is down: "
        "the subnet is withdrawn from every peer (`birdc enable netlab_blocks`)"
    ]
    (silent,) = bgp.session_problems(ROUTED, node2, {}, birdc_ok=False)
    assert "bird does not answer `birdc show protocols`" in silent


def test_the_kernels_bird_routes_are_judged_against_the_lab() -> None:
    node1 = ROUTED.nodes[0]
    learned = json.dumps(
        [{"dst": "10.244.1.0/24", "gateway": "10.10.52.254", "dev": "eth1", "protocol": "bird"}]
    )
    assert bgp.route_problems(ROUTED, node1, bgp.parse_bird_routes(learned)) == []
    (missing,) = bgp.route_problems(ROUTED, node1, bgp.parse_bird_routes("[]"))
    assert missing == (
        "node1: no route to node2's pod subnet 10.244.1.0/24 learned by BGP (proto bird; "
        "expected via 10.10.52.254): node2's pods are unreachable from node1's (`birdc show "
        "route 10.244.1.0/24 all`)"
    )
    wrong = learned.replace("10.10.52.254", "10.10.52.9")
    assert bgp.route_problems(ROUTED, node1, bgp.parse_bird_routes(wrong)) == [
        "node1: bird's route to node2's pod subnet 10.244.1.0/24 goes via 10.10.52.9, not "
        "10.10.52.254"
    ]
    assert bgp.parse_bird_routes("") == {}


def test_a_pod_mtu_above_the_node_networks_is_refused() -> None:
    lab = dataclasses.replace(ROUTED, pod_network=dataclasses.replace(ROUTED.pod_network, mtu=1600))
    assert [str(p) for p in backend_of(lab).validate(lab)] == [
        "pod_network.mtu = 1600: is more than the 1500 bytes the nodes' private NIC (eth1) "
        "carries: pod packets cross nodes unencapsulated with a routing backend, and larger "
        "ones are dropped or fragmented on the way; set pod_network.mtu: 1500, or remove it"
    ]


def test_every_session_of_the_lab_is_listed_node_side() -> None:
    assert [(n, p.protocol) for n, p in bgp.sessions_of(THREE)] == [
        ("node1", "Mesh_10_10_52_243"),
        ("node1", "Node_10_10_52_254"),
        ("node2", "Node_10_10_53_254"),
        ("node3", "Mesh_10_10_52_241"),
        ("node3", "Node_10_10_52_254"),
    ]


def test_a_nodes_bgp_side_is_read_by_birdc_with_sudo_and_the_kernels_bird_routes() -> None:
    assert [(c.argv, c.sudo) for c in bgp.probe_bgp_state()] == [
        (("birdc", "show", "protocols"), True),
        (("ip", "-j", "-4", "route", "show", "proto", "bird"), False),
    ]


def test_every_failed_session_is_named_after_an_established_one() -> None:
    node1 = THREE.nodes[0]
    output = (
        "Name       Proto      Table      State  Since         Info\n"
        "netlab_blocks Static     master4    up     09:10:15.315\n"
        "Mesh_10_10_52_243 BGP        ---        up     09:10:16.256  Established\n"
        "Node_10_10_52_254 BGP        ---        down   09:10:25.989\n"
    )
    assert bgp.session_problems(THREE, node1, bgp.parse_protocols(output)) == [
        "node1: BGP session Node_10_10_52_254 to tor 10.10.52.254 (AS 64512) is down, not "
        "Established: node1's pod subnet 10.244.0.0/24 is not announced beyond its segment and "
        "it learns no pod route from the other segments "
        "(`birdc show protocols all Node_10_10_52_254`)"
    ]


def test_a_session_bird_does_not_know_and_a_missing_static_protocol_are_named_absent() -> None:
    node1 = THREE.nodes[0]
    only_tor = "Node_10_10_52_254 BGP        ---        up     09:10:16.256  Established\n"
    assert bgp.session_problems(THREE, node1, bgp.parse_protocols(only_tor)) == [
        "node1: BGP session Mesh_10_10_52_243 to node3 10.10.52.243 (AS 64513) is absent from "
        "bird's configuration, not Established: node1 and node3 do not learn each other's pod "
        "subnets (`birdc show protocols all Mesh_10_10_52_243`)",
        "node1: bird's static protocol netlab_blocks (its pod subnet 10.244.0.0/24) is absent: "
        "the subnet is withdrawn from every peer (`birdc enable netlab_blocks`)",
    ]


def test_the_kernels_bird_routes_keep_destination_gateway_and_device() -> None:
    text = json.dumps(
        [
            {"dst": "10.244.1.0/24", "gateway": "10.10.52.254", "dev": "eth1", "protocol": "bird"},
            {"dst": "10.244.2.0/24", "dev": "eth1", "scope": "link", "protocol": "bird"},
            {"type": "unreachable"},  # no destination: not a route to judge
            "10.244.3.0/24",
        ]
    )
    assert bgp.parse_bird_routes(text) == {
        "10.244.1.0/24": bgp.KernelRoute("10.244.1.0/24", "10.10.52.254", "eth1"),
        "10.244.2.0/24": bgp.KernelRoute("10.244.2.0/24", None, "eth1"),
    }


@pytest.mark.parametrize("text", ["null", "7", "true", '{"dst": "10.244.1.0/24"}', '"x"'])
def test_json_that_is_not_a_route_list_holds_no_route(text: str) -> None:
    assert bgp.parse_bird_routes(text) == {}


def test_a_mesh_session_is_sourced_from_the_nodes_own_address() -> None:
    node1 = FLAT.nodes[0]
    assert bgp.peers(FLAT, node1) == (
        bgp.Peer(
            "Mesh_10_10_30_242", "node2", IPv4Address("10.10.30.242"), 64512, node1.ip, "mesh"
        ),
        bgp.Peer(
            "Mesh_10_10_30_243", "node3", IPv4Address("10.10.30.243"), 64512, node1.ip, "mesh"
        ),
    )


def test_a_flat_labs_bird_conf_names_the_node_without_a_segment() -> None:
    conf = bgp.render_bird_conf(FLAT, FLAT.nodes[0])
    assert conf.splitlines()[0] == (
        "# netlab: Calico-shaped BGP on node1 (bird2 from Debian; no calico-node)"
    )
    routed = bgp.render_bird_conf(THREE, THREE.nodes[0])
    assert routed.splitlines()[0] == (
        "# netlab: Calico-shaped BGP on node1, segment rack1 (bird2 from Debian; no calico-node)"
    )


def test_mesh_and_router_sessions_are_described_each_by_its_role() -> None:
    conf = bgp.render_bird_conf(THREE, THREE.nodes[0])
    assert conf.endswith(
        "\n"
        "protocol bgp Mesh_10_10_52_243 from netlab_peer {\n"
        '  description "node3 (node-to-node mesh, AS 64513)";\n'
        "  neighbor 10.10.52.243 as 64513;\n"
        "  source address 10.10.52.241;\n"
        "}\n"
        "\n"
        "protocol bgp Node_10_10_52_254 from netlab_peer {\n"
        '  description "tor (top-of-rack router, AS 64512)";\n'
        "  neighbor 10.10.52.254 as 64512;\n"
        "  source address 10.10.52.241;\n"
        "}\n"
    )
