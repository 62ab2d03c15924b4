"""Parsers (pure): vagrant machine-readable output, ssh-config, `ip -j` JSON."""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

# one line of `vagrant up` output about one machine: "==> node1: Creating domain ..."
UP_LINE = re.compile(r"^==> (?P<node>[\w.-]+): (?P<msg>.*)$")


def parse_ip_addr_networks(
    links: Iterable[Mapping[str, Any]], exclude_prefixes: tuple[str, ...] = ()
) -> tuple[IPv4Network, ...]:
    """Networks of `ip -j addr` IPv4 addresses, skipping interfaces by name prefix."""
    nets = []
    for link in links:
        if str(link.get("ifname", "")).startswith(exclude_prefixes):
            continue
        for addr in link.get("addr_info", []):
            if addr.get("family") == "inet":
                nets.append(IPv4Interface(f"{addr['local']}/{addr['prefixlen']}").network)
    return tuple(dict.fromkeys(nets))


def parse_ip_addr_addresses(
    links: Iterable[Mapping[str, Any]],
) -> dict[str, tuple[IPv4Address, ...]]:  # pragma: no mutate block (test-only)
    """Interface name -> its IPv4 addresses, from `ip -j addr`."""
    return {
        str(link["ifname"]): tuple(
            IPv4Address(a["local"]) for a in link.get("addr_info", []) if a.get("family") == "inet"
        )
        for link in links
    }


