"""The CNI runtime side of the contract (pure): what a runtime sends each plugin of a network
configuration list, and what a valid result or error looks like (CNI spec 0.3.1/0.4.0/1.0.0).

A runtime invokes the plugins of a conflist in order for ADD and CHECK, in reverse order for
DEL. Each plugin gets its own config plus the list's `name` and `cniVersion`; from the second
plugin on (and for CHECK/DEL, every plugin) the config carries `prevResult`. Parameters travel
in environment variables: CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_interface
from typing import Any, Literal

Verb = Literal["ADD", "CHECK", "DEL"]
CONTAINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class Invocation:
    """One plugin call: the binary, its environment and the config JSON on stdin."""

    plugin: str
    env: tuple[tuple[str, str], ...]
    stdin: str

    def argv(self, bin_dir: str) -> tuple[str, ...]:
        return ("env", *(f"{k}={v}" for k, v in self.env), f"{bin_dir}/{self.plugin}")


def plugin_config(
    conflist: Mapping[str, Any], index: int, prev_result: Mapping[str, Any] | None
) -> dict[str, Any]:
    config = dict(conflist["plugins"][index])
    config["name"] = conflist["name"]
    config["cniVersion"] = conflist["cniVersion"]
    if prev_result is not None:
        config["prevResult"] = dict(prev_result)
    return config


def invocation(
    verb: Verb,
    conflist: Mapping[str, Any],
    index: int,
    container_id: str,
    netns_path: str,
    ifname: str,
    bin_dir: str,
    prev_result: Mapping[str, Any] | None,
) -> Invocation:
    if not CONTAINER_ID.match(container_id):
        raise ValueError(f"container id {container_id!r} is not valid for CNI")
    env = (
        ("CNI_COMMAND", verb),
        ("CNI_CONTAINERID", container_id),
        ("CNI_NETNS", netns_path),
        ("CNI_IFNAME", ifname),
        ("CNI_PATH", bin_dir),
    )
    config = plugin_config(conflist, index, prev_result)
    return Invocation(str(config["type"]), env, json.dumps(config, sort_keys=True))


def plugin_order(conflist: Mapping[str, Any], verb: Verb) -> list[int]:
    indices = list(range(len(conflist["plugins"])))
    return indices[::-1] if verb == "DEL" else indices


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CniError:
    code: int
    msg: str
    details: str = ""


def parse_error(stdout: str) -> CniError | None:
    """A plugin's error JSON (`code`, `msg`, optional `details`), or None if it is not one."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("code"), int):
        return None
    if not isinstance(data.get("msg"), str):
        return None
    return CniError(data["code"], data["msg"], str(data.get("details", "")))


@dataclass(frozen=True)
class CniResult:
    cni_version: str
    interfaces: tuple[dict[str, Any], ...]
    ips: tuple[dict[str, Any], ...]
    raw: dict[str, Any]

    @property
    def sandbox_addresses(self) -> tuple[IPv4Interface, ...]:
        """The IPv4 addresses assigned to interfaces inside the sandbox."""
        out = []
        for ip in self.ips:
            iface = ip.get("interface")
            if not isinstance(iface, int) or not 0 <= iface < len(self.interfaces):
                continue
            if self.interfaces[iface].get("sandbox"):
                addr = ip_interface(ip["address"])
                if isinstance(addr, IPv4Interface):
                    out.append(addr)
        return tuple(out)

    @property
    def host_interfaces(self) -> tuple[str, ...]:
        """Interfaces the plugin created on the host (no `sandbox` key), e.g. veths."""
        return tuple(i["name"] for i in self.interfaces if not i.get("sandbox"))


def parse_result(stdout: str) -> CniResult:
    data = json.loads(stdout)
    if not isinstance(data, dict):
        raise ValueError("CNI result is not a JSON object")
    return CniResult(
        str(data.get("cniVersion", "")),
        tuple(data.get("interfaces", [])),
        tuple(data.get("ips", [])),
        data,
    )


