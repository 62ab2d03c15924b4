"""libvirt where systemd is not PID 1, inside a network namespace the lab creates.

On a normal host the system libvirtd (systemd service) is used and nothing here runs. On hosts
without systemd (containers, microVMs like our CI machines) this module starts virtlogd and
libvirtd by hand, with libvirtd inside network namespace `netlab`: every libvirt bridge, dnsmasq
and VM tap device then lives in that namespace, and so does every packet the lab sends. The
calling process joins the namespace (`enter_netns`) so vagrant, ssh and the tests talk to the VMs
from inside it. Only one libvirtd can run per machine (they share /run/libvirt).

Choose with NETLAB_NETNS: unset = automatic (namespace `netlab` without systemd, none with it);
a name = that namespace; empty = no namespace (use whatever libvirtd is running).

libvirt's view of KVM is made consistent before libvirtd starts (lab/hosts/hypervisor.py explains
why and what was measured): /dev/kvm gets udev's group and mode. Then, whoever started libvirtd,
`expect_caps_cache_stable` fails loudly if libvirt keeps re-probing QEMU anyway.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import threading
from pathlib import Path

from lab.adapters.host import (
    DEV_KVM,
    QEMU_CAPS_CACHE,
    probe_caps_cache,
    probe_kvm_view_facts,
    systemd_is_pid1,
)
from lab.adapters.local import run
from lab.common import waits
from lab.common.errors import LabStateError
from lab.hosts.hypervisor import caps_cache_problem, caps_cache_rewrites, plan_kvm_view

log = logging.getLogger(__name__)

DEFAULT_NETNS = "netlab"
CLONE_NEWNET = 0x40000000
LIBVIRT_SOCK = Path("/run/libvirt/libvirt-sock")
LIBVIRT_SOCKET = waits.Policy("libvirtd socket appears", timeout_s=30, interval_s=0.1)
POOL_DIR = "/var/lib/libvirt/images"
LIBVIRTD = "/usr/sbin/libvirtd"
URI = "qemu:///system"
LIBVIRTD_STOPS = waits.Policy("libvirtd exits", timeout_s=60, interval_s=0.2)
CAPS_CALL_TIMEOUT_S = 300  # one `virsh capabilities`; minutes only while libvirt re-probes QEMU


def chosen_netns() -> str | None:
    configured = os.environ.get("NETLAB_NETNS")
    if configured is not None:
        return configured or None
    return None if systemd_is_pid1() else DEFAULT_NETNS


def current_netns_inode() -> int:
    return os.stat("/proc/self/ns/net").st_ino


def netns_inode(name: str) -> int | None:
    path = Path("/run/netns") / name
    try:
        return path.stat().st_ino
    except OSError:
        return None


def ensure_netns(name: str) -> None:
    if netns_inode(name) is None:
        run(["ip", "netns", "add", name], timeout=10)
        log.info("created network namespace %s", name)
    run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], timeout=10)


def enter_netns(name: str) -> None:
    """Move this process into the namespace. Must run before any thread is started."""
    target = netns_inode(name)
    if target is None:
        raise LabStateError(f"network namespace {name!r} does not exist")
    if current_netns_inode() == target:
        return
    if threading.active_count() > 1:
        raise LabStateError("enter_netns must run before threads start (it moves one thread)")
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise LabStateError(f"setns({name}) failed: {os.strerror(err)} (needs root)")
    finally:
        os.close(fd)
    log.debug("joined network namespace %s", name)


def _running(process: str) -> bool:
    return run(["pgrep", "-x", process], timeout=10, check=False).exit_code == 0


def libvirtd_pid() -> int | None:
    result = run(["pgrep", "-o", "-x", "libvirtd"], timeout=10, check=False)
    return int(result.stdout.split()[0]) if result.exit_code == 0 else None


def libvirtd_netns() -> int | None:
    """The network-namespace inode the running libvirtd lives in (None if not running)."""
    pid = libvirtd_pid()
    return None if pid is None else os.stat(f"/proc/{pid}/ns/net").st_ino


def ensure_kvm_view() -> None:
    """/dev/kvm with udev's group and mode where libvirt's QEMU user cannot use it."""
    plan = plan_kvm_view(probe_kvm_view_facts())
    if plan.chgrp is not None or plan.chmod is not None:
        log.warning("%s: fixing", plan.why)
    if plan.chgrp is not None:
        os.chown(DEV_KVM, -1, plan.chgrp)
    if plan.chmod is not None:
        os.chmod(DEV_KVM, plan.chmod)


def ensure_libvirtd(netns: str | None) -> None:
    """Start virtlogd and libvirtd unless they run; check libvirtd is in the namespace we use."""
    if netns is None:
        if not LIBVIRT_SOCK.exists():
            raise LabStateError(
                f"{LIBVIRT_SOCK} is missing: start libvirt (`systemctl start libvirtd`) or "
                "unset NETLAB_NETNS to let the lab start it in a namespace"
            )
        return
    ensure_netns(netns)
    ensure_kvm_view()
    Path("/run/libvirt").mkdir(parents=True, exist_ok=True)
    if not _running("virtlogd"):
        run(["/usr/sbin/virtlogd", "-d"], timeout=30)
    running_in = libvirtd_netns()
    if running_in is None:
        run(["ip", "netns", "exec", netns, LIBVIRTD, "-d"], timeout=30)
        log.info("started libvirtd in network namespace %s", netns)
    elif running_in != netns_inode(netns):
        raise LabStateError(
            f"a libvirtd already runs outside network namespace {netns!r}; only one can run per "
            "machine: stop it (pkill -x libvirtd) or set NETLAB_NETNS= to use it as it is"
        )
    waits.wait_until(LIBVIRT_SOCKET, LIBVIRT_SOCK.exists, bool)


def ensure_default_pool() -> None:
    info = run(["virsh", "-c", "qemu:///system", "pool-info", "default"], timeout=30, check=False)
    if info.exit_code == 0 and "running" in info.stdout:
        return
    Path(POOL_DIR).mkdir(parents=True, exist_ok=True)
    if info.exit_code != 0:
        run(
            [
                "virsh",
                "-c",
                "qemu:///system",
                "pool-define-as",
                "default",
                "dir",
                "--target",
                POOL_DIR,
            ],
            timeout=30,
        )
    run(["virsh", "-c", "qemu:///system", "pool-start", "default"], timeout=30)
    run(["virsh", "-c", "qemu:///system", "pool-autostart", "default"], timeout=30)


def expect_caps_cache_stable() -> None:
    """Fail loudly when libvirt keeps invalidating its QEMU capabilities cache: identical
    `virsh capabilities` calls that each rewrite /var/cache/libvirt/qemu/capabilities/ (each
    then re-probes QEMU, seconds per call). Costs two quick calls on a healthy libvirt (a
    third only to confirm a rewrite); the first call after a start waits for libvirt's own
    probes. Needs root to read the cache (skipped otherwise)."""
    if os.geteuid() != 0:
        log.debug("not root: libvirt's QEMU capabilities cache not checked")
        return

    def call() -> None:
        run(["virsh", "-c", URI, "capabilities"], timeout=CAPS_CALL_TIMEOUT_S)

    call()
    before = probe_caps_cache()
    if before is None:
        log.debug("%s unreadable: libvirt's QEMU capabilities cache not checked", QEMU_CAPS_CACHE)
        return
    rewrites: list[tuple[str, ...]] = []
    for _ in range(2):  # a single rewrite can be legitimate (QEMU upgraded): confirm it
        call()
        after = probe_caps_cache() or ()
        rewrites.append(caps_cache_rewrites(before, after))
        if not rewrites[-1]:
            break
        before = after
    problem = caps_cache_problem(tuple(rewrites), probe_kvm_view_facts(), str(QEMU_CAPS_CACHE))
    if problem:
        raise LabStateError(problem)


def stop_libvirtd() -> None:
    """Stop the running libvirtd (its VMs keep running); for benchmarks of a cold start."""
    pid = libvirtd_pid()
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    waits.wait_until(LIBVIRTD_STOPS, lambda: Path(f"/proc/{pid}").exists(), lambda alive: not alive)
    log.info("stopped libvirtd (pid %s)", pid)


def forget_qemu_capabilities() -> None:
    """Delete libvirt's QEMU capabilities cache (libvirtd must be stopped): the next start
    probes every QEMU binary again, as on a machine where libvirtd never ran."""
    if libvirtd_pid() is not None:
        raise LabStateError("libvirtd is running: stop it before clearing its QEMU cache")
    shutil.rmtree(QEMU_CAPS_CACHE.parent, ignore_errors=True)


def start() -> str | None:
    """Start libvirt where needed (in the lab namespace); returns the namespace used.

    Does not wait for libvirtd: a libvirtd that just started probes every QEMU binary before it
    answers its first call (4-8 s here), and that runs while the caller builds the box. `enter`
    waits for it."""
    netns = chosen_netns()
    ensure_libvirtd(netns)
    return netns


def enter(netns: str | None) -> None:
    """libvirt ready (the default pool of a libvirtd started here; a QEMU capabilities cache
    that holds), then this process in the lab namespace."""
    if netns is not None:
        ensure_default_pool()
    expect_caps_cache_stable()
    if netns is not None:
        enter_netns(netns)