def parse_ip_oneline_interfaces(text: str) -> dict[str, tuple[IPv4Interface, ...]]:
    """Interface name -> its IPv4 addresses with prefix, from `ip -o -4 addr show` (iproute2,
    old or new, and busybox print the same one-line form:
    `2: eth0    inet 10.244.1.5/24 brd ... scope global eth0`)."""
    found: dict[str, list[IPv4Interface]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 4 and words[2] == "inet":
            ifname = words[1].split("@", 1)[0].rstrip(":")
            try:
                found.setdefault(ifname, []).append(IPv4Interface(words[3]))
            except ValueError:
                continue
    return {name: tuple(addrs) for name, addrs in found.items()}


def parse_ip_oneline_addresses(text: str) -> dict[str, tuple[IPv4Address, ...]]:
    """Interface name -> its IPv4 addresses, from `ip -o -4 addr show`."""
    return {
        name: tuple(i.ip for i in ifaces)
        for name, ifaces in parse_ip_oneline_interfaces(text).items()
    }


def parse_route_get_text(text: str) -> str | None:
    """`ip -4 route get ADDR` (any iproute2): the source address the kernel picks."""
    words = text.split()
    for key, value in itertools.pairwise(words):
        if key == "src":
            return value
    return None


def parse_link_mtu(text: str) -> int | None:
    """`ip -o link show DEV` (any iproute2, busybox too): the device's MTU."""
    words = text.split()
    for key, value in itertools.pairwise(words):
        if key == "mtu" and value.isdigit():
            return int(value)
    return None


# --- a network namespace read with `cat` alone (any image: nginx:1.19 has no `ip`) -----------

# /proc/net is /proc/self/net: the namespace of the process that reads it (a container's own,
# or the one `nsenter -n` entered)
PROC_NET_FILES = ("/proc/net/dev", "/proc/net/route", "/proc/net/fib_trie")
LOOPBACK = IPv4Network("127.0.0.0/8")
_FIB_TABLE = re.compile(r"^(Main|Local|Id \d+):\s*$")
_FIB_LEAF = re.compile(r"^\s*\|--\s+(\d+\.\d+\.\d+\.\d+)\s*$")
_FIB_LOCAL = re.compile(r"^\s*/32 host LOCAL\s*$")


@dataclass(frozen=True)
class ProcNetView:
    """A network namespace as `cat /proc/net/dev /proc/net/route /proc/net/fib_trie` shows it.

    `interfaces`: every interface of /proc/net/dev, in its order; `addresses`: each IPv4
    address the kernel holds locally (fib_trie's `/32 host LOCAL` leaves, loopback left out)
    under the interface of the connected route (/proc/net/route) that holds it, `?` when none
    does."""

    interfaces: tuple[str, ...]
    addresses: dict[str, tuple[IPv4Address, ...]]

    @property
    def all(self) -> tuple[IPv4Address, ...]:
        return tuple(a for addrs in self.addresses.values() for a in addrs)


def _proc_route_address(word: str) -> IPv4Address:
    """/proc/net/route's hex words are the address in the kernel's (little-endian) order."""
    return IPv4Address(struct.pack("<I", int(word, 16)))


def parse_proc_net(text: str) -> ProcNetView:
    """The concatenated output of `cat` on PROC_NET_FILES (kernel 3.10, CentOS 7's, prints
    fib_trie's Local table apart from Main; 4.1 on merge them: either is read). Raises
    ValueError when a part is missing (a shell error, an image without /proc)."""
    section = ""
    seen: set[str] = set()
    interfaces: list[str] = []
    connected: list[tuple[str, IPv4Network]] = []
    local: dict[IPv4Address, None] = {}
    leaf: IPv4Address | None = None
    for line in text.splitlines():
        if line.startswith("Inter-|"):
            section = "dev"
        elif line.startswith("Iface") and "Destination" in line:
            section = "route"
        elif _FIB_TABLE.match(line):
            section = "fib"
        elif section == "dev" and ":" in line:  # the two header lines hold no colon
            interfaces.append(line.split(":", 1)[0].strip())
        elif section == "route" and len(words := line.split()) >= 8:
            iface, dest, gateway, mask = words[0], words[1], words[2], words[7]
            try:
                if int(gateway, 16) == 0:
                    net = IPv4Network(
                        (_proc_route_address(dest), str(_proc_route_address(mask))), strict=False
                    )
                    connected.append((iface, net))
            except ValueError:
                raise ValueError(
                    f"/proc/net/route: cannot read the line {line.strip()!r}"
                ) from None
        elif section == "fib" and (m := _FIB_LEAF.match(line)):
            leaf = IPv4Address(m[1])
        elif section == "fib" and leaf is not None and _FIB_LOCAL.match(line):
            local[leaf] = None
        seen.add(section)
    missing = [
        name
        for name, key in zip(PROC_NET_FILES, ("dev", "route", "fib"), strict=True)
        if key not in seen
    ]
    if missing:
        raise ValueError(f"not the output of `cat {' '.join(PROC_NET_FILES)}`: no {missing}")
    found: dict[str, list[IPv4Address]] = {}
    for address in local:
        if address in LOOPBACK:
            continue
        holders = [(net.prefixlen, iface) for iface, net in connected if address in net]
        found.setdefault(max(holders)[1] if holders else "?", []).append(address)
    return ProcNetView(tuple(interfaces), {k: tuple(v) for k, v in found.items()})


# /proc/net/tcp and /proc/net/udp (the namespace's IPv4 sockets): a header, then a socket a
# line, `sl: local_address rem_address st ...`, the addresses as hex ADDR:PORT. `st` is the
# kernel's TCP state number: 0A is LISTEN; an unconnected UDP socket is 07 (CLOSE)
SOCKET_TABLE_HEADER = ("sl", "local_address", "rem_address", "st")
TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"


def socket_table_ports(text: str, state: str) -> frozenset[int]:
    """The local ports of the sockets in `state` (TCP_LISTEN, UDP_UNCONNECTED) in the output
    of `cat /proc/net/tcp` or `cat /proc/net/udp`. Raises ValueError when the text is not
    such a table (a shell error, no such namespace)."""
    lines = text.splitlines()
    if not lines or tuple(lines[0].split()[:4]) != SOCKET_TABLE_HEADER:
        head = lines[0].strip()[:80] if lines else ""
        raise ValueError(f"not a /proc/net socket table: it starts with {head!r}")
    ports: set[int] = set()
    for line in lines[1:]:
        words = line.split()
        if not words:
            continue
        if len(words) < 4 or not words[0].endswith(":") or ":" not in words[1]:
            raise ValueError(f"/proc/net socket table: cannot read the line {line.strip()!r}")
        try:
            port = int(words[1].rpartition(":")[2], 16)
        except ValueError:
            raise ValueError(
                f"/proc/net socket table: cannot read the port of {line.strip()!r}"
            ) from None
        if words[3] == state:
            ports.add(port)
    return frozenset(ports)


def parse_route_get(
    routes: Iterable[Mapping[str, Any]],
) -> tuple[str | None, str | None]:  # pragma: no mutate block (test-only)
    """`ip -j route get ADDR` -> (the source address the kernel picks, the device)."""
    for route in routes:
        src = route.get("prefsrc")
        dev = route.get("dev")
        return (str(src) if src else None, str(dev) if dev else None)
    return None, None


# --- vagrant status --machine-readable -------------------------------------------------------


class VagrantOutputError(Exception):
    """Vagrant reported an error inside machine-readable output."""


@dataclass(frozen=True)
class MachineState:
    name: str
    state: str  # vagrant's short state: running, shutoff, not_created, paused, ...
    provider: str


def _unescape(text: str) -> str:
    return text.replace("%!(VAGRANT_COMMA)", ",").replace("\\n", "\n").replace("\\r", "\r")


def parse_machine_readable(output: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Lines `timestamp,target,type,data...` -> (target, type, data); raises on `error-exit`."""
    rows = []
    for line in output.splitlines():
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) < 3 or not parts[0].isdigit():
            continue  # not a machine-readable line (plugin warnings and the like)
        target, kind = parts[1], parts[2]
        data = tuple(_unescape(p) for p in parts[3:])
        if kind == "error-exit":
            raise VagrantOutputError(" ".join(data))
        rows.append((target, kind, data))
    return rows


def parse_vagrant_status(output: str) -> dict[str, MachineState]:
    """`vagrant status --machine-readable` -> machine name -> state (in output order)."""
    states: dict[str, str] = {}
    providers: dict[str, str] = {}
    for target, kind, data in parse_machine_readable(output):
        if not target or not data:
            continue
        if kind == "state":
            states[target] = data[0]
        elif kind == "provider-name":
            providers[target] = data[0]
    return {
        name: MachineState(name, state, providers.get(name, "")) for name, state in states.items()
    }


# --- vagrant ssh-config ----------------------------------------------------------------------


@dataclass(frozen=True)
class SshTarget:
    host: str  # the Vagrant machine name (ssh-config `Host`)
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    options: tuple[tuple[str, str], ...] = ()


def parse_ssh_config(output: str) -> dict[str, SshTarget]:
    """A multi-host `vagrant ssh-config` -> machine name -> target. Unknown keys are kept."""
    blocks: list[tuple[str, list[tuple[str, str]]]] = []
    for raw in output.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        value = value.strip().strip('"')
        if key.lower() == "host":
            blocks.append((value, []))
        elif blocks:
            blocks[-1][1].append((key, value))
    targets = {}
    for host, pairs in blocks:
        lowered = {k.lower(): v for k, v in pairs}
        missing = [k for k in ("hostname", "user", "port") if k not in lowered]
        if missing:
            raise ValueError(f"ssh-config for {host!r} lacks {', '.join(missing)}")
        targets[host] = SshTarget(
            host=host,
            hostname=lowered["hostname"],
            port=int(lowered["port"]),
            user=lowered["user"],
            identity_files=tuple(v for k, v in pairs if k.lower() == "identityfile"),
            options=tuple(
                (k, v)
                for k, v in pairs
                if k.lower() not in ("hostname", "user", "port", "identityfile")
            ),
        )
    return targets


# --- CPU accounting (bench/guest_cpu.py) -------------------------------------------------------


def parse_cgroup_cpu(text: str) -> dict[str, float]:
    """`<cgroup dir>/cpu.stat <usage_usec>` lines (relative to /sys/fs/cgroup, as CGROUP_CPU
    prints them) -> CPU seconds per cgroup, "/" for the root. Lines of another shape (a cgroup
    that went away between listing and reading) are skipped."""
    usage = {}
    for line in text.splitlines():
        path, _, value = line.strip().rpartition(" ")
        if not path.endswith("cpu.stat") or not value.isascii() or not value.isdigit():
            continue
        group = path.removesuffix("cpu.stat").rstrip("/") or "/"
        usage[group] = int(value) / 1e6
    return usage


def cpu_deltas(
    before: Mapping[str, float], after: Mapping[str, float], at_least: float = 0.0
) -> list[tuple[str, float]]:
    """What each counter grew by (a counter new in `after` counts from zero), largest first,
    those that grew by less than `at_least` left out."""
    grown = [(k, v - before.get(k, 0.0)) for k, v in after.items()]
    return sorted((g for g in grown if g[1] >= at_least), key=lambda g: (-g[1], g[0]))


# Linux BSD process accounting, version 3 (linux/acct.h struct acct_v3): 64 bytes a process,
# written when it exits; times as comp_t in AHZ (100) ticks
ACCT_V3 = struct.Struct("<BBHIIIIIIfHHHHHHHH16s")
ACCT_AHZ = 100


@dataclass(frozen=True)
class ProcessCpu:
    comm: str
    runs: int
    seconds: float  # user + system


def _comp_t(value: int) -> int:
    """comp_t: a 13-bit mantissa and a 3-bit base-8 exponent."""
    return (value & 0x1FFF) << (((value >> 13) & 7) * 3)


def parse_acct_v3(data: bytes) -> list[ProcessCpu]:
    """acct_v3 records -> CPU seconds and runs per command name, most CPU first (ties by
    name). Records of another version and a torn record at the end are skipped."""
    seconds: dict[str, float] = {}
    runs: dict[str, int] = {}
    for offset in range(0, len(data) - ACCT_V3.size + 1, ACCT_V3.size):
        record = ACCT_V3.unpack_from(data, offset)
        if record[1] != 3:
            continue
        comm = record[18].split(b"\0", 1)[0].decode(errors="replace")
        cpu = (_comp_t(record[10]) + _comp_t(record[11])) / ACCT_AHZ
        seconds[comm] = seconds.get(comm, 0.0) + cpu
        runs[comm] = runs.get(comm, 0) + 1
    rows = [ProcessCpu(c, runs[c], seconds[c]) for c in seconds]
    return sorted(rows, key=lambda r: (-r.seconds, r.comm))
