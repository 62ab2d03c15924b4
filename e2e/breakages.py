"""The catalogue of real-world breakages (pure): each entry is a way a real cluster's pod
network broke (an upstream issue, or a step of the guide undone), how it is injected on a live
lab and undone, which labs it applies to (asked of the backend registry, never by a backend's
name), which tests must fail while it lasts and the words their failure must say.

`python -m lab breakages LAB` (app/breakages.py) runs them: inject, the e2e suite, undo, and a
detection matrix; docs/breakages.md is rendered from this module (`render_markdown`) and a unit
test keeps the two in step.

Plans are commands per node, functions of the lab and of a few facts read from the nodes just
before (`Facts`: the management address, the reverse-path filter, the private NIC's MTU), so an
undo puts back exactly what was there. An entry that changes the suite rather than the lab (the
echo server's answer) names a suite mutant instead (`mutant`, e2e/breakage_plugin.py)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Literal

from lab.common.commands import Command, cmd
from lab.model.config import Lab
from lab.model.underlay import segment_of
from lab.podnet import backend_of
from lab.podnet.bridge import CNI_CONFLIST_PATH, CNI_IPAM_DIR, CNI_NETWORK_NAME
from lab.podnet.vxlan import VXLAN_DEVICE, VXLAN_PORT

MANAGEMENT_NIC = "eth0"  # vagrant-libvirt's first NIC: the management network (DHCP)
MARK = "nl-breakage"  # written into what an injection creates, so its undo finds exactly that
CONSTANT_SEEN = "203.0.113.7"  # TEST-NET-3: the constant address the broken echo server prints

# test ids (fnmatch patterns on pytest node ids)
POD_MATRIX = "e2e/test_network_model.py::test_every_pod_reaches_every_pod_without_nat*"
NODE_MATRIX = (
    "e2e/test_network_model.py::test_every_node_reaches_every_pod_from_the_address_its_route_picks*"
)
IDENTITY = "e2e/test_network_model.py::test_every_pod_has_one_ip_which_it_and_its_peers_see_alike*"
SUBNETS = "e2e/test_network_model.py::test_node_pod_subnets_are_disjoint*"
MTU = "e2e/test_network_model.py::test_every_pod_has_the_labs_mtu*"
TUNNEL = "e2e/test_tunnel.py::*"
DATAPATH = "e2e/test_node_datapath.py::*"
SERVICES = "e2e/test_services.py::*"


@dataclass(frozen=True)
class NodeFacts:
    """What an undo must put back, read on the node just before the injection."""

    management: IPv4Address | None  # the management NIC's address (DHCP)
    rp_filter: Mapping[str, int]  # `all` and the arrival device -> value
    nic_mtu: int


@dataclass(frozen=True)
class Facts:
    nodes: Mapping[str, NodeFacts]


def probe_facts_commands(lab: Lab) -> tuple[Command, ...]:
    """Read-only, one round trip per node; `parse_facts` reads their outputs in this order."""
    dev = backend_of(lab).tunnel_device(lab) or lab.vm.private_nic
    return (
        cmd("ip", "-4", "-o", "addr", "show", "dev", MANAGEMENT_NIC),
        cmd("cat", "/proc/sys/net/ipv4/conf/all/rp_filter"),
        cmd("cat", f"/proc/sys/net/ipv4/conf/{dev}/rp_filter"),
        cmd("cat", f"/sys/class/net/{lab.vm.private_nic}/mtu"),
    )


def parse_facts(lab: Lab, outputs: tuple[str, str, str, str]) -> NodeFacts:
    addr, rp_all, rp_dev, mtu = outputs
    words = addr.split()
    management = None
    if "inet" in words[:-1]:
        management = IPv4Address(words[words.index("inet") + 1].split("/")[0])
    dev = backend_of(lab).tunnel_device(lab) or lab.vm.private_nic
    return NodeFacts(
        management,
        {"all": int(rp_all.strip() or 0), dev: int(rp_dev.strip() or 0)},
        int(mtu.strip()),
    )


Step = tuple[str, Command]  # (node, command)
Plan = Callable[[Lab, Facts], tuple[Step, ...]]
Named = Callable[[Lab], tuple[str, ...]]  # regexes every one of which a failure must match
Restore = Literal["commands", "reprovision", "snapshot"]


@dataclass(frozen=True)
class Breakage:
    id: str
    title: str
    source: str  # an upstream issue (owner/repo#N) or the guide step it undoes
    story: str  # what users saw
    applies: Callable[[Lab], bool]
    applies_to: str  # the same, said in words (docs)
    inject: Plan
    undo: Plan
    expected: tuple[str, ...]  # test-id patterns that must fail
    named: Named
    restore: Restore = "commands"  # after the undo commands: provision again, or a snapshot
    mutant: str = ""  # a suite mutant instead of (or beside) commands: NETLAB_BREAKAGE=mutant
    detectable: bool = True  # False: nothing can fail here, and why is in `note`
    note: str = ""
    how: str = ""  # the injection in words (docs)
    expected_words: str = ""  # what the failure must say, in words (docs)


# --- who is hit --------------------------------------------------------------------------------


def victim(lab: Lab) -> str:
    """The node a breakage hits: the last one (as the disruptive faults)."""
    return sorted(lab.node_names)[-1]


def bystander(lab: Lab) -> str:
    return sorted(lab.node_names)[0]


def subnets(lab: Lab) -> dict[str, IPv4Network]:
    planned = backend_of(lab).planned_subnets(lab)
    if planned is None:
        raise ValueError(f"lab {lab.name}: its cluster allots the pod subnets, not the lab file")
    return planned


def arrival(lab: Lab) -> str:
    return backend_of(lab).tunnel_device(lab) or lab.vm.private_nic


# --- applicability (the registry's properties, never a backend's name) -------------------------


def always(lab: Lab) -> bool:
    return True


def writes_conflist(lab: Lab) -> bool:
    """The lab writes the node's CNI config and allots its subnets (host-local on a /N)."""
    backend = backend_of(lab)
    return backend.allots_subnets(lab) and backend.conflist(lab, lab.nodes[0], 1500) is not None