def _entries(
    data: Mapping[str, Any], key: str, problems: list[str], required: bool = True
) -> list[Mapping[str, Any] | None]:
    """The list `key` of a result, index for index; an entry that is no object is reported
    and stands as None."""
    value = data.get(key)
    if not value and not required:
        return []
    if not isinstance(value, list) or not value:
        problems.append(f"{key}: missing or empty" if required else f"{key}: not a list")
        return []
    entries: list[Mapping[str, Any] | None] = []
    for i, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            problems.append(f"{key}[{i}] {entry!r} is not an object")
        entries.append(entry if isinstance(entry, Mapping) else None)
    return entries


def validate_result(
    data: Mapping[str, Any], cni_version: str, subnet: IPv4Network | None = None
) -> list[str]:
    """Problems with an ADD result for `cni_version` (empty list = valid)."""
    problems: list[str] = []
    if data.get("cniVersion") != cni_version:
        problems.append(f"cniVersion is {data.get('cniVersion')!r}, config asked {cni_version!r}")
    interfaces = _entries(data, "interfaces", problems)
    for i, iface in enumerate(interfaces):
        if iface is None:
            continue
        if not iface.get("name"):
            problems.append(f"interfaces[{i}]: needs a name")
            continue
        mac = iface.get("mac", "")
        if mac and not re.match(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$", mac):
            problems.append(f"interfaces[{i}].mac {mac!r} is not a MAC address")
    for i, ip in enumerate(_entries(data, "ips", problems)):
        if ip is None:
            continue
        where = f"ips[{i}]"
        if cni_version in ("0.3.0", "0.3.1", "0.4.0") and ip.get("version") not in ("4", "6"):
            problems.append(f"{where}.version must be '4' or '6' in {cni_version}")
        if cni_version.startswith("1.") and "version" in ip:
            problems.append(f"{where}.version was removed in {cni_version}")
        try:
            address = ip_interface(ip.get("address", ""))
        except ValueError:
            problems.append(f"{where}.address {ip.get('address')!r} is not CIDR notation")
            continue
        if "gateway" in ip:
            try:
                gateway = IPv4Address(ip["gateway"])
            except ValueError:
                problems.append(f"{where}.gateway {ip['gateway']!r} is not an address")
            else:
                if gateway not in address.network:
                    problems.append(f"{where}.gateway {gateway} is outside {address.network}")
        index = ip.get("interface")
        if index is not None and not (isinstance(index, int) and 0 <= index < len(interfaces)):
            problems.append(f"{where}.interface {index!r} does not index interfaces")
        elif index is not None and not (interfaces[index] or {}).get("sandbox"):
            problems.append(f"{where} is not on a sandbox interface")
        if subnet is not None and address.ip not in subnet:
            problems.append(f"{where}.address {address} is outside the node subnet {subnet}")
    for i, route in enumerate(_entries(data, "routes", problems, required=False)):
        if route is None:
            continue
        try:
            ip_interface(route["dst"])
        except (KeyError, ValueError):
            problems.append(f"routes[{i}].dst {route.get('dst')!r} is not CIDR notation")
    return problems


def node_subnets_from_conflist(
    conflist: Mapping[str, Any],
) -> tuple[IPv4Network, ...]:  # pragma: no mutate block (test-only)
    """The host-local subnets a node's conflist hands out (its pod subnet)."""
    subnets = []
    for plugin in conflist.get("plugins", []):
        for rangeset in plugin.get("ipam", {}).get("ranges", []):
            subnets += [IPv4Network(r["subnet"]) for r in rangeset]
    return tuple(subnets)


def parse_flannel_subnet_env(text: str) -> tuple[IPv4Network, ...]:
    """/run/flannel/subnet.env (FLANNEL_SUBNET=10.244.1.1/24) -> the node's pod subnet."""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "FLANNEL_SUBNET":
            return (IPv4Interface(value.strip()).network,)
    return ()


def lease_paths(data_dir: str, network: str, addresses: Sequence[IPv4Interface]) -> list[str]:
    """host-local keeps one file per leased address under <dataDir>/<network name>/."""
    return [f"{data_dir}/{network}/{a.ip}" for a in addresses]
