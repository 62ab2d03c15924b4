"""A containerd started by the lab (not a service): in a network namespace, with its own root,
state, socket and config (lab/runtime/containerd.py renders them), stopped and cleaned up by the
same code. Used by tests that drive the CRI on this host; on the lab's VMs containerd runs as the
box's systemd service instead.

    daemon = start_containerd(config, workdir, netns="nl-cri-1a2b")
    import_images(config.address, built.archive)
    ...
    daemon.stop(); cleanup(config, workdir)
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lab.adapters.local import run, spawn, stop_group
from lab.common import waits
from lab.common.errors import LabStateError
from lab.runtime import containerd

log = logging.getLogger(__name__)

SOCKET_APPEARS = waits.Policy("containerd socket appears", timeout_s=30, interval_s=0.1)
STOP_GRACE_S = 15
IMPORT_TIMEOUT_S = 300


def can_lower_oom_score_adj() -> bool:
    """runc gives a pod sandbox oom_score_adj -998; that needs CAP_SYS_RESOURCE."""
    status = Path("/proc/self/status").read_text()
    return containerd.has_capability(status, containerd.CAP_SYS_RESOURCE)


@dataclass
class ContainerdDaemon:
    config: containerd.ContainerdConfig
    config_path: Path
    log_path: Path
    proc: subprocess.Popen[str]

    @property
    def address(self) -> str:
        return self.config.address

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM containerd (and its process group), SIGKILL after STOP_GRACE_S. Shims run in
        their own process groups and exit when their containers are removed (see cleanup)."""
        if self.proc.poll() is None:
            stop_group(self.proc, signal.SIGTERM, STOP_GRACE_S)


def start_containerd(
    config: containerd.ContainerdConfig, workdir: Path, netns: str | None = None
) -> ContainerdDaemon:
    """Write config.toml into workdir, start containerd with it (in `netns` if given), and
    return once its socket is there. Its output goes to workdir/containerd.log."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "config.toml"
    config_path.write_text(containerd.render_config(config))
    log_path = workdir / "containerd.log"
    argv = containerd.containerd_argv(str(config_path), netns)
    proc = spawn(argv, log_path)
    daemon = ContainerdDaemon(config, config_path, log_path, proc)
    log.info("started containerd (pid %d) for %s", proc.pid, config.address)

    def socket_or_exit() -> bool:
        if proc.poll() is not None:
            raise LabStateError(
                f"containerd exited {proc.returncode} at start ({' '.join(argv)}); "
                f"its log:\n{daemon.log_tail()}"
            )
        return Path(config.address).exists()

    try:
        waits.wait_until(SOCKET_APPEARS, socket_or_exit, bool)
    except BaseException:
        daemon.stop()
        raise
    return daemon


def import_images(address: str, archive: Path, snapshotter: str = "overlayfs") -> None:
    run(containerd.import_argv(address, str(archive), snapshotter), timeout=IMPORT_TIMEOUT_S)


def _cmdlines() -> dict[int, str]:
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found[int(entry.name)] = (entry / "cmdline").read_text(errors="replace")
    return found


def leftover_shims(address: str) -> list[int]:
    return containerd.shim_pids(_cmdlines(), address)


def cleanup(config: containerd.ContainerdConfig, netns_paths: list[str]) -> list[str]:
    """After containerd stopped: kill the shims it left (by PID, only ours), unmount what is
    still mounted below its root and state, unmount and remove the pod netns files we were
    told about. Returns what had to be cleaned (empty when containerd cleaned up itself)."""
    cleaned: list[str] = []
    for pid in leftover_shims(config.address):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            cleaned.append(f"killed shim {pid}")
    for top in (config.state, config.root):
        mountinfo = Path("/proc/self/mountinfo").read_text()
        for point in containerd.mounts_below(mountinfo, top):
            run(["umount", "-l", point], timeout=30, check=False)
            cleaned.append(f"unmounted {point}")
    for path in netns_paths:
        if os.path.lexists(path):
            run(["umount", path], timeout=30, check=False)
            with contextlib.suppress(OSError):
                os.unlink(path)
            cleaned.append(f"removed netns {path}")
    return cleaned
