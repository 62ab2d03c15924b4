"""Calico-shaped BGP (the guide's routing family, as Calico does it): bird2 from Debian on
every node, no calico-node, no Felix, no Calico IPAM. Pods get the CNI bridge plugin with
host-local on the node's /subnet_len (the lab file allots it, as for host-routes); each node
announces that subnet as Calico announces its IPAM blocks (a blackhole route of a `static`
protocol, exported to its peers) and learns the other nodes' from them: the routes to other
nodes' pods are bird's (`proto bird` in the kernel), never programmed by the harness.

Peering, as in Calico's bird.cfg.template (confd/etc/calico/confd/templates):
- nodes that share a layer-2 segment peer with each other: Calico's node-to-node mesh
  (protocols `Mesh_<ip>`, iBGP inside the segment's AS);
- on a routed underlay each node also peers with the router VM on its segment, the
  top-of-rack router of Calico's "AS per rack" model (a node-specific BGPPeer: `Node_<ip>`):
  every segment is an AS of its own (RACK_AS + its index), the router is the fabric's
  (CLUSTER_AS). The router learns every node's block, routes pod traffic between the segments
  and passes each block on to the other segments with itself as the next hop; a block never
  comes back to its own segment (eBGP's AS-path loop check).
On a flat lab every node is in CLUSTER_AS (Calico's default, 64512) in one mesh.

bird's configuration is rendered here (pure; golden files under tests/golden/render/), its
state parsed here (`birdc show protocols`, the kernel's `proto bird` routes) and judged against
the lab file: a session that is not Established is named with its state and what it cuts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any

from lab.common.commands import Command, cmd
from lab.model.problems import Problem
from lab.model.underlay import gateway_of, same_segment, segment_of
from lab.podnet.base import Backend, Restart, register, routed_mtu_problems
from lab.podnet.bridge import bridge_conflist, render_cni_conflist_text

if TYPE_CHECKING:
    from lab.model.config import Lab, Node

BIRD_CONF = "/etc/bird/bird.conf"
BIRD_SERVICE = "bird"  # Debian's bird2 package: bird.service, /etc/bird/bird.conf
BIRD_PACKAGE = "bird2"
CLUSTER_AS = 64512  # Calico's default AS: the mesh's on a flat lab, the router's on a routed one
RACK_AS = 64513  # segment i of a routed underlay is AS RACK_AS + i ("AS per rack")
# sessions are timed for a lab: a dead peer is noticed within HOLD_S (not bird's 240 s)
HOLD_S = 30
KEEPALIVE_S = 10
BLOCKS = "netlab_blocks"  # the static protocol that originates the node's pod subnet
KERNEL = "netlab_kernel"


@dataclass(frozen=True)
class Peer:
    """One BGP session as one side configures it."""

    protocol: str  # bird's protocol name (Calico's: Mesh_<ip>, Node_<ip>)
    name: str  # the peer's machine (a node or the router)
    address: IPv4Address
    asn: int
    local: IPv4Address  # our source address
    role: str  # "mesh" (a node on the same segment), "tor" (the router), "node" (router side)


def protocol_name(kind: str, address: IPv4Address) -> str:
    """Calico's protocol names: `Mesh_10_0_0_2` (node-to-node mesh), `Node_10_0_0_254` (a
    node-specific peer such as the top-of-rack router)."""
    return f"{kind}_{str(address).replace('.', '_')}"


def node_asn(lab: Lab, node: Node) -> int:
    seg = segment_of(lab, node)
    if seg is None:
        return CLUSTER_AS
    return RACK_AS + lab.network.segments.index(seg)


def peers(lab: Lab, node: Node) -> tuple[Peer, ...]:
    """The node's sessions: the mesh with every node of its segment (every node on a flat
    lab), then the router on its segment (a routed underlay)."""
    mesh = tuple(
        Peer(protocol_name("Mesh", p.ip), p.name, p.ip, node_asn(lab, p), node.ip, "mesh")
        for p in lab.nodes
        if p.name != node.name and same_segment(lab, node, p)
    )
    tor = gateway_of(lab, node)
    if tor is None:
        return mesh
    router = lab.network.router_vm.name
    return (*mesh, Peer(protocol_name("Node", tor), router, tor, CLUSTER_AS, node.ip, "tor"))


def router_peers(lab: Lab) -> tuple[Peer, ...]:
    """The router's sessions: every node, from the router's address on its segment."""
    out = []
    for node in lab.nodes:
        tor = gateway_of(lab, node)
        if tor is not None:
            asn = node_asn(lab, node)
            out.append(Peer(protocol_name("Node", node.ip), node.name, node.ip, asn, tor, "node"))
    return tuple(out)


def learned_via(lab: Lab, node: Node, peer: Node) -> IPv4Address:
    """The next hop `node`'s kernel must hold for `peer`'s pod subnet: the peer itself when
    they share a segment (the mesh), else the router on `node`'s segment."""
    if same_segment(lab, node, peer):
        return peer.ip
    via = gateway_of(lab, node)
    assert via is not None  # two segments mean a routed underlay
    return via