def tunnels(lab: Lab) -> bool:
    return backend_of(lab).tunnels(lab)


def programs_tunnel(lab: Lab) -> bool:
    return backend_of(lab).programs_tunnel


def allots(lab: Lab) -> bool:
    return backend_of(lab).allots_subnets(lab)


def has_services(lab: Lab) -> bool:
    return lab.services is not None or lab.kubernetes is not None


def has_fleet_echo(lab: Lab) -> bool:
    """The suite's own echo server answers (CNI-direct or CRI pods), not agnhost."""
    return lab.kubernetes is None


# --- command helpers ---------------------------------------------------------------------------


def on(node: str, *argv: str) -> Step:
    return (node, cmd(*argv))


def sh(node: str, script: str) -> Step:
    return (node, cmd("sh", "-c", script))


def sed_pattern(text: str) -> str:
    """`text` as a sed basic regular expression matching itself (`|` is the delimiter)."""
    return "".join(f"\\{c}" if c in "\\.*[]^$|" else c for c in text)


def sed_conflist(node: str, old: str, new: str) -> Step:
    """Replace a JSON fragment of the node's conflist (as json.dumps(indent=2) writes it)."""
    return on(node, "sed", "-i", f"s|{sed_pattern(old)}|{new}|", CNI_CONFLIST_PATH)


