"""containerd as the lab's CRI runtime (Debian labs with `runtime: containerd`), pure: probe ->
facts -> plan. The box has containerd 1.6, runc and crun, running with Debian's defaults; this step
gives it the lab's config, restarts it when the config changed (and waits for its socket,
bounded), and imports the lab's images into the CRI's namespace when any is missing.

- /etc/containerd/config.toml is lab/containerd.py's render_config: the CRI plugin with our pause
  image as sandbox_image, CNI from /etc/cni/net.d (the conflist the cni-config step writes) and
  Debian's plugins in /usr/lib/cni, the gRPC socket's group = the login user's (so the harness
  reaches the CRI through an SSH socket forward as that user), and `restrict_oom_score_adj`
  where root on the node cannot lower an oom_score_adj, and the lab's `oci_runtime` (runc or
  crun) as the binary the runc v2 shim calls; a node without it is an error naming the fix.
- The images arrive as one OCI archive (~17 MiB) streamed from the harness over SSH to
  `ctr images import -` (a Command with `stdin_file`): no copy is left on the node.
"""

from __future__ import annotations

from dataclasses import dataclass

from lab import containerd
from lab import facts as f
from lab.commands import Command, Output, cmd
from lab.config import Lab, Node
from lab.facts import AnyFact
from lab.images import ImageSet
from provision.model import Step, write_file

CONFIG_PATH = "/etc/containerd/config.toml"
SOCKET = "/run/containerd/containerd.sock"
SERVICE = "containerd"
WAIT_S = 60  # "containerd answers on its socket" after a restart


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


def _can_lower(out: Output) -> bool:
    try:
        return containerd.has_capability(out.stdout if out.ok else "", containerd.CAP_SYS_RESOURCE)
    except ValueError:
        return True  # unknown: containerd's default (no restriction)


# The login user's group, whoever runs the probe: the applier runs a probe round trip under one
# sudo, where `id -g` alone would say root's; sudo names the user it came from in SUDO_USER.
LOGIN_GID = cmd("sh", "-c", 'id -g "${SUDO_USER:-$(id -un)}"', sudo=False)


def containerd_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
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
    }


def wanted_config(
    images: ImageSet, facts: ContainerdFacts, oci_runtime: str
) -> containerd.ContainerdConfig:
    return containerd.ContainerdConfig(
        sandbox_image=images.ref("pause"),
        runtime_binary=oci_runtime,
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
    wanted = containerd.render_config(wanted_config(images, facts, lab.oci_runtime))
    changed = facts.config != wanted
    if changed:
        plan.append(write_file(CONFIG_PATH, wanted))
    stale = (
        facts.config_mtime is not None
        and facts.started_at is not None
        and facts.config_mtime > facts.started_at
    )
    if changed or stale or not facts.active:
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
            None, None, True, 1, (), 1000, True, f"/usr/bin/{lab.oci_runtime}"
        ),
    )