# --- bird2's configuration (pure; golden files) -----------------------------------------------


def _pod_set(lab: Lab) -> str:
    return f"[ {lab.pod_network.cidr}+ ]"


def _kernel(lab: Lab) -> str:
    return (
        "# the pod routes learned from peers go into the kernel (proto bird); nothing else does\n"
        f"protocol kernel {KERNEL} {{\n"
        "  scan time 2;\n"
        "  ipv4 {\n"
        "    import none;\n"
        f"    export filter {{ if source = RTS_BGP && net ~ {_pod_set(lab)} then accept; "
        "reject; };\n"
        "  };\n"
        "}\n"
    )


def _template(name: str, asn: int, imports: str, exports: str) -> str:
    return (
        f"template bgp {name} {{\n"
        f"  local as {asn};\n"
        f"  hold time {HOLD_S};\n"
        f"  keepalive time {KEEPALIVE_S};\n"
        "  connect delay time 1;\n"
        "  connect retry time 3;\n"
        "  error wait time 5, 60;\n"
        "  ipv4 {\n"
        f"    import filter {{ {imports} }};\n"
        f"    export filter {{ {exports} }};\n"
        "  };\n"
        "}\n"
    )


def _session(peer: Peer, template: str, what: str) -> str:
    return (
        f"protocol bgp {peer.protocol} from {template} {{\n"
        f'  description "{what}";\n'
        f"  neighbor {peer.address} as {peer.asn};\n"
        f"  source address {peer.local};\n"
        "}\n"
    )


def render_bird_conf(lab: Lab, node: Node) -> str:
    """/etc/bird/bird.conf of a node: its pod subnet announced, its peers, learned pod routes
    into the kernel."""
    own = _own_subnet(lab, node)
    seg = segment_of(lab, node)
    where = "" if seg is None else f", segment {seg.name}"
    lines = [
        f"# netlab: Calico-shaped BGP on {node.name}{where} (bird2 from Debian; no calico-node)\n"
        "# rendered by lab/podnet/bgp.py from the lab file\n"
        "log syslog all;\n"
        f"router id {node.ip};\n\n"
        "protocol device {\n  scan time 2;\n}\n\n"
        "# this node's pod subnet, announced as Calico announces its IPAM blocks (a blackhole\n"
        "# in bird's own table; the kernel's route to it is cni0's)\n"
        f"protocol static {BLOCKS} {{\n  ipv4;\n  route {own} blackhole;\n}}\n\n",
        _kernel(lab),
        "\n",
        _template(
            "netlab_peer",
            node_asn(lab, node),
            f"if net ~ {_pod_set(lab)} && net != {own} then accept; reject;",
            f"if net = {own} then accept; reject;",
        ),
    ]
    for peer in peers(lab, node):
        what = (
            f"{peer.name} (node-to-node mesh, AS {peer.asn})"
            if peer.role == "mesh"
            else f"{peer.name} (top-of-rack router, AS {peer.asn})"
        )
        lines += ["\n", _session(peer, "netlab_peer", what)]
    return "".join(lines)


