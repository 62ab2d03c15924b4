"""systemd-networkd on the Debian nodes (pure): the .network files Vagrant and the backends
write, which one configures a NIC, and the private NIC's MTU. Vagrant configures the private
NIC through systemd-networkd (50-vagrant-eth1.network); the pod-network backends put their
routes and devices beside it, so networkd re-applies them whenever it configures the link."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from lab.common.commands import Command, cmd
from lab.hosts import facts as f
from lab.model.config import Lab, Node
from lab.model.underlay import prefixlen
from provision.model import write_file

NETWORK_DIR = "/etc/systemd/network"
WAIT_ONLINE = "/lib/systemd/systemd-networkd-wait-online"


def parse_network_files(grep_output: str) -> dict[str, str]:
    """`grep -rH '' /etc/systemd/network` -> path -> content."""
    files: dict[str, list[str]] = {}
    for line in grep_output.splitlines():
        path, sep, text = line.partition(":")
        if sep:
            files.setdefault(path, []).append(text)
    return {path: "\n".join(lines) + "\n" for path, lines in files.items()}


def network_file_for(files: dict[str, str], nic: str) -> str | None:
    """The .network file networkd uses for `nic`: the first, in lexical order, that matches."""
    for path in sorted(p for p in files if p.endswith(".network")):
        names = [
            word
            for line in files[path].splitlines()
            if line.strip().startswith("Name=")
            for word in line.split("=", 1)[1].split()
        ]
        if nic in names:
            return path
    return None


def nic_mtu(lab: Lab) -> f.Fact[int | None]:
    """The private NIC's MTU (the VXLAN pod MTU follows it); CNI and VXLAN share the probe."""
    return f.Fact(
        "private NIC MTU",
        cmd("cat", f"/sys/class/net/{lab.vm.private_nic}/mtu", sudo=False),
        lambda out: int(out.stdout.strip()) if out.ok and out.stdout.strip().isdigit() else None,
    )


def network_files_fact() -> f.Fact[dict[str, str]]:
    return f.Fact(
        "systemd-networkd files",
        cmd("grep", "-rH", "", NETWORK_DIR),
        lambda out: parse_network_files(out.stdout),
    )


def fresh_network_files(lab: Lab, node: Node) -> dict[str, str]:
    """A node fresh from the box: Vagrant's .network for the private NIC, nothing else."""
    nic = lab.vm.private_nic
    return {
        f"{NETWORK_DIR}/50-vagrant-{nic}.network": (
            f"[Match]\nName={nic}\n\n[Network]\nAddress={node.ip}/{prefixlen(lab, node)}\n"
        )
    }


@dataclass(frozen=True)
class RouteFacts:
    """What a step keeping routes in a networkd drop-in reads (plan_networkd_routes): the
    node's .network files and its `ip -4 route show` lines."""

    network_files: dict[str, str]
    routes: tuple[str, ...]


def route_facts(lab: Lab, node: Node) -> dict[str, f.AnyFact]:
    return {"network_files": network_files_fact(), "routes": f.ipv4_routes()}


def fresh_route_facts(lab: Lab, node: Node) -> RouteFacts:
    """A node fresh from the box: Vagrant's .network file, no route of ours."""
    return RouteFacts(fresh_network_files(lab, node), ())


def route_present(route_lines: Sequence[str], destination: str, via: str, dev: str) -> bool:
    return any(line.split()[:5] == [destination, "via", via, "dev", dev] for line in route_lines)


def plan_networkd_routes(
    lab: Lab,
    node: Node,
    network_files: Mapping[str, str],
    route_lines: Sequence[str],
    dropin: str,
    wanted: str,
    routes: Iterable[tuple[str, str, str]],
) -> tuple[Command, ...]:
    """Routes kept by systemd-networkd in a drop-in (`dropin`, content `wanted`) of the private
    NIC's .network file: written when it differs, and the link configured again when the file
    changed or a route (destination, via, device) is missing from the kernel."""
    nic = lab.vm.private_nic
    network_file = network_file_for(dict(network_files), nic)
    if network_file is None:
        raise ValueError(
            f"{node.name}: no systemd-networkd .network file configures {nic} "
            f"(looked in {NETWORK_DIR}); is the private network up?"
        )
    path = f"{network_file}.d/{dropin}"
    missing = [r for r in routes if not route_present(route_lines, *r)]
    plan: list[Command] = []
    if network_files.get(path) != wanted:
        plan += [write_file(path, wanted), cmd("networkctl", "reload")]
    if plan or missing:
        plan.append(cmd("networkctl", "reconfigure", nic))
    return tuple(plan)
