"""The VXLAN data plane as the kernel shows it (pure): what `ip -d -j link`, `bridge -j fdb`,
`ip -j neigh` and `ip -j route` say about flannel.1, what a node must have (from the lab file),
and the problems between the two, each with the hint a person needs. Provisioning plans from
it; the suite checks the tunnel with it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lab.common.commands import Command, Output, cmd
from lab.hosts.facts import Fact
from lab.model.config import Lab, Node
from lab.podnet.base import backend_of
from lab.podnet.vxlan import VXLAN_DEVICE, VXLAN_PORT, VXLAN_VNI, remote_vteps, vteps


@dataclass(frozen=True)
class VxlanDevice:
    """flannel.1 as `ip -d -j link show` reports it."""

    vni: int | None
    port: int | None
    local: str | None
    link: str | None
    learning: bool | None
    mtu: int | None
    mac: str | None


@dataclass(frozen=True)
class TunnelState:
    device: VxlanDevice | None  # None: no flannel.1
    addresses: tuple[str, ...]  # "10.244.0.0/32"
    fdb: tuple[tuple[str, str], ...]  # (mac, dst) of FDB entries with a destination
    neighbors: tuple[tuple[str, str], ...]  # (ip, mac) of permanent neighbours
    routes: tuple[tuple[str, str], ...]  # (dst, gateway) of onlink routes


def probe_tunnel_state(dev: str = VXLAN_DEVICE) -> tuple[Command, ...]:
    return (
        cmd("ip", "-d", "-j", "link", "show", dev, sudo=False),
        cmd("ip", "-j", "-4", "addr", "show", "dev", dev, sudo=False),
        cmd("bridge", "-j", "fdb", "show", "dev", dev, sudo=False),
        cmd("ip", "-j", "neigh", "show", "dev", dev, sudo=False),
        cmd("ip", "-j", "-4", "route", "show", "dev", dev, sudo=False),
    )


def tunnel_facts(dev: str = VXLAN_DEVICE) -> dict[str, Fact[Any]]:
    """TunnelState's fields as facts (provisioning reads them with its other facts)."""
    link, addr, fdb, neigh, route = probe_tunnel_state(dev)

    def text(out: Output) -> str:
        return out.stdout if out.ok else ""

    return {
        "device": Fact(f"{dev} device", link, lambda o: parse_device(_list(text(o)))),
        "addresses": Fact(f"{dev} addresses", addr, lambda o: parse_addresses(text(o))),
        "fdb": Fact(f"{dev} FDB", fdb, lambda o: parse_fdb(text(o))),
        "neighbors": Fact(f"{dev} neighbours", neigh, lambda o: parse_neighbors(text(o))),
        "routes": Fact(f"{dev} routes", route, lambda o: parse_onlink_routes(text(o))),
    }


def _list(text: str) -> list[Any]:
    if not text.strip():
        return []
    data = json.loads(text)
    return data if isinstance(data, list) else []


def parse_device(links: list[Any]) -> VxlanDevice | None:
    for link in links:
        info = (link.get("linkinfo") or {}).get("info_data") or {}
        return VxlanDevice(
            vni=info.get("id"),
            port=info.get("port"),
            local=info.get("local"),
            link=info.get("link") or link.get("link"),
            learning=info.get("learning"),
            mtu=link.get("mtu"),
            mac=link.get("address"),
        )
    return None


def parse_addresses(text: str) -> tuple[str, ...]:
    return tuple(
        f"{a['local']}/{a['prefixlen']}"
        for entry in _list(text)
        for a in entry.get("addr_info", [])
        if a.get("family") == "inet"
    )


