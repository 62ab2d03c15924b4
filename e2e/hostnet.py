"""What a node's kernel and files must hold for the pod network, read in one round trip and
judged against the lab file (pure): the sysctls and the module the guide's OS steps set, the
firewall's verdict on pod traffic and on the tunnel's packets, the NAT pod traffic meets on its
way to another pod, the routes into the pod CIDR, strict reverse-path filtering against those
routes, the CNI config the runtime reads, and room left in host-local's range.

Each problem names the setting, its value, what it breaks and (where there is one) the upstream
story, so a failed check says what is wrong rather than only that cells failed. The breakage
catalogue (e2e/breakages.py) injects each of these on a live lab; the runner's health check
between breakages reads the same state (app/breakages.py).

The firewall and NAT judgements walk iptables-save's rules for one sample packet (a new TCP or
UDP flow between two pods of different nodes, or the tunnel's UDP from a peer): a rule whose
match this model does not know is taken as not matching, so an unknown rule never invents a
problem."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network
from typing import Any

from lab.common.commands import Command, Output, cmd
from lab.model.config import Lab, Node
from lab.podnet import backend_of
from lab.podnet.bridge import CNI_CONFLIST_PATH, CNI_IPAM_DIR, CNI_NETWORK_NAME

# --- iptables-save, parsed --------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    chain: str
    words: tuple[str, ...]  # the rule's words after `-A CHAIN`
    text: str  # the line as iptables-save prints it

    @property
    def target(self) -> str:
        words = self.words
        for i, w in enumerate(words[:-1]):
            if w in ("-j", "--jump", "-g", "--goto"):
                return words[i + 1]
        return ""


@dataclass(frozen=True)
class Table:
    policies: Mapping[str, str]  # builtin chain -> ACCEPT | DROP
    rules: Mapping[str, tuple[Rule, ...]]  # chain -> its rules in order


def parse_iptables_save(text: str) -> dict[str, Table]:
    """`iptables-save` -> table name -> its chains' policies and rules."""
    tables: dict[str, Table] = {}
    name = ""
    policies: dict[str, str] = {}
    rules: dict[str, list[Rule]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            name, policies, rules = line[1:], {}, {}
        elif line.startswith(":") and name:
            parts = line[1:].split()
            if len(parts) >= 2:
                rules.setdefault(parts[0], [])
                if parts[1] != "-":
                    policies[parts[0]] = parts[1]
        elif line.startswith("-A ") and name:
            try:
                words = shlex.split(line)
            except ValueError:
                continue
            if len(words) >= 2:
                rules.setdefault(words[1], []).append(Rule(words[1], tuple(words[2:]), line))
        elif line == "COMMIT" and name:
            tables[name] = Table(dict(policies), {k: tuple(v) for k, v in rules.items()})
            name = ""
    return tables


@dataclass(frozen=True)
class Packet:
    """One sample packet of a new flow, as the kernel shows it to a netfilter hook."""

    src: IPv4Address
    dst: IPv4Address
    proto: str  # tcp | udp
    dport: int
    iif: str = ""
    oif: str = ""


def _net_match(value: str, address: IPv4Address) -> bool:
    try:
        return address in ip_network(value, strict=False)
    except ValueError:
        return False


def _mark_match(spec: str) -> bool:
    """`--mark V[/M]` on a packet that carries no mark (0)."""
    value, _, mask = spec.partition("/")
    try:
        v = int(value, 0)
        m = int(mask, 0) if mask else 0xFFFFFFFF
    except ValueError:
        return False
    return (0 & m) == v


def rule_matches(rule: Rule, packet: Packet) -> bool | None:
    """Whether the rule's matches take `packet`; None when a match is one this model does not
    know (the caller takes it as not matching)."""
    words = list(rule.words)
    i, negate = 0, False
    while i < len(words):
        w = words[i]
        if w == "!":
            negate, i = True, i + 1
            continue
        arg = words[i + 1] if i + 1 < len(words) else ""
        result: bool | None
        step = 2
        if w in ("-j", "--jump", "-g", "--goto"):
            return True  # the target's own options follow
        if w in ("-s", "--source"):
            result = _net_match(arg, packet.src)
        elif w in ("-d", "--destination"):
            result = _net_match(arg, packet.dst)
        elif w in ("-p", "--protocol"):
            result = arg in (packet.proto, "all")
        elif w in ("-i", "--in-interface"):
            result = _iface_match(arg, packet.iif)
        elif w in ("-o", "--out-interface"):
            result = _iface_match(arg, packet.oif)
        elif w in ("--dport", "--destination-port"):
            result = arg == str(packet.dport)
        elif w == "-m":
            result = True  # a module's own options are judged as they come
        elif w == "--comment":
            result = True
        elif w == "--mark":
            result = _mark_match(arg)
        elif w == "--ctstate":
            result = "NEW" in arg.split(",")
        elif w in ("--dst-type", "--src-type"):
            result = False if arg == "LOCAL" else None
        else:
            return None
        if result is None:
            return None
        if negate:
            result, negate = not result, False
        if not result:
            return False
        i += step
    return True


def _iface_match(pattern: str, iface: str) -> bool | None:
    if not iface:
        return None
    if pattern.endswith("+"):
        return iface.startswith(pattern[:-1])
    return pattern == iface


TERMINAL = ("ACCEPT", "DROP", "REJECT", "MASQUERADE", "SNAT", "DNAT", "RETURN")


@dataclass(frozen=True)
class Verdict:
    target: str  # ACCEPT, DROP, REJECT, MASQUERADE, SNAT, DNAT, or the policy's
    rule: Rule | None  # None: the chain's policy decided


def verdict(table: Table, chain: str, packet: Packet, depth: int = 0) -> Verdict:
    """The first terminal target `packet` meets from `chain` (jumping into user chains; RETURN
    goes back), else the builtin chain's policy (ACCEPT when it has none)."""
    found = _walk(table, chain, packet, depth)
    if found is not None and found.target != "RETURN":
        return found
    return Verdict(table.policies.get(chain, "ACCEPT"), None)


def _walk(table: Table, chain: str, packet: Packet, depth: int) -> Verdict | None:
    if depth > 16:
        return None
    for rule in table.rules.get(chain, ()):
        if rule_matches(rule, packet) is not True:
            continue
        target = rule.target
        if target in TERMINAL:
            return Verdict(target, rule)
        if target in table.rules:  # a user chain: RETURN there (or its end) comes back here
            found = _walk(table, target, packet, depth + 1)
            if found is not None and found.target != "RETURN":
                return found
    return None


# --- one node's state ------------------------------------------------------------------------

ROUTES = cmd("ip", "-4", "route", "show")
SAVE = cmd("iptables-save")


def conflist_of(lab: Lab) -> bool:
    """The lab writes the node's CNI config itself (else the backend installs its own)."""
    return backend_of(lab).conflist(lab, lab.nodes[0], 1500) is not None


def rp_devices(lab: Lab) -> tuple[str, ...]:
    """Where reverse-path filtering is read: `all` and where other nodes' pod packets arrive."""
    return ("all", arrival_device(lab))


def probe_commands(lab: Lab) -> tuple[Command, ...]:
    """Read-only, one round trip; `parse_node_state` takes their outputs in this order."""
    nic = lab.vm.private_nic
    ipam = f"{CNI_IPAM_DIR}/{CNI_NETWORK_NAME}"
    return (
        cmd("cat", "/proc/sys/net/ipv4/ip_forward"),
        cmd("cat", "/proc/sys/net/bridge/bridge-nf-call-iptables"),
        cmd(
            "grep", "-H", ".", *(f"/proc/sys/net/ipv4/conf/{d}/rp_filter" for d in rp_devices(lab))
        ),
        SAVE,
        ROUTES,
        cmd("cat", f"/sys/class/net/{nic}/mtu"),
        cmd("cat", CNI_CONFLIST_PATH) if conflist_of(lab) else cmd("true"),
        cmd("ls", "-1", ipam) if conflist_of(lab) else cmd("true"),
        cmd("cat", f"/proc/sys/net/ipv4/conf/{arrival_device(lab)}/forwarding"),
    )


@dataclass(frozen=True)
class NodeState:
    ip_forward: str | None
    bridge_nf_call_iptables: str | None  # None: br_netfilter is not loaded
    rp_filter: Mapping[str, int]  # "all" / the private NIC -> value
    tables: Mapping[str, Table]
    routes: tuple[str, ...]
    nic_mtu: int | None
    conflist: str | None
    leases: tuple[str, ...] | None  # host-local's reserved addresses (files), None: unread
    unread: tuple[str, ...] = field(default=())  # what could not be read (command, output)
    # the arrival device's own forwarding switch (device -> value), None: unread
    forwarding: tuple[str, str] | None = None


def parse_node_state(outputs: Sequence[Output], device: str = "") -> NodeState:
    """`device`: the arrival device whose forwarding the last command read."""
    fwd, brnf, rpf, save, routes, mtu, conf, leases, devfwd = outputs
    rp: dict[str, int] = {}
    for line in rpf.stdout.splitlines():
        path, _, value = line.rpartition(":")
        parts = path.split("/")
        if len(parts) >= 2 and value.strip().isdigit():
            rp[parts[-2]] = int(value.strip())
    unread = []
    if not save.ok:
        unread.append(f"iptables-save exited {save.exit_code}")
    if not routes.ok:
        unread.append(f"ip -4 route show exited {routes.exit_code}")
    return NodeState(
        ip_forward=fwd.stdout.strip() if fwd.ok else None,
        bridge_nf_call_iptables=brnf.stdout.strip() if brnf.ok else None,
        rp_filter=rp,
        tables=parse_iptables_save(save.stdout) if save.ok else {},
        routes=tuple(r.strip() for r in routes.stdout.splitlines() if r.strip()),
        nic_mtu=int(mtu.stdout.strip()) if mtu.ok and mtu.stdout.strip().isdigit() else None,
        conflist=conf.stdout if conf.ok and conf.stdout.strip() else None,
        leases=tuple(x.strip() for x in leases.stdout.splitlines()) if leases.ok else None,
        unread=tuple(unread),
        forwarding=(device, devfwd.stdout.strip()) if devfwd.ok and device else None,
    )


# --- problems ---------------------------------------------------------------------------------


def node_problems(lab: Lab, node: Node, state: NodeState) -> list[str]:
    """Everything the node holds that breaks the pod network, each named (empty: healthy)."""
    return [
        *state.unread,
        *sysctl_problems(state),
        *firewall_problems(lab, node, state),
        *nat_problems(lab, node, state),
        *route_problems(lab, node, state),
        *conflist_problems(lab, node, state),
        *lease_problems(lab, node, state),
    ]


def sysctl_problems(state: NodeState) -> Iterator[str]:
    if state.ip_forward != "1":
        yield (
            f"net.ipv4.ip_forward = {state.ip_forward}: the node does not forward pod packets "
            "(the guide's step 4, 开启路由转发, sets it to 1)"
        )
    elif state.forwarding is not None and state.forwarding[1] != "1":
        dev, value = state.forwarding
        yield (
            f"net.ipv4.conf.{dev}.forwarding = {value}: packets of other nodes' pods arriving "
            f"on {dev} are not forwarded, though net.ipv4.ip_forward = 1 (an interface's own "
            "switch; projectcalico/cni-plugin#283)"
        )
    if state.bridge_nf_call_iptables is None:
        yield (
            "br_netfilter is not loaded (no /proc/sys/net/bridge): traffic between pods on one "
            "bridge bypasses iptables, so a Service whose endpoint shares the client's bridge "
            "is never translated back (the guide's step 3; kubernetes#87426)"
        )
    elif state.bridge_nf_call_iptables != "1":
        yield (
            f"net.bridge.bridge-nf-call-iptables = {state.bridge_nf_call_iptables}: bridged "
            "pod traffic bypasses iptables, so a Service whose endpoint shares the client's "
            "bridge is never translated back (the guide's step 3; kubernetes#87426)"
        )


def _peers(lab: Lab, node: Node) -> list[Node]:
    return [n for n in lab.nodes if n.name != node.name]


def _sample_pod(subnet: IPv4Network) -> IPv4Address:
    return subnet.network_address + 2


def arrival_device(lab: Lab) -> str:
    """Where another node's pod packets come in (and where this node's leave for them)."""
    return backend_of(lab).tunnel_device(lab) or lab.vm.private_nic


def firewall_problems(lab: Lab, node: Node, state: NodeState) -> Iterator[str]:
    filt = state.tables.get("filter")
    subnets = backend_of(lab).planned_subnets(lab)
    if filt is None or subnets is None:
        return
    dev, bridge = arrival_device(lab), lab.pod_network.bridge
    own = subnets[node.name]
    for peer in _peers(lab, node):
        theirs = subnets[peer.name]
        for src, dst, iif, oif in (
            (_sample_pod(own), _sample_pod(theirs), bridge, dev),
            (_sample_pod(theirs), _sample_pod(own), dev, bridge),
        ):
            packet = Packet(src, dst, "tcp", 8080, iif, oif)
            v = verdict(filt, "FORWARD", packet)
            if v.target in ("DROP", "REJECT"):
                why = (
                    f"rule `{v.rule.text}`"
                    if v.rule
                    else f"the FORWARD chain's policy {v.target} (Docker >= 1.13 sets it; "
                    "flannel since v0.10 accepts its Network's traffic: kubernetes#40182)"
                )
                yield f"iptables FORWARD drops pod traffic {src} -> {dst} ({iif} -> {oif}): {why}"
    tunnel = backend_of(lab).tunnel_device(lab)
    if tunnel is not None:
        port = tunnel_port(lab)
        for peer in _peers(lab, node):
            packet = Packet(peer.ip, node.ip, "udp", port, lab.vm.private_nic, "")
            v = verdict(filt, "INPUT", packet)
            if v.target in ("DROP", "REJECT"):
                by = f"rule `{v.rule.text}`" if v.rule else f"the INPUT policy {v.target}"
                yield (
                    f"iptables INPUT drops the tunnel's UDP {port} from {peer.name} ({peer.ip}): "
                    f"{by} (flannel's vxlan backend needs UDP {port} between all nodes)"
                )


def tunnel_port(lab: Lab) -> int:
    from lab.podnet.vxlan import VXLAN_PORT  # the one VXLAN port of the shipped backends

    return VXLAN_PORT


def nat_problems(lab: Lab, node: Node, state: NodeState) -> Iterator[str]:
    """Pod-to-pod traffic leaving this node must keep its source: no POSTROUTING rule may
    translate a new TCP or UDP flow from one of its pods to a pod of another node (or of its
    own bridge)."""
    nat = state.tables.get("nat")
    subnets = backend_of(lab).planned_subnets(lab)
    if nat is None or subnets is None:
        return
    own = subnets[node.name]
    targets = [(subnets[p.name], arrival_device(lab)) for p in _peers(lab, node)]
    targets.append((own, lab.pod_network.bridge))
    for theirs, oif in targets:
        for proto in ("tcp", "udp"):
            src = _sample_pod(own)
            dst = _sample_pod(theirs) if theirs != own else src + 1
            v = verdict(nat, "POSTROUTING", Packet(src, dst, proto, 8080, "", oif))
            if v.target in ("MASQUERADE", "SNAT") and v.rule is not None:
                yield (
                    f"nat rule `{v.rule.text}` translates {proto} pod traffic {src} -> {dst}: "
                    "a pod must see another pod's own address (no NAT between pods)"
                )


@dataclass(frozen=True)
class Route:
    destination: str
    gateway: str | None
    device: str | None
    text: str


def parse_route(line: str) -> Route:
    words = line.split()
    gw = words[words.index("via") + 1] if "via" in words[:-1] else None
    dev = words[words.index("dev") + 1] if "dev" in words[:-1] else None
    return Route(words[0] if words else "", gw, dev, line)


def _pod_routes(lab: Lab, state: NodeState) -> list[tuple[IPv4Network, Route]]:
    found = []
    for line in state.routes:
        route = parse_route(line)
        try:
            net = IPv4Network(route.destination, strict=False)
        except ValueError:
            continue
        if net.overlaps(lab.pod_network.cidr):
            found.append((net, route))
    return found


def route_problems(lab: Lab, node: Node, state: NodeState) -> Iterator[str]:
    """Every route into the pod CIDR leads to a node of the lab (its private IP, or its
    lease's .0 on the tunnel device), to the subnet that node holds, or is one the backend
    itself expects (BGP's via the router of a routed underlay); every other node's pod
    subnet has its route; the node's own subnet is on its bridge."""
    backend = backend_of(lab)
    subnets = backend.planned_subnets(lab)
    if subnets is None:
        return
    tunnel = backend.tunnel_device(lab)
    by_gateway = {str(n.ip): n.name for n in lab.nodes}
    if tunnel is not None:
        by_gateway.update({str(s.network_address): name for name, s in subnets.items()})
    expected = {
        (r.destination, r.gateway) for r in map(parse_route, backend.expected_routes(lab, node))
    }
    routes = _pod_routes(lab, state)
    for net, route in routes:
        if route.device == lab.pod_network.bridge and net == subnets[node.name]:
            continue
        if route.gateway is not None and (str(net), route.gateway) in expected:
            continue  # the backend's own next hop (on a routed underlay: the router)
        if net == lab.pod_network.cidr and route.device == tunnel and route.gateway is None:
            continue  # flannel's own /16 route on flannel.1 (unused by the lab's stand-in)
        owner = by_gateway.get(route.gateway or "")
        if owner is None:
            yield (
                f"route `{route.text}` leads into the pod CIDR via "
                f"{route.gateway or route.device}, which is no node of the lab (a stale "
                "route of a deleted node? flannel-io/flannel#2554)"
            )
        elif not net.subnet_of(subnets[owner]) and net != subnets[owner]:
            yield f"route `{route.text}` sends {net} to {owner}, which holds {subnets[owner]}"
    for peer in _peers(lab, node):
        theirs = subnets[peer.name]
        if not any(net == theirs for net, _ in routes):
            yield f"no route to {peer.name}'s pod subnet {theirs}: its pods are unreachable"
    rp = max(state.rp_filter.get("all", 0), state.rp_filter.get(arrival_device(lab), 0))
    if rp == 1:
        for peer in _peers(lab, node):
            theirs = subnets[peer.name]
            back = _longest(routes, _sample_pod(theirs))
            if back is not None and back.device != arrival_device(lab):
                yield (
                    f"strict rp_filter (net.ipv4.conf.*.rp_filter = 1) and the route back to "
                    f"{peer.name}'s pods leaves by {back.device} (`{back.text}`): their packets "
                    f"arrive on {arrival_device(lab)} and fail the reverse-path check"
                )


def _longest(routes: Sequence[tuple[IPv4Network, Route]], ip: IPv4Address) -> Route | None:
    matching = [(net, r) for net, r in routes if ip in net]
    return max(matching, key=lambda nr: nr[0].prefixlen)[1] if matching else None


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k in sorted(value):
            yield from _leaves(value[k], f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def conflist_problems(lab: Lab, node: Node, state: NodeState) -> Iterator[str]:
    """The CNI config on the node is the one the lab renders for it, field by field."""
    if not conflist_of(lab):
        return
    if state.conflist is None:
        yield f"cannot read {CNI_CONFLIST_PATH}"
        return
    try:
        found = json.loads(state.conflist)
    except ValueError as exc:
        yield f"{CNI_CONFLIST_PATH} is not JSON ({exc})"
        return
    yield from range_problems(lab, node, found)
    want = backend_of(lab).conflist(lab, node, state.nic_mtu)
    have, expected = dict(_leaves(found)), dict(_leaves(want))
    for key in sorted(set(have) | set(expected)):
        if (key in have) != (key in expected) or have.get(key) != expected.get(key):
            yield (
                f"{CNI_CONFLIST_PATH}: {key} = {_field(have, key)}; "
                f"the lab renders {_field(expected, key)}"
            )


def _field(leaves: dict[str, Any], key: str) -> str:
    """A conflist field as JSON, or (absent): a field whose value is the string "(absent)"
    shows quoted, and is compared as any other value."""
    return json.dumps(leaves[key]) if key in leaves else "(absent)"


def range_problems(lab: Lab, node: Node, conflist: Any) -> Iterator[str]:
    """host-local's ranges in the node's conflist: inside the cluster pod CIDR (flannel's
    Network), and no other node's subnet (else two nodes hand out the same addresses)."""
    planned = backend_of(lab).planned_subnets(lab) or {}
    cidr = lab.pod_network.cidr
    plugins = conflist.get("plugins", []) if isinstance(conflist, dict) else []
    for plugin in plugins if isinstance(plugins, list) else []:
        ipam = plugin.get("ipam") if isinstance(plugin, dict) else None
        ranges = ipam.get("ranges") if isinstance(ipam, dict) else None
        groups = ranges if isinstance(ranges, list) else []
        for entry in (r for group in groups if isinstance(group, list) for r in group):
            try:
                subnet = IPv4Network(entry.get("subnet", ""), strict=False)
            except (AttributeError, ValueError):
                continue
            if not subnet.subnet_of(cidr):
                yield (
                    f"{node.name} hands out {subnet}, outside the cluster pod CIDR {cidr} "
                    "(flannel's Network): no other node routes to it (flannel-io/flannel#1428)"
                )
            for other, theirs in sorted(planned.items()):
                if other != node.name and subnet.overlaps(theirs):
                    yield (
                        f"{node.name} hands out {subnet}, which overlaps {other}'s subnet "
                        f"{theirs}: both nodes give pods the same addresses"
                    )


def lease_problems(lab: Lab, node: Node, state: NodeState) -> Iterator[str]:
    """host-local must have room for new pods."""
    subnets = backend_of(lab).planned_subnets(lab)
    if state.leases is None or subnets is None:
        return
    subnet = subnets[node.name]
    taken = set()
    for name in state.leases:
        try:
            address = ip_address(name)
        except ValueError:
            continue
        if address in subnet:
            taken.add(address)
    usable = subnet.num_addresses - 3  # network, gateway (.1), broadcast
    if len(taken) >= usable:
        yield (
            f"host-local has {len(taken)} of the {usable} addresses of {subnet} reserved "
            f"({CNI_IPAM_DIR}/{CNI_NETWORK_NAME}): a new pod gets 'no IP addresses available "
            "in range set' (leaked leases: kubernetes#57280)"
        )