def nothing(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    return ()


def _pod_route(lab: Lab, owner: str) -> tuple[str, ...]:
    """The victim's own route to `owner`'s pod subnet (`ip route replace` words): the next hop
    the backend expects there (BGP across a routed underlay: the router), else the owner's."""
    subnet = subnets(lab)[owner]
    if backend_of(lab).tunnel_device(lab):
        via = str(subnet.network_address)
        return (str(subnet), "via", via, "dev", arrival(lab), "onlink")
    expected = backend_of(lab).expected_routes(lab, lab.node(victim(lab)))
    words = next((r.split() for r in expected if r.split()[:1] == [str(subnet)]), [])
    via = words[words.index("via") + 1] if "via" in words[:-1] else str(lab.node(owner).ip)
    return (str(subnet), "via", via, "dev", lab.vm.private_nic)


def restart_routes_heal(lab: Lab) -> tuple[Step, ...]:
    """The backend's own way to put a node's pod routes back (networkd reconfigures)."""
    node = victim(lab)
    return tuple((node, c) for c in backend_of(lab).restart(lab, lab.node(node)).heal)


def _words(*fragments: str) -> Named:
    return lambda lab: fragments


def _facts(facts: Facts, node: str) -> NodeFacts:
    return facts.nodes[node]


# --- the entries -------------------------------------------------------------------------------


def _forward_drop(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    return (on(victim(lab), "iptables", "-P", "FORWARD", "DROP"),)


def _forward_accept(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    return (on(victim(lab), "iptables", "-P", "FORWARD", "ACCEPT"),)


def _sysctl(key: str, value: str) -> Plan:
    return lambda lab, facts: (on(victim(lab), "sysctl", "-w", f"{key}={value}"),)


def _dev_forwarding(value: str) -> Plan:
    return lambda lab, facts: (
        on(victim(lab), "sysctl", "-w", f"net/ipv4/conf/{arrival(lab)}/forwarding={value}"),
    )


def _unload_br_netfilter(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    return (on(victim(lab), "modprobe", "-r", "br_netfilter"),)


def _load_br_netfilter(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    node = victim(lab)
    return (
        on(node, "modprobe", "br_netfilter"),
        on(node, "sysctl", "-w", "net.bridge.bridge-nf-call-iptables=1"),
        on(node, "sysctl", "-w", "net.bridge.bridge-nf-call-ip6tables=1"),
    )


def _conflist_swap(old: Callable[[Lab], str], new: Callable[[Lab], str]) -> tuple[Plan, Plan]:
    def inject(lab: Lab, facts: Facts) -> tuple[Step, ...]:
        return (sed_conflist(victim(lab), old(lab), new(lab)),)

    def undo(lab: Lab, facts: Facts) -> tuple[Step, ...]:
        return (sed_conflist(victim(lab), new(lab), old(lab)),)

    return inject, undo


def wrong_pod_mtu(lab: Lab) -> int:
    """The MTU of the breakage: on a tunnel, the node NIC's (the VXLAN overhead forgotten,
    flannel-io/flannel#841); on host-gw, 100 bytes less than the lab's (a node configured
    by hand from another network's MTU)."""
    backend = backend_of(lab)
    return 1500 if backend.tunnels(lab) else backend.pod_mtu(lab) - 100


def _mtu_text(mtu: Callable[[Lab], int]) -> Callable[[Lab], str]:
    return lambda lab: f'"mtu": {mtu(lab)}'


def outside_subnet(lab: Lab) -> IPv4Network:
    """A /subnet_len just past the pod CIDR (10.244.0.0/16 -> 10.245.0.0/24): outside it."""
    cidr = lab.pod_network.cidr
    return IPv4Network((int(cidr.broadcast_address) + 1, lab.pod_network.subnet_len))


def _subnet_swap(lab: Lab, new: IPv4Network) -> tuple[tuple[str, str], tuple[str, str]]:
    old = subnets(lab)[victim(lab)]
    gw_old, gw_new = str(old.network_address + 1), str(new.network_address + 1)
    return (
        (f'"subnet": "{old}"', f'"subnet": "{new}"'),
        (f'"gateway": "{gw_old}"', f'"gateway": "{gw_new}"'),
    )


def _prefix24(subnet: IPv4Network) -> str:
    """`10.244.1.0/24` -> `10.244.1` (host-local's lease files are named by address)."""
    return str(subnet.network_address).rsplit(".", 1)[0]


def _subnet_plans(new: Callable[[Lab], IPv4Network]) -> tuple[Plan, Plan]:
    """The victim's host-local range moved to `new`: its conflist's subnet and gateway (the
    bridge plugin then adds the new gateway to the bridge: the undo removes it)."""

    def inject(lab: Lab, facts: Facts) -> tuple[Step, ...]:
        node = victim(lab)
        return tuple(sed_conflist(node, a, b) for a, b in _subnet_swap(lab, new(lab)))

    def undo(lab: Lab, facts: Facts) -> tuple[Step, ...]:
        node, target = victim(lab), new(lab)
        gw = f"{target.network_address + 1}/{target.prefixlen}"
        return (
            *(sed_conflist(node, b, a) for a, b in _subnet_swap(lab, target)),
            sh(node, f"ip addr del {gw} dev {lab.pod_network.bridge} 2>/dev/null || true"),
            sh(node, f"rm -f {CNI_IPAM_DIR}/{CNI_NETWORK_NAME}/{_prefix24(target)}.*"),
        )

    return inject, undo


def _drop_vxlan(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    rule = _vxlan_rule(lab)
    return (on(victim(lab), "iptables", "-I", "INPUT", *rule),)


def _undrop_vxlan(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    return (on(victim(lab), "iptables", "-D", "INPUT", *_vxlan_rule(lab)),)


def _vxlan_rule(lab: Lab) -> tuple[str, ...]:
    peer = lab.node(bystander(lab)).ip
    return ("-s", str(peer), "-p", "udp", "--dport", str(VXLAN_PORT), "-j", "DROP")


def _vtep(node: str, local: str, dev: str) -> Step:
    return on(
        node, *("ip", "link", "set", VXLAN_DEVICE, "type", "vxlan"), "local", local, "dev", dev
    )


def _vtep_to_management(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    node = victim(lab)
    mgmt = _facts(facts, node).management
    if mgmt is None:
        raise ValueError(f"{node}: no address on {MANAGEMENT_NIC} to bind the VTEP to")
    return (_vtep(node, str(mgmt), MANAGEMENT_NIC),)


def _vtep_back(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    node = victim(lab)
    return (_vtep(node, str(lab.node(node).ip), lab.vm.private_nic),)


def _offload_on(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    return tuple(
        on(n, "ethtool", "-K", VXLAN_DEVICE, "tx-checksum-ip-generic", "on")
        for n in sorted(lab.node_names)
    )


def _rp_strict(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    """The victim's route back to the bystander's pods through the management network (via
    the bystander's management address: it works, asymmetrically), and strict rp_filter."""
    node, other = victim(lab), bystander(lab)
    mgmt = _facts(facts, other).management
    if mgmt is None:
        raise ValueError(f"{other}: no address on {MANAGEMENT_NIC} to route through")
    return (
        on(
            node,
            "ip",
            "route",
            "replace",
            str(subnets(lab)[other]),
            "via",
            str(mgmt),
            "dev",
            MANAGEMENT_NIC,
        ),
        on(node, "sysctl", "-w", "net.ipv4.conf.all.rp_filter=1"),
        on(node, "sysctl", "-w", f"net/ipv4/conf/{arrival(lab)}/rp_filter=1"),
    )


def _rp_back(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    node, other = victim(lab), bystander(lab)
    rp = _facts(facts, node).rp_filter
    return (
        on(node, "ip", "route", "replace", *_pod_route(lab, other)),
        *(
            on(node, "sysctl", "-w", f"net/ipv4/conf/{dev}/rp_filter={value}")
            for dev, value in sorted(rp.items())
        ),
    )


def _fill_leases(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    """Every free address of the victim's range reserved, as leaked leases are (files of
    host-local's data dir), each marked so the undo removes exactly those."""
    node = victim(lab)
    subnet = subnets(lab)[node]
    first, last = subnet.network_address + 2, subnet.broadcast_address - 1
    base = str(subnet.network_address).rsplit(".", 1)[0]
    d = f"{CNI_IPAM_DIR}/{CNI_NETWORK_NAME}"
    script = (
        f"mkdir -p {d} && for i in $(seq {int(first) & 255} {int(last) & 255}); do "
        f'f={d}/{base}.$i; [ -e "$f" ] || printf "{MARK}\\neth0" > "$f"; done'
    )
    if subnet.prefixlen != 24:
        raise ValueError(f"the lease filler handles /24 node subnets, not {subnet}")
    return (sh(node, script),)


def _free_leases(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    d = f"{CNI_IPAM_DIR}/{CNI_NETWORK_NAME}"
    return (sh(victim(lab), f"grep -l -x {MARK} {d}/* 2>/dev/null | xargs -r rm -f"),)


def stale_route(lab: Lab) -> tuple[IPv4Network, IPv4Address]:
    """The first half of the victim's pod subnet, routed on the bystander via an address of
    its link no node holds (the deleted node's; on a routed underlay, of the bystander's
    segment, not the router's): more specific, so it wins."""
    theirs = subnets(lab)[victim(lab)]
    half = next(theirs.subnets(prefixlen_diff=1))
    segment = segment_of(lab, lab.node(bystander(lab)))
    link = lab.network.private if segment is None else segment.cidr
    taken = {n.ip for n in lab.nodes} | ({segment.router_address} if segment else set())
    gone = next(a for a in reversed(list(link.hosts())) if a not in taken)
    return half, gone


def _add_stale(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    half, gone = stale_route(lab)
    return (
        on(
            bystander(lab),
            "ip",
            "route",
            "add",
            str(half),
            "via",
            str(gone),
            "dev",
            lab.vm.private_nic,
        ),
    )


def _del_stale(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    half, gone = stale_route(lab)
    return (on(bystander(lab), "ip", "route", "del", str(half), "via", str(gone)),)


def _udp_masq_rule(lab: Lab) -> tuple[str, ...]:
    own = str(subnets(lab)[bystander(lab)])
    return ("-s", own, "!", "-d", own, "-p", "udp", "-j", "MASQUERADE")


def _udp_masq(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    return (on(bystander(lab), "iptables", "-t", "nat", "-I", "POSTROUTING", *_udp_masq_rule(lab)),)


def _udp_unmasq(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    return (on(bystander(lab), "iptables", "-t", "nat", "-D", "POSTROUTING", *_udp_masq_rule(lab)),)


def _routes_gone(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    node = victim(lab)
    return tuple((node, c) for c in backend_of(lab).restart(lab, lab.node(node)).inject)


def _routes_back(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    return restart_routes_heal(lab)


def _fdb_del(lab: Lab, facts: Facts) -> tuple[Step, ...]:
    from lab.podnet.vxlan import vtep_mac

    peer = lab.node(bystander(lab))
    return (
        on(
            victim(lab),
            "bridge",
            "fdb",
            "del",
            vtep_mac(peer),
            "dev",
            VXLAN_DEVICE,
            "dst",
            str(peer.ip),
        ),
    )


def _nic_mtu(value: Callable[[Lab, Facts], int]) -> Plan:
    return lambda lab, facts: (
        on(bystander(lab), "ip", "link", "set", lab.vm.private_nic, "mtu", str(value(lab, facts))),
    )


UNDERLAY_MTU = 1400


def catalogue() -> tuple[Breakage, ...]:  # pragma: no mutate block (the table: data)
    """The catalogue, built at each call: its plans come from factories (`_sysctl`,
    `_conflist_swap`, ...) that must run in the caller's process, not once at import
    (docs/mutation.md, "functions the modules call while they are imported")."""
    return (
        Breakage(
            "forward-policy-drop",
            "iptables FORWARD policy DROP on one node",
            "kubernetes/kubernetes#40182 (moby/moby#28257; fixed in flannel by "
            "flannel-io/flannel#872)",
            "Docker >= 1.13 sets the FORWARD policy to DROP when it enables ip_forward: pods on "
            "the guide's hosts (Docker 19.03) lose every forwarded packet unless something accepts "
            "the pod CIDR",
            always,
            "every lab",
            _forward_drop,
            _forward_accept,
            (POD_MATRIX, NODE_MATRIX, DATAPATH),
            _words(r"FORWARD chain's policy DROP"),
            how="`iptables -P FORWARD DROP` on the last node",
            expected_words="the FORWARD chain's policy DROP, with the pod packet it drops",
        ),
        Breakage(
            "ip-forward-off",
            "net.ipv4.ip_forward = 0 on one node",
            "the guide's step 4 (开启路由转发), undone; weaveworks/weave#3280, cilium/cilium#8476",
            "a node that does not route: its pods reach nothing off the node and nothing reaches "
            "them",
            always,
            "every lab",
            _sysctl("net.ipv4.ip_forward", "0"),
            _sysctl("net.ipv4.ip_forward", "1"),
            (POD_MATRIX, NODE_MATRIX, DATAPATH),
            _words(r"net\.ipv4\.ip_forward = 0"),
            how="`sysctl -w net.ipv4.ip_forward=0` on the last node",
            expected_words="net.ipv4.ip_forward = 0",
            detectable=False,
            note="undetectable while pods come and go: the bridge plugin (isGateway, as flannel's "
            "delegate has it) writes net.ipv4.ip_forward = 1 at its next ADD, so the suite's own "
            "pods heal the node before any probe (the first run found it: every test passed); "
            "a node stays broken only until its next pod, or by its interfaces' own switch "
            "(forwarding-off-on-arrival-nic)",
        ),
        Breakage(
            "forwarding-off-on-arrival-nic",
            "forwarding off on the NIC other nodes' pod packets arrive on",
            "projectcalico/cni-plugin#283 (per-interface forwarding), "
            "ovn-kubernetes/ovn-kubernetes#3374",
            "net.ipv4.ip_forward = 1, yet one interface's own forwarding switch is off (a hardened "
            "host, a NIC brought up by another network manager): what arrives on it is not routed",
            always,
            "every lab",
            _dev_forwarding("0"),
            _dev_forwarding("1"),
            (POD_MATRIX, NODE_MATRIX, DATAPATH),
            lambda lab: (rf"net\.ipv4\.conf\.{re.escape(arrival(lab))}\.forwarding = 0",),
            how="`sysctl -w net/ipv4/conf/DEV/forwarding=0` on the last node (DEV: eth1 on "
            "host-gw, "
            "flannel.1 on VXLAN)",
            expected_words="net.ipv4.conf.DEV.forwarding = 0",
        ),
        Breakage(
            "bridge-nf-call-iptables-off",
            "net.bridge.bridge-nf-call-iptables = 0 on one node",
            "kubernetes/kubernetes#87426, kelseyhightower/kubernetes-the-hard-way#561; the guide's "
            "step 3",
            "a pod reaching a ClusterIP whose endpoint is on its own bridge gets the answer from "
            "the "
            "endpoint's own address (never translated back) and drops it; DNS fails when CoreDNS "
            "shares the node",
            has_services,
            "labs with Services (the CI labs' kube-proxy-shaped rules, or Kubernetes)",
            _sysctl("net.bridge.bridge-nf-call-iptables", "0"),
            _sysctl("net.bridge.bridge-nf-call-iptables", "1"),
            (SERVICES, DATAPATH),
            _words(r"bridge-nf-call-iptables = 0"),
            how="`sysctl -w net.bridge.bridge-nf-call-iptables=0` on the last node",
            expected_words="net.bridge.bridge-nf-call-iptables = 0",
        ),
        Breakage(
            "br-netfilter-unloaded",
            "br_netfilter unloaded on one node",
            "cloudnativelabs/kube-router#151, Azure/acs-engine#539; the guide's step 3",
            "the same as bridge-nf-call-iptables = 0, and the sysctl is gone with the module",
            has_services,
            "labs with Services",
            _unload_br_netfilter,
            _load_br_netfilter,
            (SERVICES, DATAPATH),
            _words(r"br_netfilter is not loaded"),
            how="`modprobe -r br_netfilter` on the last node",
            expected_words="br_netfilter is not loaded",
        ),
        Breakage(
            "bridge-ipmasq-one-node",
            "the bridge conflist's ipMasq on one node",
            "kubernetes/kubernetes#27132 (kubenet's bridge masqueraded pod traffic; turned off)",
            "the bridge plugin masquerades its pods' traffic leaving their subnet: other nodes' "
            "pods see the node's address, not the pod's",
            writes_conflist,
            "labs whose CNI config the lab writes (bridge + host-local)",
            *_conflist_swap(lambda lab: '"ipMasq": false', lambda lab: '"ipMasq": true'),
            (POD_MATRIX, IDENTITY, DATAPATH),
            _words(r"ipMasq = true"),
            how='`"ipMasq": true` in the last node\'s conflist (new pods get a MASQUERADE chain)',
            expected_words="ipMasq = true (the conflist differs from the lab's), the NAT'd cells",
        ),
        Breakage(
            "pod-mtu-mismatch-one-node",
            "a pod-network MTU other than the lab's on one node",
            "flannel-io/flannel#841 (the VXLAN overhead not taken off), flannel-io/flannel#463",
            "pods of one node send packets the path cannot carry (VXLAN) or use a smaller MTU than "
            "their peers",
            writes_conflist,
            "labs whose CNI config the lab writes",
            *_conflist_swap(
                _mtu_text(lambda lab: backend_of(lab).pod_mtu(lab)), _mtu_text(wrong_pod_mtu)
            ),
            (MTU, DATAPATH),
            lambda lab: (rf"MTU is {wrong_pod_mtu(lab)}|mtu = {wrong_pod_mtu(lab)}",),
            how="the last node's conflist `mtu` changed (tunnel: 1500, the NIC's; host-gw: 100 "
            "less)",
            expected_words="the pod's eth0 MTU and the lab's, side by side",
        ),
        Breakage(
            "vxlan-port-dropped",
            "UDP 8472 dropped between two nodes",
            "flannel-io/flannel#871, kubernetes/website#13789, flannel-io/flannel#2055",
            "a firewall (cloud security group, firewalld) lets TCP through but not VXLAN's UDP: "
            "pods reach pods of their own node only",
            tunnels,
            "tunnel labs (VXLAN)",
            _drop_vxlan,
            _undrop_vxlan,
            (POD_MATRIX, DATAPATH),
            _words(rf"drops the tunnel's UDP {VXLAN_PORT}"),
            how="`iptables -I INPUT -s FIRST_NODE -p udp --dport 8472 -j DROP` on the last node",
            expected_words="the INPUT rule that drops the tunnel's UDP 8472, and from which node",
        ),
        Breakage(
            "vtep-on-management-nic",
            "the VTEP bound to the management NIC",
            "flannel-io/flannel#764 (troubleshooting: Vagrant's eth0), kubernetes/website#6870; "
            "the guide's --iface=eth1",
            "flannel without --iface picks the default-route NIC: on Vagrant the NAT'd management "
            "one, so the VTEP sends from an address the other nodes do not route to",
            programs_tunnel,
            "labs that program the tunnel from the lab file",
            _vtep_to_management,
            _vtep_back,
            (TUNNEL,),
            _words(r"is the management address"),
            how="`ip link set flannel.1 type vxlan local MGMT_IP dev eth0` on the last node",
            expected_words="flannel.1 sends from the management address; pass --iface=eth1",
        ),
        Breakage(
            "pod-cidr-outside-network",
            "a node's pod CIDR outside the cluster's Network",
            "flannel-io/flannel#1428, flannel-io/flannel#1983 (--pod-network-cidr and "
            "net-conf.json "
            "Network differ)",
            "a node hands out addresses outside the network every other node routes: its pods are "
            "reachable from nowhere",
            writes_conflist,
            "labs whose CNI config the lab writes",
            *_subnet_plans(outside_subnet),
            (SUBNETS, POD_MATRIX, DATAPATH),
            _words(r"outside the cluster pod CIDR"),
            how="the last node's host-local range moved just past the pod CIDR (10.245.0.0/24)",
            expected_words="the node's subnet, outside the cluster pod CIDR (the node's new pods "
            "fail first: the bridge plugin refuses, cni0 already has an IP address different from "
            "the new gateway)",
        ),
        Breakage(
            "checksum-offload-flannel1",
            "tx checksum offload on flannel.1",
            "kubernetes/kubernetes#88986 (flannel-io/flannel#1282, projectcalico/calico#3145)",
            "on kernels before the fix, VXLAN packets of SNAT'd flows left with a bad UDP checksum "
            "and were dropped: the first SYNs of a ClusterIP connection lost, 63 s delays",
            tunnels,
            "tunnel labs",
            _offload_on,
            nothing,
            (POD_MATRIX,),
            _words(r"kubernetes#88986"),
            restore="reprovision",  # el7's step 13a turns it off again; Debian's default is on
            detectable=False,
            note="undetectable here: the nodes' Debian 12 kernel (6.1) carries the fix (5.7's "
            "'netfilter: nat: never update the UDP checksum when it's 0'), and offload is already "
            "on by default, so nothing breaks; on a kernel with the bug (CentOS 7's 3.10 without "
            "the guide's step 13a) the matrices' S cells name it with that hint",
            how="`ethtool -K flannel.1 tx-checksum-ip-generic on` on every node",
            expected_words="a SYN retransmit, with the checksum-offload hint",
        ),
        Breakage(
            "strict-rp-filter-asymmetric",
            "strict rp_filter with an asymmetric route",
            "projectcalico/felix#2082, cilium/cilium#13130 (multi-homed nodes, strict RPF)",
            "a multi-homed node whose route back to some pods leaves by another NIC than their "
            "packets arrive on drops them when rp_filter is strict (1)",
            allots,  # the route it bends is to a node subnet the lab file allots
            "labs whose lab file allots the node subnets",
            _rp_strict,
            _rp_back,
            (POD_MATRIX, DATAPATH),
            _words(r"strict rp_filter"),
            how="on the last node: the first node's pod subnet routed via its management address "
            "on eth0, and rp_filter = 1",
            expected_words="strict rp_filter, and the route that leaves by the other NIC",
        ),
        Breakage(
            "host-local-exhausted",
            "an exhausted host-local range",
            "kubernetes/kubernetes#57280, flannel-io/flannel#1416, cloudnativelabs/kube-router#383",
            "leaked leases fill host-local's data dir: every new pod on the node fails with 'no IP "
            "addresses available in range set'",
            writes_conflist,
            "labs whose CNI config the lab writes",
            _fill_leases,
            _free_leases,
            (POD_MATRIX, DATAPATH),  # its fleet cannot be made: every test that needs it errors
            _words(r"no IP addresses available"),
            how="every free address of the last node's range written as a lease file",
            expected_words="no IP addresses available in range set",
        ),
        Breakage(
            "duplicated-pod-ip",
            "the same pod IPs on two nodes (overlapping ranges)",
            "kubernetes/kubernetes#21458 (nodes with one podCIDR), weaveworks/weave#3793, "
            "flannel-io/flannel#1550",
            "two nodes hand out the same range: pods on both get the same IPs, and a packet for "
            "one "
            "reaches the other or its own node's twin",
            writes_conflist,
            "labs whose CNI config the lab writes",
            *_subnet_plans(lambda lab: subnets(lab)[bystander(lab)]),
            (SUBNETS, POD_MATRIX, DATAPATH),
            _words(r"overlaps"),
            how="the last node's host-local range set to the first node's",
            expected_words="one node's subnet overlaps the other's (the node's new pods fail "
            "first: cni0 already has an IP address different from the new gateway)",
        ),
        Breakage(
            "stale-route-deleted-node",
            "a stale pod route left by a deleted node",
            "flannel-io/flannel#2554, flannel-io/flannel#801, flannel-io/flannel#1546",
            "a route to a deleted node's subnet survives; when that subnet is handed to a new node "
            "the stale, more specific route still sends its pods' packets to the dead address",
            allots,
            "labs whose lab file allots the node subnets",
            _add_stale,
            _del_stale,
            (POD_MATRIX, DATAPATH),
            _words(r"which is no node of the lab"),
            how="on the first node: half of the last node's pod subnet routed via a private "
            "address "
            "no node holds",
            expected_words="the route, and that its gateway is no node of the lab",
        ),
        Breakage(
            "echo-constant-address",
            "the echo server prints a constant address",
            "issue 28 (a check that trusts any answer); kubernetes' agnhost netexec /clientip",
            "a probe that passes whenever some server answers with the right-looking source",
            has_fleet_echo,
            "labs whose pods run the suite's echo server (CNI, CRI)",
            nothing,
            nothing,
            (POD_MATRIX, NODE_MATRIX, IDENTITY),
            _words(rf"seen as {re.escape(CONSTANT_SEEN)}"),
            mutant="echo-constant-address",
            how=f"the suite's echo server answers `SEEN` = {CONSTANT_SEEN} (a suite mutant)",
            expected_words=f"the cells seen as {CONSTANT_SEEN}",
        ),
        Breakage(
            "echo-answers-as-another-pod",
            "the echo server answers as another pod",
            "issue 28; kubernetes' agnhost netexec /hostname (every probe says which pod answered)",
            "traffic for one pod answered by another (a stale DNAT, a reused IP) passes a check "
            "that only reads the source",
            has_fleet_echo,
            "labs whose pods run the suite's echo server",
            nothing,
            nothing,
            (POD_MATRIX,),
            _words(
                r"answered by (\S+)-p[01]; observed reachable, seen as \S+, answered by \1-p[01]"
            ),
            mutant="echo-answers-as-another-pod",
            how="the suite's echo server names its node's other fleet pod (a suite mutant)",
            expected_words="expected answered by one pod, observed answered by its sibling",
        ),
        Breakage(
            "udp-only-masquerade-one-node",
            "a UDP-only masquerade rule on one node",
            "flannel-io/flannel#835, flannel-io/flannel#964 (flannel's masquerade catches more "
            "than "
            "asked)",
            "a masquerade rule that only UDP meets (DNS, conntrack): TCP checks pass, UDP between "
            "pods is NAT'd",
            allots,
            "labs whose lab file allots the node subnets",
            _udp_masq,
            _udp_unmasq,
            (POD_MATRIX, DATAPATH),
            _words(r"translates udp pod traffic"),
            how="`iptables -t nat -I POSTROUTING -s FIRST_SUBNET ! -d FIRST_SUBNET -p udp -j "
            "MASQUERADE` on the first node",
            expected_words="the rule that translates udp pod traffic; exactly the UDP cells from "
            "that node's pods",
        ),
        Breakage(
            "pod-routes-lost",
            "a node's routes to the other nodes' pod subnets lost",
            "flannel-io/flannel#801 (host-gw routes not replaced), flannel-io/flannel#533",
            "the node's pods and the node reach only their own subnet",
            allots,
            "labs whose lab file allots the node subnets",
            _routes_gone,
            _routes_back,
            (POD_MATRIX, NODE_MATRIX, DATAPATH),
            _words(r"no route to \S+'s pod subnet"),
            how="the backend's own restart fault, without its heal: `ip route del` of each route",
            expected_words="no route to the other node's pod subnet",
        ),
        Breakage(
            "fdb-entry-lost",
            "a VXLAN FDB entry lost",
            "flannel-io/flannel#533 (stale VTEP after reboot), flannel-io/flannel#426",
            "the node cannot encapsulate for one peer: every cell between the two fails",
            programs_tunnel,
            "labs that program the tunnel from the lab file",
            _fdb_del,
            nothing,
            (POD_MATRIX, TUNNEL),
            _words(r"no FDB entry"),
            restore="reprovision",
            how="`bridge fdb del PEER_VTEP_MAC dev flannel.1 dst PEER_IP` on the last node; undone "
            "by provisioning again",
            expected_words="no FDB entry, with the command that puts it back",
        ),
        Breakage(
            "underlay-mtu-smaller",
            "the node network's MTU smaller on one node",
            "kubernetes-sigs/cluster-api-provider-azure#1335 (Azure's 1400), "
            "flannel-io/flannel#841",
            "the private network carries less than the pods send: full-size packets are refused on "
            "the way",
            always,
            "every lab",
            _nic_mtu(lambda lab, facts: UNDERLAY_MTU),
            _nic_mtu(lambda lab, facts: _facts(facts, bystander(lab)).nic_mtu),
            (MTU,),
            _words(r"refused at MTU \d+, not at the pod(?: network)?'s \d+"),
            how=f"`ip link set eth1 mtu {UNDERLAY_MTU}` on the first node",
            expected_words="the MTU the path refused at, and the pod's",
        ),
        Breakage(
            "hairpin-off-one-node",
            "hairpin mode off on one node's bridge ports",
            "kubernetes/kubernetes#20475 (a pod cannot reach itself through its Service)",
            "a pod whose Service sends it back to itself gets no answer (the bridge will not send "
            "a "
            "frame out of the port it came in by)",
            writes_conflist,
            "labs whose CNI config the lab writes",
            *_conflist_swap(lambda lab: '"hairpinMode": true', lambda lab: '"hairpinMode": false'),
            (SERVICES, DATAPATH),
            _words(r"hairpinMode = false"),
            how='`"hairpinMode": false` in the last node\'s conflist',
            expected_words="hairpinMode = false (the conflist differs from the lab's)",
        ),
    )


def by_id() -> dict[str, Breakage]:
    return {b.id: b for b in catalogue()}


def applicable(lab: Lab) -> tuple[Breakage, ...]:
    return tuple(b for b in catalogue() if b.applies(lab))


def suite_files(chosen: tuple[Breakage, ...] | list[Breakage]) -> tuple[str, ...]:
    """The test files the chosen breakages' expectations name (the subset that matters: the
    CNI contract and the pod creation flow, which make pods of their own, are left out unless
    an entry names them); `e2e` when an entry names every test."""
    files = set()
    for b in chosen:
        for pattern in b.expected:
            path = pattern.split("::", 1)[0]
            if "*" in path:
                return ("e2e",)
            files.add(path)
    return tuple(sorted(files))


def plan_inject(b: Breakage, lab: Lab, facts: Facts) -> tuple[Step, ...]:
    return b.inject(lab, facts)


def plan_undo(b: Breakage, lab: Lab, facts: Facts) -> tuple[Step, ...]:
    return b.undo(lab, facts)


# --- docs/breakages.md -------------------------------------------------------------------------

DOCS_BEGIN = "<!-- catalogue: generated by e2e/breakages.py render_markdown; do not edit -->"
DOCS_END = "<!-- end of the generated catalogue -->"


def example_facts(lab: Lab) -> Facts:
    """Facts as a freshly provisioned node of the lab shows them (the docs' examples):
    management addresses .11, .12, ... of the management network, systemd's loose rp_filter."""
    dev = arrival(lab)
    hosts = lab.network.management.hosts()
    skip = [next(hosts) for _ in range(10)]
    assert skip
    return Facts(
        {name: NodeFacts(next(hosts), {"all": 2, dev: 2}, 1500) for name in sorted(lab.node_names)}
    )


def _shown(steps: tuple[Step, ...]) -> list[str]:
    from lab.common.commands import render_remote

    return [f"    [{node}] {render_remote(c)}" for node, c in steps] or ["    (nothing)"]


def render_markdown(labs: tuple[Lab, ...]) -> str:
    """The catalogue part of docs/breakages.md, from this module and the shipped CI labs."""
    out = [DOCS_BEGIN, ""]
    for i, b in enumerate(catalogue(), 1):
        where = (
            ", ".join(f"`{lab.name}`" for lab in labs if b.applies(lab)) or "none of the CI labs"
        )
        out += [
            f"### {i}. `{b.id}`: {b.title}",
            "",
            f"- **Source:** {b.source}",
            f"- **What users saw:** {b.story}",
            f"- **Applies to:** {b.applies_to} (here: {where})",
            f"- **Injected:** {b.how}"
            + (
                f" (suite mutant `NETLAB_BREAKAGE={b.mutant}`)"
                if b.mutant and b.mutant not in b.how
                else ""
            ),
            "- **Undone by:** its undo commands"
            + {
                "commands": "",
                "reprovision": ", then provisioning again",
                "snapshot": ", then the snapshot",
            }[b.restore]
            + "; a snapshot restore if the lab is still not healthy",
            f"- **Must fail:** {', '.join(f'`{p}`' for p in b.expected)}",
            f"- **The failure must say:** {b.expected_words} (patterns: "
            + ", ".join(f"`{p}`" for p in b.named(labs[0]))
            + ")",
        ]
        if b.note:
            out.append(f"- **Note:** {b.note}")
        for lab in labs:
            if b.applies(lab) and not b.mutant:
                facts = example_facts(lab)
                out += [
                    "",
                    f"  On `{lab.name}` (example facts):",
                    "",
                    "  ```",
                    "  inject:",
                    *(f"  {line}" for line in _shown(plan_inject(b, lab, facts))),
                    "  undo:",
                    *(f"  {line}" for line in _shown(plan_undo(b, lab, facts))),
                    "  ```",
                ]
                break
        out.append("")
    out.append(DOCS_END)
    return "\n".join(out) + "\n"


def docs_with_catalogue(docs: str, labs: tuple[Lab, ...]) -> str:
    """docs/breakages.md with its generated part replaced by the current catalogue."""
    head, _, rest = docs.partition(DOCS_BEGIN)
    _, _, tail = rest.partition(DOCS_END + "\n")
    return head + render_markdown(labs) + tail


def main(argv: list[str]) -> int:  # pragma: no mutate block (I/O)
    """`python -m e2e.breakages docs/breakages.md`: rewrite the file's generated catalogue."""
    from pathlib import Path

    from lab.model import paths
    from lab.model.labfile import load_lab

    labs = tuple(
        load_lab(paths.LABS_DIR / f"{n}.yaml") for n in ("ci-debian12", "ci-debian12-vxlan")
    )
    for name in argv:
        path = Path(name)
        path.write_text(docs_with_catalogue(path.read_text(), labs))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