def parse_fdb(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((e["mac"], e["dst"]) for e in _list(text) if e.get("dst") and e.get("mac"))


def parse_neighbors(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (e["dst"], e["lladdr"])
        for e in _list(text)
        if e.get("lladdr") and "PERMANENT" in (e.get("state") or [])
    )


def parse_onlink_routes(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(
        (r["dst"], r["gateway"])
        for r in _list(text)
        if r.get("gateway") and "onlink" in (r.get("flags") or [])
    )


def parse_tunnel_state(link: str, addr: str, fdb: str, neigh: str, route: str) -> TunnelState:
    """The outputs of probe_tunnel_state's five commands ("" for a command that failed)."""
    return TunnelState(
        device=parse_device(_list(link)),
        addresses=parse_addresses(addr),
        fdb=parse_fdb(fdb),
        neighbors=parse_neighbors(neigh),
        routes=parse_onlink_routes(route),
    )


def wanted_state(
    lab: Lab, node: Node
) -> tuple[set[str], set[tuple[str, str]], set[tuple[str, str]], set[tuple[str, str]]]:
    """(addresses, fdb, neighbours, routes) flannel.1 must carry on `node`, from the lab."""
    own = vteps(lab)[node.name]
    remotes = remote_vteps(lab, node)
    return (
        {f"{own.address}/32"},
        {(v.mac, str(v.public_ip)) for v in remotes},
        {(str(v.address), v.mac) for v in remotes},
        {(str(v.subnet), str(v.address)) for v in remotes},
    )


def device_problems(lab: Lab, node: Node, device: VxlanDevice | None) -> list[str]:
    """flannel.1's VXLAN settings against flannel's (VNI 1, port 8472, nolearning, bound to the
    private NIC with the private IP)."""
    where = f"{node.name}: {VXLAN_DEVICE}"
    if device is None:
        return [f"{where} does not exist"]
    problems = []
    if device.vni != VXLAN_VNI or device.port != VXLAN_PORT:
        problems.append(f"{where} has VNI {device.vni} port {device.port}; flannel uses 1 / 8472")
    if device.learning is not False:
        problems.append(f"{where} learns MACs; flannel's VTEP is nolearning")
    nic = lab.vm.private_nic
    if device.local != str(node.ip) or device.link not in (None, nic):
        hint = ""
        if device.local is not None and _in(device.local, lab.network.management):
            hint = (
                f": {device.local} is the management address; flannel without --iface picks "
                f"the default-route NIC (on a Vagrant box, the management one): pass "
                f"--iface={nic}"
            )
        problems.append(
            f"{where} sends from {device.local} on {device.link}, not from the private IP "
            f"{node.ip} on {nic}{hint}"
        )
    return problems


def _in(address: str, network: Any) -> bool:
    from ipaddress import IPv4Address

    try:
        return IPv4Address(address) in network
    except ValueError:
        return False


def tunnel_problems(lab: Lab, node: Node, state: TunnelState) -> list[str]:
    """Everything the node's tunnel lacks, one line per missing piece, naming the peer whose
    cells it breaks and the command that would put it back."""
    problems = device_problems(lab, node, state.device)
    if state.device is None:
        return problems
    addresses, fdb, neighbors, routes = wanted_state(lab, node)
    dev = VXLAN_DEVICE
    for address in sorted(addresses - set(state.addresses)):
        problems.append(f"{node.name}: {dev} lacks its address {address}")
    peers = {v.mac: v.node for v in remote_vteps(lab, node)}
    for mac, dst in sorted(fdb - set(state.fdb)):
        problems.append(
            f"{node.name}: no FDB entry {mac} -> {dst} on {dev}: its pods cannot reach "
            f"{peers[mac]}'s (`bridge fdb append {mac} dev {dev} dst {dst}`)"
        )
    for ip, mac in sorted(neighbors - set(state.neighbors)):
        problems.append(
            f"{node.name}: no permanent neighbour {ip} -> {mac} on {dev}: its pods cannot reach "
            f"{peers[mac]}'s (`ip neigh replace {ip} lladdr {mac} dev {dev} nud permanent`)"
        )
    for dst, via in sorted(routes - set(state.routes)):
        problems.append(
            f"{node.name}: no route {dst} via {via} onlink dev {dev}"
            f" (`ip route replace {dst} via {via} dev {dev} onlink`)"
        )
    if state.device.mtu != backend_of(lab).pod_mtu(lab):
        problems.append(
            f"{node.name}: {dev} MTU is {state.device.mtu}, the pods' is "
            f"{backend_of(lab).pod_mtu(lab)}: "
            "a full-size pod packet does not fit the tunnel"
        )
    return problems
