"""Checks of the host made before anything is created: `up` refuses a lab whose ranges a
libvirt network of another name holds; `python -m lab preflight LAB` checks everything else a
lab needs of its host (KVM, memory, CPUs, free subnets, every URL and registry it names, and
that its pinned packages and image tags are there: lab.hosts.pins) and says what is missing.
It starts nothing and changes nothing."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Network
from pathlib import Path

from rich.console import Console

from lab.adapters.protocols import LibvirtPort
from lab.hosts.hostcheck import (
    HOST_TOOLS,
    Check,
    NetProbe,
    check_cpus,
    check_endpoint,
    check_host_networks,
    check_host_tools,
    check_kvm,
    check_libvirt_networks,
    check_memory,
    exit_code,
    lab_endpoints,
    libvirt_subnet_problems,
    parse_libvirt_network_xml,
    parse_meminfo_available_mib,
)
from lab.hosts.hypervisor import HostFacts
from lab.hosts.pins import Http, pin_count, pin_jobs, registry_base
from lab.model.config import Lab, LabError

LIBVIRT_SOCK = Path("/run/libvirt/libvirt-sock")
LIBVIRT_TIMEOUT_S = 10.0


def expect_free_libvirt_subnets(lab: Lab, libvirt: LibvirtPort) -> None:
    """Raise LabError naming every range of the lab another libvirt network holds."""
    existing = [parse_libvirt_network_xml(xml) for xml in libvirt.network_xmls()]
    problems = libvirt_subnet_problems(lab, existing)
    if problems:
        raise LabError(f"{lab.source or lab.name} (libvirt networks on this host)", problems)


def libvirt_network_xmls() -> tuple[str, ...] | None:
    """The running libvirtd's networks, or None when none runs (nothing is started)."""
    if not LIBVIRT_SOCK.exists():
        return None
    from lab.adapters.libvirt import network_xmls

    box: dict[str, tuple[str, ...]] = {}
    thread = threading.Thread(target=lambda: box.update(x=network_xmls()), daemon=True)
    thread.start()
    thread.join(LIBVIRT_TIMEOUT_S)
    return box.get("x")


def host_checks(
    lab: Lab,
    facts: HostFacts,
    meminfo: str,
    host_cpus: int,
    tools: dict[str, bool],
    host_networks: Sequence[IPv4Network],
    libvirt_xmls: Sequence[str] | None,
) -> list[Check]:
    return [
        check_kvm(lab, facts),
        check_memory(lab, parse_meminfo_available_mib(meminfo)),
        check_cpus(lab, host_cpus),
        check_host_tools(tools),
        check_host_networks(lab, host_networks),
        check_libvirt_networks(lab, libvirt_xmls),
    ]


def network_checks(
    lab: Lab, net: NetProbe, timeout: float, proxy: str = "", manifest_cached: bool = False
) -> list[Check]:
    endpoints = lab_endpoints(lab, manifest_cached)
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda e: check_endpoint(e, net, timeout, proxy), endpoints))


def pin_checks(
    lab: Lab, http: Http, timeout: float, base_for: Callable[[str], str] = registry_base
) -> list[Check]:
    """Every pinned rpm in its repository's metadata and every pinned image tag in its
    registry, a repository or an image per job, side by side."""
    jobs = list(pin_jobs(lab, http, timeout, base_for))
    with ThreadPoolExecutor(max_workers=8) as pool:
        return [check for checks in pool.map(lambda job: job(), jobs) for check in checks]


def gather(lab: Lab, network: bool, timeout: float) -> list[Check]:
    """Every check, with the real probes of this host."""
    from lab.adapters.fetch import is_cached
    from lab.adapters.host import probe_host_facts, probe_host_networks
    from lab.adapters.netprobe import HttpClient, https_proxy
    from lab.adapters.netprobe import NetProbe as RealNetProbe

    checks = host_checks(
        lab,
        probe_host_facts(),
        Path("/proc/meminfo").read_text(),
        os.cpu_count() or 1,
        {tool: shutil.which(tool) is not None for tool in HOST_TOOLS},
        probe_host_networks(),
        libvirt_network_xmls(),
    )
    if not network:
        count = len(lab_endpoints(lab))
        pins = pin_count(lab)
        checks.append(
            Check(
                "network",
                "skipped",
                f"--no-network: {count} URL(s) and registries, {pins} pinned package(s) and "
                "image(s) unchecked",
            )
        )
        return checks
    fl = lab.pod_network.flannel
    cached = fl is not None and is_cached(fl.manifest_sha256)
    reachable = network_checks(lab, RealNetProbe(), timeout, https_proxy(), cached)
    return checks + reachable + pin_checks(lab, HttpClient(), timeout)


STYLE = {"ok": "green", "missing": "bold red", "warn": "yellow", "info": "cyan", "skipped": "dim"}


def report(lab: Lab, checks: Sequence[Check], say: Callable[[str], None]) -> int:
    say(f"preflight {lab.name} ({lab.source or lab.name}): nothing is created or changed")
    for c in checks:
        fix = f"\n             fix: {c.fix}" if c.fix and c.status != "ok" else ""
        say(f"  [{STYLE[c.status]}]{c.status:8}[/] {c.name}: {c.detail}{fix}")
    code = exit_code(checks)
    missing = [c.name for c in checks if c.status == "missing"]
    if code:
        say(f"[bold red]not ready[/]: {len(missing)} missing ({', '.join(missing)})")
    else:
        say(
            "[green]ready[/]: nothing missing"
            + (" (see warnings)" if any(c.status == "warn" for c in checks) else "")
        )
    return code


def preflight(lab: Lab, network: bool = True, timeout: float = 5.0) -> int:
    console = Console(highlight=False, soft_wrap=True)
    return report(lab, gather(lab, network, timeout), console.print)
