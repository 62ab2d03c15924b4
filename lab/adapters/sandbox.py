"""libvirt where systemd is not PID 1, inside a network namespace the lab creates.

On a normal host the system libvirtd (systemd service) is used and nothing here runs. On hosts
without systemd (containers, microVMs like our CI machines) this module starts virtlogd and
libvirtd by hand, with libvirtd inside network namespace `netlab`: every libvirt bridge, dnsmasq
and VM tap device then lives in that namespace, and so does every packet the lab sends. The
calling process joins the namespace (`enter_netns`) so vagrant, ssh and the tests talk to the VMs
from inside it. Only one libvirtd can run per machine (they share /run/libvirt).

Choose with NETLAB_NETNS: unset = automatic (namespace `netlab` without systemd, none with it);
a name = that namespace; empty = no namespace (use whatever libvirtd is running).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from pathlib import Path

from lab import waits
from lab.adapters.host import systemd_is_pid1
from lab.adapters.local import run
from lab.errors import LabStateError

log = logging.getLogger(__name__)

DEFAULT_NETNS = "netlab"
CLONE_NEWNET = 0x40000000
LIBVIRT_SOCK = Path("/run/libvirt/libvirt-sock")
LIBVIRT_SOCKET = waits.Policy("libvirtd socket appears", timeout_s=30, interval_s=0.1)
POOL_DIR = "/var/lib/libvirt/images"


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


def libvirtd_netns() -> int | None:
    """The network-namespace inode the running libvirtd lives in (None if not running)."""
    result = run(["pgrep", "-o", "-x", "libvirtd"], timeout=10, check=False)
    if result.exit_code != 0:
        return None
    return os.stat(f"/proc/{result.stdout.split()[0]}/ns/net").st_ino


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
    ensure_kvm_group()
    Path("/run/libvirt").mkdir(parents=True, exist_ok=True)
    if not _running("virtlogd"):
        run(["/usr/sbin/virtlogd", "-d"], timeout=30)
    running_in = libvirtd_netns()
    if running_in is None:
        run(["ip", "netns", "exec", netns, "/usr/sbin/libvirtd", "-d"], timeout=30)
        log.info("started libvirtd in network namespace %s", netns)
    elif running_in != netns_inode(netns):
        raise LabStateError(
            f"a libvirtd already runs outside network namespace {netns!r}; only one can run per "
            "machine: stop it (pkill -x libvirtd) or set NETLAB_NETNS= to use it as it is"
        )
    waits.wait_until(LIBVIRT_SOCKET, LIBVIRT_SOCK.exists, bool)
    ensure_default_pool()


def ensure_kvm_group() -> None:
    """/dev/kvm must belong to the host's `kvm` group: with another group libvirt thinks its
    cached QEMU capabilities are stale and re-probes QEMU on every call (seconds each; a
    2-node `vagrant up` went from 58 s to 245 s). A chroot that shares the host's /dev can
    leave it that way (udev's postinst with the image's group ids)."""
    import grp

    kvm = Path("/dev/kvm")
    try:
        gid = grp.getgrnam("kvm").gr_gid
    except KeyError:
        return
    if kvm.exists() and kvm.stat().st_gid != gid:
        log.warning("/dev/kvm has group id %s, not kvm (%s): fixing", kvm.stat().st_gid, gid)
        os.chown(kvm, -1, gid)


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


def start() -> str | None:
    """Make libvirt usable (in the lab namespace where needed); returns the namespace used."""
    netns = chosen_netns()
    ensure_libvirtd(netns)
    return netns


def enter(netns: str | None) -> None:
    if netns is not None:
        enter_netns(netns)