def render_router_bird_conf(lab: Lab) -> str:
    """/etc/bird/bird.conf of the router VM: a session per node, every pod subnet learned
    into its kernel (it forwards pod traffic between the segments) and passed on."""
    router = lab.network.router_vm.name
    first = lab.network.segments[0].router_address
    pods = _pod_set(lab)
    lines = [
        f"# netlab: {router}, the top-of-rack router of a routed underlay (bird2 from Debian)\n"
        "# rendered by lab/podnet/bgp.py from the lab file\n"
        "log syslog all;\n"
        f"router id {first};\n\n"
        "protocol device {\n  scan time 2;\n}\n\n",
        _kernel(lab),
        "\n",
        _template(
            "netlab_rack",
            CLUSTER_AS,
            f"if net ~ {pods} then accept; reject;",
            f"if net ~ {pods} then accept; reject;",
        ),
    ]
    for peer in router_peers(lab):
        seg = segment_of(lab, lab.node(peer.name))
        assert seg is not None
        lines += ["\n", _session(peer, "netlab_rack", f"{peer.name} ({seg.name}, AS {peer.asn})")]
    return "".join(lines)


def _own_subnet(lab: Lab, node: Node) -> IPv4Network:
    subnets = BGP.planned_subnets(lab)
    assert subnets is not None
    return subnets[node.name]


# --- what bird says (pure parsers) ------------------------------------------------------------


@dataclass(frozen=True)
class Protocol:
    """One line of `birdc show protocols`."""

    name: str
    proto: str  # BGP, Static, Kernel, Device
    state: str  # up, start, down
    info: str  # for BGP: Established, Active, Connect, Idle, ... and the last error

    @property
    def established(self) -> bool:
        return self.state == "up" and self.info.startswith("Established")


PROTOCOL_LINE = re.compile(
    r"^(?P<name>\S+)\s+(?P<proto>\S+)\s+(?P<table>\S+)\s+(?P<state>up|down|start|stop|flush)"
    r"\s+(?P<since>\d{4}-\d\d-\d\d \S+|\S+)\s*(?P<info>.*)$"
)


def parse_protocols(text: str) -> dict[str, Protocol]:
    """`birdc show protocols` -> name -> Protocol. The banner and the header line ("Name Proto
    Table State ...") never match: a state is one of bird's, and "State" is none."""
    found = {}
    for line in text.splitlines():
        m = PROTOCOL_LINE.match(line.strip())
        if m:
            found[m["name"]] = Protocol(m["name"], m["proto"], m["state"], m["info"].strip())
    return found


@dataclass(frozen=True)
class KernelRoute:
    destination: str
    via: str | None
    device: str | None


def parse_bird_routes(text: str) -> dict[str, KernelRoute]:
    """`ip -j -4 route show proto bird` -> destination -> route."""
    if not text.strip():
        return {}
    data = json.loads(text)
    routes = data if isinstance(data, list) else []
    return {
        r["dst"]: KernelRoute(r["dst"], r.get("gateway"), r.get("dev"))
        for r in routes
        if isinstance(r, dict) and "dst" in r
    }


def probe_bgp_state() -> tuple[Command, Command]:
    """What a node's BGP side is: bird's protocols, the kernel's routes bird put there."""
    return (
        cmd("birdc", "show", "protocols"),
        cmd("ip", "-j", "-4", "route", "show", "proto", "bird", sudo=False),
    )


