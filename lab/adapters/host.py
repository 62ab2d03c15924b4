"""Facts about the machine the lab runs on (observes only)."""

from __future__ import annotations

import grp
import json
import os
import time
from ipaddress import IPv4Network
from pathlib import Path

from lab.adapters.local import run
from lab.hosts.capacity import (
    HostResources,
    parse_cgroup_memory_room_mib,
    parse_meminfo_available_mib,
)
from lab.hosts.cpuload import CpuSample, parse_pid_cpu, parse_proc_stat_busy
from lab.hosts.hypervisor import CacheFile, HostFacts, KvmDevice, KvmViewFacts
from lab.hosts.parse import parse_ip_addr_networks


def probe_host_facts() -> HostFacts:
    dev_kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
    vendor = Path("/sys/module/kvm_intel").exists() or Path("/sys/module/kvm_amd").exists()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    virt_flag = any(f" {flag}" in flags for flag in ("vmx", "svm"))
    return HostFacts(dev_kvm, vendor, virt_flag)


DEV_KVM = Path("/dev/kvm")
QEMU_CAPS_CACHE = Path("/var/cache/libvirt/qemu/capabilities")


def probe_kvm_view_facts() -> KvmViewFacts:
    try:
        st = DEV_KVM.stat()
        device: KvmDevice | None = KvmDevice(st.st_mode & 0o7777, st.st_gid)
    except FileNotFoundError:
        device = None
    try:
        kvm_gid: int | None = grp.getgrnam("kvm").gr_gid
    except KeyError:
        kvm_gid = None
    return KvmViewFacts(device, kvm_gid)


def probe_caps_cache(directory: Path = QEMU_CAPS_CACHE) -> tuple[CacheFile, ...] | None:
    """libvirt's QEMU capabilities cache files; None if the directory cannot be read (not root,
    or libvirt has not probed yet)."""
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return None
    files = []
    for path in entries:
        try:
            st = path.stat()
        except FileNotFoundError:  # replaced under our feet: the next snapshot sees the new one
            continue
        files.append(CacheFile(path.name, st.st_mtime_ns, st.st_ino, st.st_size))
    return tuple(files)


def probe_host_networks() -> tuple[IPv4Network, ...]:
    """IPv4 networks of the host's own interfaces (libvirt and lab bridges excluded)."""
    out = run(["ip", "-j", "addr", "show"], timeout=10).stdout
    return parse_ip_addr_networks(json.loads(out), exclude_prefixes=("virbr", "netlab", "lo"))


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def probe_host_resources() -> HostResources:
    """CPUs this process may use and the memory available for VMs (the smaller of the
    kernel's MemAvailable and what this cgroup's memory.max still allows)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    available = parse_meminfo_available_mib(_read("/proc/meminfo"))
    source = "MemAvailable in /proc/meminfo"
    room = parse_cgroup_memory_room_mib(
        _read("/sys/fs/cgroup/memory.max"), _read("/sys/fs/cgroup/memory.current")
    )
    if room is not None and (available is None or room < available):
        available, source = room, "this cgroup's memory.max - memory.current"
    return HostResources(cpus or 1, available, source)


def systemd_is_pid1() -> bool:
    try:
        return Path("/proc/1/comm").read_text().strip() == "systemd"
    except OSError:
        return False


def probe_cpu_sample(guest_names: tuple[str, ...]) -> CpuSample:
    """The host's busy CPU time, this process tree's, and that of the QEMU processes of the
    libvirt domains named (matched by `guest=NAME,` on their command line)."""
    ticks = os.sysconf("SC_CLK_TCK")
    times = os.times()
    guests = {}
    marks = tuple(f"guest={name},".encode() for name in guest_names)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if any(m in cmdline for m in marks):
                guests[int(proc.name)] = parse_pid_cpu((proc / "stat").read_text(), ticks)
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read
    return CpuSample(
        at=time.monotonic(),
        host_busy_s=parse_proc_stat_busy(_read("/proc/stat"), ticks),
        own_s=times.user + times.system + times.children_user + times.children_system,
        guests_s=guests,
    )
