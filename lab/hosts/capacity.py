"""Can this host hold the lab? (pure) The host's figures come from
`lab.adapters.host.probe_host_resources`; `check_capacity` says, before any VM or volume
exists, which of the lab's demands it cannot meet, with the figures."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lab.model.config import Lab
from lab.model.problems import Problem


@dataclass(frozen=True)
class HostResources:
    cpus: int  # CPUs this process may run on
    memory_available_mib: int | None  # memory available for new VMs (None: unknown)
    memory_source: str = "MemAvailable in /proc/meminfo"


def parse_meminfo_available_mib(text: str) -> int | None:
    """MemAvailable of /proc/meminfo, in MiB (None when the kernel does not report it)."""
    m = re.search(r"^MemAvailable:\s+(\d+) kB$", text, re.MULTILINE)
    return int(m[1]) // 1024 if m else None


def parse_cgroup_memory_room_mib(limit: str, current: str) -> int | None:
    """What a cgroup v2 memory limit still allows (memory.max - memory.current), in MiB; None
    when unlimited ("max") or unreadable."""
    limit, current = limit.strip(), current.strip()
    if not limit.isdigit() or not current.isdigit():
        return None
    return max(int(limit) - int(current), 0) // (1024 * 1024)


def check_capacity(lab: Lab, host: HostResources) -> list[Problem]:
    """Each VM's CPUs fit the host's CPUs; all VMs' memory fits what the host has available."""
    problems = []
    inheriting = [n.name for n in lab.nodes if n.cpus is None]
    if inheriting and lab.vm.cpus > host.cpus:
        problems.append(
            Problem(
                "vm.cpus",
                lab.vm.cpus,
                f"{', '.join(inheriting)} would each get {lab.vm.cpus} vCPUs, but this host "
                f"has {host.cpus} CPU(s)",
                f"lower it to at most {host.cpus}",
            )
        )
    for i, node in enumerate(lab.nodes):
        if node.cpus is not None and node.cpus > host.cpus:
            problems.append(
                Problem(
                    f"nodes[{i}].cpus",
                    node.cpus,
                    f"{node.name} would get {node.cpus} vCPUs, but this host has "
                    f"{host.cpus} CPU(s)",
                    f"lower it to at most {host.cpus}",
                )
            )
    need = {n.name: lab.memory_mib(n) for n in lab.nodes}
    total = sum(need.values())
    if host.memory_available_mib is not None and total > host.memory_available_mib:
        overrides = any(n.memory_mib is not None for n in lab.nodes)
        each = ", ".join(f"{name} {mib}" for name, mib in need.items())
        problems.append(
            Problem(
                "nodes[*].memory_mib" if overrides else "vm.memory_mib",
                total,
                f"the lab's {len(need)} VMs need {total} MiB together ({each}), but this host "
                f"has {host.memory_available_mib} MiB available ({host.memory_source})",
                "lower the memory, free some on the host, or use a bigger host",
            )
        )
    return problems