def session_problems(
    lab: Lab, node: Node, protocols: dict[str, Protocol], birdc_ok: bool = True
) -> list[str]:
    """Every session of the node that is not Established, named with its state from
    `birdc show protocols` and what it cuts."""
    if not birdc_ok:
        return [
            f"{node.name}: bird does not answer `birdc show protocols` (is bird running? "
            f"`systemctl status {BIRD_SERVICE}`): no session, no pod route"
        ]
    own = _own_subnet(lab, node)
    problems = []
    for peer in peers(lab, node):
        seen = protocols.get(peer.protocol)
        if seen is not None and seen.established:
            continue
        state = (
            "absent from bird's configuration"
            if seen is None
            else (f"{seen.state}" + (f", {seen.info}" if seen.info else ""))
        )
        if peer.role == "tor":
            cut = (
                f"{node.name}'s pod subnet {own} is not announced beyond its segment and it "
                "learns no pod route from the other segments"
            )
        else:
            cut = f"{node.name} and {peer.name} do not learn each other's pod subnets"
        problems.append(
            f"{node.name}: BGP session {peer.protocol} to {peer.name} {peer.address} "
            f"(AS {peer.asn}) is {state}, not Established: {cut} "
            f"(`birdc show protocols all {peer.protocol}`)"
        )
    if BLOCKS not in protocols or protocols[BLOCKS].state != "up":
        problems.append(
            f"{node.name}: bird's static protocol {BLOCKS} (its pod subnet {own}) is "
            f"{'absent' if BLOCKS not in protocols else protocols[BLOCKS].state}: the subnet "
            f"is withdrawn from every peer (`birdc enable {BLOCKS}`)"
        )
    return problems


def route_problems(lab: Lab, node: Node, routes: dict[str, KernelRoute]) -> list[str]:
    """Every other node's pod subnet must be in the kernel as bird learned it (proto bird),
    via the peer on a shared segment or the router on a routed underlay."""
    subnets = BGP.planned_subnets(lab)
    assert subnets is not None
    problems = []
    for peer in lab.nodes:
        if peer.name == node.name:
            continue
        subnet = str(subnets[peer.name])
        via = str(learned_via(lab, node, peer))
        got = routes.get(subnet)
        if got is None:
            problems.append(
                f"{node.name}: no route to {peer.name}'s pod subnet {subnet} learned by BGP "
                f"(proto bird; expected via {via}): {peer.name}'s pods are unreachable from "
                f"{node.name}'s (`birdc show route {subnet} all`)"
            )
        elif got.via != via:
            problems.append(
                f"{node.name}: bird's route to {peer.name}'s pod subnet {subnet} goes via "
                f"{got.via}, not {via}"
            )
    return problems


class Bgp(Backend):
    name = "bgp"
    description = "Calico-shaped BGP: bird from Debian, no calico-node"
    family = "routing"
    provisioning = "provision.podnet.bgp"

    def dataplane(self, lab: Lab) -> str:
        return "bgp"

    def conflist(self, lab: Lab, node: Node, nic_mtu: int | None) -> dict[str, Any]:
        return bridge_conflist(lab, _own_subnet(lab, node), self.pod_mtu(lab), "0.0.0.0/0", {})

    def validate(self, lab: Lab) -> Iterator[Problem]:
        yield from routed_mtu_problems(lab)

    def render_files(self, lab: Lab, flannel_upstream: str | None) -> dict[str, str]:
        files = {}
        for node in lab.nodes:
            files[f"cni-{node.name}.conflist"] = render_cni_conflist_text(lab, node)
            files[f"bird-{node.name}.conf"] = render_bird_conf(lab, node)
        if lab.network.routed:
            files[f"bird-{lab.network.router_vm.name}.conf"] = render_router_bird_conf(lab)
        return files

    def expected_routes(self, lab: Lab, node: Node) -> tuple[str, ...]:
        subnets = self.planned_subnets(lab)
        assert subnets is not None
        return tuple(
            f"{subnets[p.name]} via {learned_via(lab, node, p)} dev {lab.vm.private_nic} proto bird"
            for p in lab.nodes
            if p.name != node.name
        )

    def restart(self, lab: Lab, node: Node) -> Restart:
        """bird stops on the node and starts again. Stopped, it withdraws the node's pod
        subnet from its peers and its learned routes from the kernel (no `persist`, no
        graceful restart here, unlike calico-node), so the node's pods are cut from every
        other node's while it is down; started, the sessions and routes come back."""
        return Restart(
            inject=(cmd("systemctl", "stop", BIRD_SERVICE),),
            heal=(cmd("systemctl", "start", BIRD_SERVICE),),
        )


def sessions_of(lab: Lab) -> Sequence[tuple[str, Peer]]:
    """(node, peer) of every session the lab implies, node side, in lab order."""
    return [(n.name, p) for n in lab.nodes for p in peers(lab, n)]


BGP = register(Bgp())
