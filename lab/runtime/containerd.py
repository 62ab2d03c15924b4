"""containerd 1.6 as the lab's CRI runtime (pure): its config.toml, a CNI network for it, and
the `ctr` command lines the lab runs. Side effects (starting containerd, importing images)
live in lab/adapters/containerd.py.

The config is containerd's version 2 format with the CRI plugin enabled (Debian 12 ships
containerd 1.6.20 with it built in): our pause image as `sandbox_image` (imported, never
pulled), runc (or crun: `runtime_binary`) through the io.containerd.runc.v2 shim, CNI from
`cni_conf_dir`/`cni_bin_dir`
(Debian's plugins live in /usr/lib/cni), the overlayfs snapshotter (works in the box's ext4
guests and on the ext4 host; `native` is the fallback where overlay mounts are refused), and
no plugin that looks for files outside the given root/state (aufs, btrfs, zfs, devmapper,
the /opt plugin dir, OTLP tracing).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Any

CRI_NAMESPACE = "k8s.io"  # the containerd namespace the CRI plugin keeps its images in
DEBIAN_CNI_BIN_DIR = "/usr/lib/cni"
SNAPSHOTTERS = ("overlayfs", "native")
DISABLED_PLUGINS = (
    "io.containerd.internal.v1.opt",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.tracing.processor.v1.otlp",
)
CRI = 'plugins."io.containerd.grpc.v1.cri"'
RUNC = f"{CRI}.containerd.runtimes.runc"


@dataclass(frozen=True)
class ContainerdConfig:
    sandbox_image: str
    root: str = "/var/lib/containerd"
    state: str = "/run/containerd"
    address: str = "/run/containerd/containerd.sock"
    cni_conf_dir: str = "/etc/cni/net.d"
    cni_bin_dir: str = DEBIAN_CNI_BIN_DIR
    snapshotter: str = "overlayfs"
    runtime_binary: str = "runc"  # the OCI runtime the runc v2 shim calls (BinaryName): runc, crun
    runc_root: str = ""  # runc's state directory; "" = the shim's default /run/containerd/runc
    systemd_cgroup: bool = False  # cgroupfs unless systemd (and a kubelet using it) is there
    stream_address: str = "127.0.0.1"  # CRI streaming (exec/attach) server, loopback only
    # True: never give a container a lower oom_score_adj than containerd's own. Needed where
    # lowering it is refused (this CI's microVM host: runc's "failed to update
    # /proc/self/oom_score_adj: Permission denied" for the sandbox's -998).
    restrict_oom_score_adj: bool = False
    log_level: str = "info"
    # the group owning the gRPC socket (mode 0660): the lab's login user's, so the harness
    # reaches the CRI through an SSH socket forward without root; None = root's (containerd's
    # default)
    gid: int | None = None


def validate_config(config: ContainerdConfig) -> list[str]:
    """Problems with a config (never raises), each naming the field, the value and the fix."""
    problems: list[str] = []
    for name in ("root", "state", "address", "cni_conf_dir", "cni_bin_dir"):
        value = getattr(config, name)
        if not value.startswith("/"):
            problems.append(f"containerd {name} = {value!r}: must be an absolute path")
    if not re.fullmatch(r"[A-Za-z0-9._/-]+", config.runtime_binary):
        problems.append(
            f"containerd runtime_binary = {config.runtime_binary!r}: give a command name on "
            "PATH or an absolute path, e.g. 'runc' or 'crun'"
        )
    if config.runc_root and not config.runc_root.startswith("/"):
        problems.append(f"containerd runc_root = {config.runc_root!r}: must be an absolute path")
    if config.snapshotter not in SNAPSHOTTERS:
        problems.append(
            f"containerd snapshotter = {config.snapshotter!r}: use one of {', '.join(SNAPSHOTTERS)}"
        )
    if not re.fullmatch(
        r"[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+:[A-Za-z0-9._-]+", config.sandbox_image
    ):
        problems.append(
            f"containerd sandbox_image = {config.sandbox_image!r}: give a full reference "
            "with a registry and a tag, e.g. 'netlab.invalid/pause:0123abcd'"
        )
    if config.gid is not None and not 0 <= config.gid < 2**31:
        problems.append(f"containerd gid = {config.gid!r}: must be a group id (0 or more)")
    if config.log_level not in ("trace", "debug", "info", "warn", "error"):
        problems.append(f"containerd log_level = {config.log_level!r}: use info or debug")
    return problems


def _toml(value: Any) -> str:
    """A TOML value: strings as basic strings (JSON escapes are valid TOML), bools, ints,
    arrays of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def _table(name: str, items: Sequence[tuple[str, Any]]) -> str:
    return f"[{name}]\n" + "".join(f"  {key} = {_toml(value)}\n" for key, value in items)


