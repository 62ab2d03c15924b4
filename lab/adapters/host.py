"""Facts about the machine the lab runs on (observes only)."""

from __future__ import annotations

import json
import os
from ipaddress import IPv4Network
from pathlib import Path

from lab.adapters.local import run
from lab.hypervisor import HostFacts
from lab.parse import parse_ip_addr_networks


def probe_host_facts() -> HostFacts:
    dev_kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
    vendor = Path("/sys/module/kvm_intel").exists() or Path("/sys/module/kvm_amd").exists()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    virt_flag = any(f" {flag}" in flags for flag in ("vmx", "svm"))
    return HostFacts(dev_kvm, vendor, virt_flag)


def probe_host_networks() -> tuple[IPv4Network, ...]:
    """IPv4 networks of the host's own interfaces (libvirt and lab bridges excluded)."""
    out = run(["ip", "-j", "addr", "show"], timeout=10).stdout
    return parse_ip_addr_networks(json.loads(out), exclude_prefixes=("virbr", "netlab", "lo"))


def systemd_is_pid1() -> bool:
    try:
        return Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False
