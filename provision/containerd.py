"""containerd as the lab's CRI runtime (Debian labs with `runtime: containerd`), pure: probe ->
facts -> plan. The box has containerd 1.6, runc and crun, running with Debian's defaults; this step
gives it the lab's config, restarts it when the config changed (and waits for its socket,
bounded), and imports the lab's images into the CRI's namespace when any is missing.

- /etc/containerd/config.toml is lab/runtime/containerd.py's render_config: the CRI plugin with our
  pause image as sandbox_image, CNI from /etc/cni/net.d (the conflist the cni-config step writes)
  and Debian's plugins in /usr/lib/cni, the gRPC socket's group = the login user's (so the harness
  reaches the CRI through an SSH socket forward as that user), and `restrict_oom_score_adj` where
  root on the node cannot lower an oom_score_adj, and the lab's `oci_runtime` (runc or crun) as the
  binary the runc v2 shim calls; a node without it is an error naming the fix.
- That binary is called through a read-only bind mount of it (a systemd mount unit that
  containerd requires) with `_LIBCONTAINER_CLONED_BINARY=1` in containerd's environment (a
  drop-in). runc 1.1 and crun 1.8 guard the host's binary against a container that would
  overwrite it through /proc/<pid>/exe (CVE-2019-5736) by cloning themselves (crun on every
  call, runc in every `runc init`): a bind mount of /proc/self/exe on a file in /tmp,
  remounted read-only, then a re-exec. Each of those mounts wakes systemd (PID 1 re-reads the
  mount table and signals it over D-Bus): 65-100 ms of a TCG guest's CPU per crun call,
  against 27-35 ms without, with ~77 calls per node and suite run. Both skip the clone when
  that variable is set and their binary sits on a read-only mount, which is the same guard:
  the binary cannot be written through it. (runc later removed the bind-mount clone for this
  load on systemd: opencontainers/runc#3931; docs/cri.md.)
- The netlab Debian box carries the images already (box/build.sh imports them at build time),
  so on it nothing is imported. On any other box, or after someone removed an image, they
  arrive as one OCI archive (~17 MiB) streamed from the harness over SSH to
  `ctr images import -` (a Command with `stdin_file`): no copy is left on the node.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab.common.commands import Command, Output, cmd
from lab.hosts import facts as f
from lab.hosts.facts import AnyFact
from lab.model.config import Lab, Node
from lab.runtime import containerd
from lab.runtime.images import ImageSet
from provision.model import Step, write_file

CONFIG_PATH = "/etc/containerd/config.toml"
SOCKET = "/run/containerd/containerd.sock"
SERVICE = "containerd"
WAIT_S = 60  # "containerd answers on its socket" after a restart
RUNTIME_DIR = "/usr/local/libexec/netlab"  # the read-only mount of the OCI runtime is in it
DROPIN_PATH = "/etc/systemd/system/containerd.service.d/netlab-oci-runtime.conf"
CLONED_BINARY_ENV = "_LIBCONTAINER_CLONED_BINARY"  # runc's and crun's name for "run as I am"


@dataclass(frozen=True)
class ContainerdFacts:
    config: str | None  # /etc/containerd/config.toml, None when absent
    config_mtime: int | None  # its mtime (epoch seconds)
    active: bool  # `systemctl is-active containerd`
    started_at: int | None  # when the running containerd became active (epoch seconds)
    images: tuple[str, ...]  # image references the CRI namespace holds
    login_gid: int | None  # the login user's primary group
    can_lower_oom_score_adj: bool  # root on the node has CAP_SYS_RESOURCE
    oci_runtime: str | None  # where the lab's OCI runtime is on PATH; None: not there
    runtime_unit: str | None  # the mount unit of its read-only mount, None when absent
    runtime_dropin: str | None  # containerd's drop-in that requires it, None when absent
    runtime_read_only: bool  # that mount is there, read-only


def _int(out: Output, strip: str = "") -> int | None:
    text = out.stdout.strip().lstrip(strip)
    return int(text) if out.ok and text.isdigit() else None


def _images(out: Output) -> tuple[str, ...]:
    if not out.ok:  # containerd not answering: it holds nothing we can use
        return ()
    return tuple(sorted(line.strip() for line in out.stdout.splitlines() if line.strip()))


def _path(out: Output) -> str | None:
    path = out.stdout.strip() if out.ok else ""
    return path or None


def _read_only(out: Output) -> bool:
    """`findmnt -n -o OPTIONS PATH`: "ro,relatime,..." for a read-only mount; nothing (exit
    1) when PATH is no mount point."""
    return out.ok and out.stdout.strip().split(",")[0] == "ro"


def runtime_path(oci_runtime: str) -> str:
    """Where containerd's shim calls the lab's OCI runtime: its read-only mount."""
    return f"{RUNTIME_DIR}/{oci_runtime}"


def mount_unit_name(where: str) -> str:
    """systemd's name for the mount unit of an absolute path (`systemd-escape --path
    --suffix=mount`): "/" between components as "-", any other byte but [A-Za-z0-9:_.] (and a
    leading ".") as \\xHH."""
    path = "/".join(p for p in where.split("/") if p)

    def escape(i: int, c: str) -> str:
        if c == "/":
            return "-"
        if c.isascii() and (c.isalnum() or c in ":_.") and not (i == 0 and c == "."):
            return c
        return "".join(f"\\x{b:02x}" for b in c.encode())

    return "".join(escape(i, c) for i, c in enumerate(path)) + ".mount"


def runtime_unit_path(where: str) -> str:
    return f"/etc/systemd/system/{mount_unit_name(where)}"


def render_runtime_unit(source: str, where: str) -> str:
    """The mount unit that puts the OCI runtime at `where`, read-only (systemd makes the file
    it mounts on)."""
    return (
        "# k8s-netlab (provision/containerd.py): the OCI runtime containerd's shim calls, on a\n"
        "# read-only mount, so that it need not clone itself on every call\n"
        "[Unit]\n"
        f"Description=k8s-netlab: {source} read-only for containerd\n\n"
        "[Mount]\n"
        f"What={source}\nWhere={where}\nType=none\nOptions=bind,ro\n"
    )


def render_containerd_dropin(where: str) -> str:
    """containerd starts after the runtime's read-only mount (which it pulls in) and tells the
    runtime, through the shim's inherited environment, that it runs from such a mount."""
    return (
        "# k8s-netlab (provision/containerd.py)\n"
        f"[Unit]\nRequiresMountsFor={where}\n\n"
        f"[Service]\nEnvironment={CLONED_BINARY_ENV}=1\n"
    )


def _can_lower(out: Output) -> bool:
    try:
        return containerd.has_capability(out.stdout if out.ok else "", containerd.CAP_SYS_RESOURCE)
    except ValueError:
        return True  # unknown: containerd's default (no restriction)


# The login user's group, whoever runs the probe: the applier runs a probe round trip under one
# sudo, where `id -g` alone would say root's; sudo names the user it came from in SUDO_USER.
LOGIN_GID = cmd("sh", "-c", 'id -g "${SUDO_USER:-$(id -un)}"', sudo=False)


def containerd_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    where = runtime_path(lab.oci_runtime)
    started = cmd(
        "systemctl",
        "show",
        SERVICE,
        "--property=ActiveEnterTimestamp",
        "--timestamp=unix",
        "--value",
        sudo=False,
    )
    return {
        "config": f.file_text(CONFIG_PATH),
        "config_mtime": f.Fact(
            "containerd config mtime", cmd("stat", "-c", "%Y", CONFIG_PATH, sudo=False), _int
        ),
        "active": f.unit_active(SERVICE),
        "started_at": f.Fact("containerd active since", started, lambda out: _int(out, "@")),
        "images": f.Fact(
            "CRI images",
            cmd(*containerd.ctr_argv(SOCKET, "images", "list", "--quiet")),
            _images,
        ),
        "login_gid": f.Fact("login user's group", LOGIN_GID, _int),
        # under sudo: root's capabilities
        "can_lower_oom_score_adj": f.Fact(
            "root has CAP_SYS_RESOURCE", cmd("cat", "/proc/self/status"), _can_lower
        ),
        "oci_runtime": f.Fact(
            f"{lab.oci_runtime} on PATH",
            cmd("sh", "-c", f"command -v {lab.oci_runtime}", sudo=False),
            _path,
        ),
        "runtime_unit": f.file_text(runtime_unit_path(where)),
        "runtime_dropin": f.file_text(DROPIN_PATH),
        "runtime_read_only": f.Fact(
            f"{where} mounted read-only",
            cmd("findmnt", "-n", "-o", "OPTIONS", where, sudo=False),
            _read_only,
        ),
    }


def wanted_config(
    images: ImageSet, facts: ContainerdFacts, oci_runtime: str
) -> containerd.ContainerdConfig:
    return containerd.ContainerdConfig(
        sandbox_image=images.ref("pause"),
        runtime_binary=runtime_path(oci_runtime),
        cni_conf_dir="/etc/cni/net.d",
        cni_bin_dir=containerd.DEBIAN_CNI_BIN_DIR,
        address=SOCKET,
        gid=facts.login_gid,
        restrict_oom_score_adj=not facts.can_lower_oom_score_adj,
    )


def wait_argv(seconds: int = WAIT_S) -> tuple[str, ...]:
    """A bounded wait on the node: until `ctr version` answers on the socket."""
    ctr = " ".join(containerd.ctr_argv(SOCKET, "version"))
    return ("timeout", str(seconds), "sh", "-c", f"until {ctr}; do sleep 0.5; done")


def import_command(images: ImageSet) -> Command:
    """The archive streamed from the harness to `ctr images import -` (unpacked for the CRI's
    snapshotter); nothing of it stays on the node but the images."""
    argv = containerd.ctr_argv(SOCKET, "images", "import", "--snapshotter", "overlayfs", "-")
    return Command(argv, stdin_file=images.archive)


def plan_containerd(
    images: ImageSet, lab: Lab, node: Node, facts: ContainerdFacts
) -> tuple[Command, ...]:
    if facts.login_gid is None:
        raise ValueError(f"{node.name}: cannot read the login user's group (`id -g` failed)")
    if facts.oci_runtime is None:
        raise ValueError(
            f"{node.name}: oci_runtime {lab.oci_runtime} is not installed (its box predates it); "
            f"rebuild the lab from the current box: `make destroy lab LAB={lab.name}`"
        )
    plan: list[Command] = []
    where = runtime_path(lab.oci_runtime)
    units = {
        runtime_unit_path(where): (
            facts.runtime_unit,
            render_runtime_unit(facts.oci_runtime, where),
        ),
        DROPIN_PATH: (facts.runtime_dropin, render_containerd_dropin(where)),
    }
    plan += [write_file(path, text) for path, (have, text) in units.items() if have != text]
    if plan:
        plan.append(cmd("systemctl", "daemon-reload"))
    wanted = containerd.render_config(wanted_config(images, facts, lab.oci_runtime))
    if facts.config != wanted:
        plan.append(write_file(CONFIG_PATH, wanted))
    stale = (
        facts.config_mtime is not None
        and facts.started_at is not None
        and facts.config_mtime > facts.started_at
    )
    # so far the plan only writes files: any of them is read when containerd starts
    if plan or stale or not facts.active or not facts.runtime_read_only:
        plan += [cmd("systemctl", "restart", SERVICE), Command(wait_argv())]
    refs = [ref for _, ref in images.refs]
    if not set(refs) <= set(facts.images):
        plan.append(import_command(images))
    return tuple(plan)


def containerd_step(images: ImageSet) -> Step[ContainerdFacts]:
    """The step for a lab with `runtime: containerd`, bound to the images it imports."""
    return Step(
        number="11c",
        key="containerd",
        title="containerd (CRI runtime)",
        section="(beyond the guide) kubelet's container runtime: containerd's CRI with our images",
        scope="all",
        facts_type=ContainerdFacts,
        facts=containerd_facts,
        plan=lambda lab, node, facts: plan_containerd(images, lab, node, facts),
        fresh=lambda lab, node: ContainerdFacts(
            config=None,
            config_mtime=None,
            active=True,
            started_at=1,
            # the netlab box (vm.box_build) carries the images; any other box has none
            images=tuple(ref for _, ref in images.refs) if lab.vm.box_build else (),
            login_gid=1000,
            can_lower_oom_score_adj=True,
            oci_runtime=f"/usr/bin/{lab.oci_runtime}",
            runtime_unit=None,
            runtime_dropin=None,
            runtime_read_only=False,
        ),
    )