def render_config(config: ContainerdConfig) -> str:
    """/etc/containerd/config.toml for containerd 1.6 (config version 2)."""
    problems = validate_config(config)
    if problems:
        raise ValueError("; ".join(problems))
    runc_options: list[tuple[str, Any]] = [("BinaryName", config.runtime_binary)]
    if config.runc_root:
        runc_options.append(("Root", config.runc_root))
    runc_options.append(("SystemdCgroup", config.systemd_cgroup))
    head = (
        "# containerd 1.6 for k8s-netlab: the CRI plugin with our pause image and CNI network\n"
        "# (rendered by lab/runtime/containerd.py; do not edit here).\n"
        "version = 2\n"
        f"root = {_toml(config.root)}\n"
        f"state = {_toml(config.state)}\n"
        f"disabled_plugins = {_toml(list(DISABLED_PLUGINS))}\n"
    )
    tables = [
        _table(
            "grpc",
            [
                ("address", config.address),
                *([("gid", config.gid)] if config.gid is not None else []),
            ],
        ),
        _table("ttrpc", [("address", config.address + ".ttrpc")]),
        _table("debug", [("level", config.log_level)]),
        _table(
            CRI,
            [
                ("sandbox_image", config.sandbox_image),
                ("stream_server_address", config.stream_address),
                ("stream_server_port", "0"),
                ("enable_selinux", False),
                ("disable_apparmor", True),
                ("restrict_oom_score_adj", config.restrict_oom_score_adj),
                ("max_container_log_line_size", 16384),
            ],
        ),
        _table(
            f"{CRI}.containerd",
            [
                ("snapshotter", config.snapshotter),
                ("default_runtime_name", "runc"),
                ("discard_unpacked_layers", False),
            ],
        ),
        _table(RUNC, [("runtime_type", "io.containerd.runc.v2")]),
        _table(f"{RUNC}.options", runc_options),
        _table(
            f"{CRI}.cni",
            [
                ("bin_dir", config.cni_bin_dir),
                ("conf_dir", config.cni_conf_dir),
                ("max_conf_num", 1),
            ],
        ),
    ]
    return head + "".join("\n" + table for table in tables)


def render_bridge_conflist(
    name: str, bridge: str, subnet: IPv4Network, data_dir: str, cni_version: str = "0.4.0"
) -> dict[str, Any]:
    """A CNI network for a standalone containerd: a bridge with the first address of `subnet`
    as gateway, host-local IPAM keeping its leases in `data_dir`, and a default route."""
    gateway = next(subnet.hosts())
    return {
        "cniVersion": cni_version,
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(subnet), "gateway": str(gateway)}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": data_dir,
                },
            }
        ],
    }


def render_conflist_text(conflist: dict[str, Any]) -> str:
    return json.dumps(conflist, indent=2, sort_keys=True) + "\n"


def ctr_argv(address: str, *args: str, namespace: str = CRI_NAMESPACE) -> tuple[str, ...]:
    """A `ctr` command against the containerd at `address`, in the CRI's namespace."""
    return ("ctr", "--address", address, "--namespace", namespace, *args)


def import_argv(address: str, archive: str, snapshotter: str = "overlayfs") -> tuple[str, ...]:
    """Import an OCI archive and unpack it for the CRI's snapshotter."""
    return ctr_argv(address, "images", "import", "--snapshotter", snapshotter, archive)


def containerd_argv(config_path: str, netns: str | None = None) -> tuple[str, ...]:
    """Run containerd with `config_path`, inside network namespace `netns` if given.

    `nsenter --net`, not `ip netns exec`: the latter also gives the process a private mount
    namespace, so the netns bind mounts containerd makes for its pods (/var/run/netns/cni-*)
    and its containers' rootfs mounts would be invisible outside it (a plain empty file in
    /run/netns for everyone else)."""
    argv = ("containerd", "--config", config_path)
    return ("nsenter", f"--net=/run/netns/{netns}", *argv) if netns else argv


CAP_SYS_RESOURCE = 24


def has_capability(proc_status: str, capability: int) -> bool:
    """Whether the effective capability set in a /proc/<pid>/status text has `capability`."""
    for line in proc_status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> capability & 1)
    raise ValueError("no CapEff line in the status text")


def parse_mount_points(mountinfo: str) -> list[str]:
    """Mount points from a /proc/<pid>/mountinfo text (field 5, octal escapes decoded)."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4]))
    return points


def mounts_below(mountinfo: str, root: str) -> list[str]:
    """Mount points at or below `root`, deepest first (the order to unmount them)."""
    prefix = root.rstrip("/") + "/"
    below = [p for p in parse_mount_points(mountinfo) if p == root or p.startswith(prefix)]
    return sorted(set(below), key=lambda p: (-p.count("/"), p))


def shim_pids(cmdlines: dict[int, str], address: str) -> list[int]:
    """PIDs of the containerd shims serving the containerd at `address`, from {pid: cmdline
    with NUL separators}: a shim runs with `-address <containerd socket>`."""
    found = []
    for pid, cmdline in sorted(cmdlines.items()):
        argv = cmdline.split("\0")
        if argv and argv[0].rsplit("/", 1)[-1].startswith("containerd-shim"):
            pairs = itertools.pairwise(argv)
            if any(flag in ("-address", "--address") and value == address for flag, value in pairs):
                found.append(pid)
    return found
