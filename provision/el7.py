"""The CentOS 7 path: the guide, step by step (pure planners; runs on a real KVM host).

Order and numbers follow the guide (../shared/guide/NOTES.md "The install walkthrough"); steps
the guide implies or that its age forces carry a letter (6a: the CentOS vault repos).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from lab.common import waits
from lab.common.commands import Command, Output, cmd
from lab.hosts import facts as f
from lab.hosts.facts import AnyFact
from lab.hosts.hostcheck import DOCKER_HUB, registry_of
from lab.hosts.os import profile_of
from lab.k8s import (
    ADMIN_CONF,
    KUBECTL,
    SYSTEM_NAMESPACE,
    parse_nodes,
    parse_pods,
    validate_nodes_ready,
    validate_system_pods,
)
from lab.k8s.kubeadm import render_kubeadm_init_args, render_kubelet_sysconfig
from lab.model import paths
from lab.model.config import Image, Kubernetes, Lab, Node, Repo
from lab.podnet.flannel import render_flannel_manifest
from provision.common import BRIDGE, FORWARD, HOSTNAME, SWAP, tools_step
from provision.model import (
    AnyStep,
    NotSettled,
    PodnetSteps,
    Resources,
    Runner,
    SavingRunner,
    Step,
    write_file,
)

F = TypeVar("F")
USER = "vagrant"  # the box's login user: gets ~/.kube/config and kubectl completion


def _k8s(lab: Lab) -> Kubernetes:
    if lab.kubernetes is None:
        raise ValueError(f"lab {lab.name!r} has no kubernetes section")
    return lab.kubernetes


def render_repo(section: str, name: str, repo: Repo) -> str:
    # yum reads continuation lines as more baseurls; with failovermethod=priority it tries
    # them in order (the first that answers wins)
    urls = "".join(f"\n        {url}" for url in repo.alternatives)
    lines = [
        f"[{section}]",
        f"name={name}",
        f"baseurl={repo.baseurl}{urls}",
        *(["failovermethod=priority"] if repo.alternatives else []),
        "enabled=1",
        f"gpgcheck={int(repo.gpgcheck)}",
        f"repo_gpgcheck={int(repo.repo_gpgcheck)}",
    ]
    if repo.gpgkeys:
        lines.append(f"gpgkey={' '.join(repo.gpgkeys)}")
    return "\n".join(lines) + "\n"


# --- step 1: firewalld off (guide: 关闭防火墙) ------------------------------------------------


@dataclass(frozen=True)
class ServiceFacts:
    active: bool
    enabled: bool


def service_facts(unit: str) -> dict[str, AnyFact]:
    return {"active": f.unit_active(unit), "enabled": f.unit_enabled(unit)}


def plan_firewalld(lab: Lab, node: Node, facts: ServiceFacts) -> tuple[Command, ...]:
    plan: list[Command] = []
    if facts.active:
        plan.append(cmd("systemctl", "stop", "firewalld"))
    if facts.enabled:
        plan.append(cmd("systemctl", "disable", "firewalld"))
    return tuple(plan)


FIREWALLD = Step(
    number="1",
    key="firewalld",
    title="firewalld off",
    section="准备工作 / 关闭防火墙",
    scope="all",
    facts_type=ServiceFacts,
    facts=lambda lab, node: service_facts("firewalld"),
    plan=plan_firewalld,
    fresh=lambda lab, node: ServiceFacts(True, True),
)


# --- step 2: SELinux (guide: 禁用SELINUX): permissive now, disabled after reboot -------------

SELINUX_CONFIG = "/etc/selinux/config"


@dataclass(frozen=True)
class SelinuxFacts:
    mode: str  # getenforce: Enforcing | Permissive | Disabled
    config: str | None


# through sudo: getenforce lives in /usr/sbin, which is on sudo's secure_path but not on the
# PATH of a non-login SSH command on CentOS 7 (there it exits 127 and prints nothing)
GETENFORCE = cmd("getenforce")
SELINUX_MODES = ("Enforcing", "Permissive", "Disabled")


def parse_selinux_mode(out: Output) -> str:
    """getenforce's answer; anything else is an error (never "" taken for "not enforcing")."""
    mode = out.stdout.strip()
    if not out.ok or mode not in SELINUX_MODES:
        raise f.unreadable(GETENFORCE, out, "the SELinux mode")
    return mode


def selinux_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    return {
        "mode": f.Fact("SELinux mode", GETENFORCE, parse_selinux_mode),
        "config": f.file_text(SELINUX_CONFIG),
    }


def selinux_config_disabled(config: str) -> str:
    if re.search(r"^SELINUX=", config, flags=re.M):
        return re.sub(r"^SELINUX=.*$", "SELINUX=disabled", config, flags=re.M)
    return config + "SELINUX=disabled\n"


def plan_selinux(lab: Lab, node: Node, facts: SelinuxFacts) -> tuple[Command, ...]:
    plan: list[Command] = []
    if facts.mode == "Enforcing":
        plan.append(cmd("setenforce", "0"))
    if facts.config is not None:
        fixed = selinux_config_disabled(facts.config)
        if fixed != facts.config:
            plan.append(write_file(SELINUX_CONFIG, fixed))
    return tuple(plan)


SELINUX = Step(
    number="2",
    key="selinux",
    title="SELinux off",
    section="准备工作 / 禁用SELINUX",
    scope="all",
    facts_type=SelinuxFacts,
    facts=selinux_facts,
    plan=plan_selinux,
    fresh=lambda lab, node: SelinuxFacts("Enforcing", "SELINUX=enforcing\nSELINUXTYPE=targeted\n"),
)


# every package the steps ask rpm about: one query per probe round trip, shared by the steps
RPMS = (
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "kubelet",
    "kubeadm",
    "kubectl",
    "kubernetes-cni",
    "cri-tools",
    "bash-completion",
    "ca-certificates",
)
INSTALLED = f.rpm_versions(RPMS)


# --- step 6a: CentOS vault repos (CentOS 7 is end-of-life; mirrorlist.centos.org is gone) --

BASE_REPO = "/etc/yum.repos.d/CentOS-Base.repo"


def render_vault_repos(lab: Lab) -> str:
    base = lab.os.vault_url.rstrip("/")
    keys = (lab.os.gpgkey_url,) if lab.os.gpgkey_url else ()
    return "\n".join(
        render_repo(
            section,
            f"CentOS-7 - {section} (vault)",
            Repo(f"{base}/{path}/$basearch/", keys, gpgcheck=bool(keys)),
        )
        for section, path in (("base", "os"), ("updates", "updates"), ("extras", "extras"))
    )


@dataclass(frozen=True)
class VaultFacts:
    content: str | None
    installed: tuple[str, ...]  # "name version" from rpm -q (ca-certificates among them)


# The CA bundle the vault's updates carry is at least this one: 2021.2.50 (Sep 2021) is the
# first that drops the expired DST Root CA X3, without which CentOS 7's openssl 1.0.2 fails
# on servers still sending Let's Encrypt's cross-signed chain. The 2020 box's bundle is older.
CA_CERTIFICATES_MIN = "2021.2.50"


def rpm_version_key(version: str) -> tuple[int, ...]:
    """`2023.2.60_v7.0.306` -> (2023, 2, 60): the dotted numbers before any `_` suffix."""
    return tuple(int(part) for part in re.findall(r"\d+", version.split("_", 1)[0]))


def plan_ca_certificates(installed: Sequence[str]) -> tuple[Command, ...]:
    have = dict(line.split() for line in installed).get("ca-certificates")
    if have is None:
        return (cmd("yum", "install", "-y", "ca-certificates", mirror=True),)
    if rpm_version_key(have) < rpm_version_key(CA_CERTIFICATES_MIN):
        return (cmd("yum", "update", "-y", "ca-certificates", mirror=True),)
    return ()


def plan_vault(lab: Lab, node: Node, facts: VaultFacts) -> tuple[Command, ...]:
    """The vault's repos, then the CA bundle from them (every later download is https)."""
    wanted = render_vault_repos(lab)
    repos = () if facts.content == wanted else (write_file(BASE_REPO, wanted),)
    clean = (cmd("yum", "clean", "metadata"),) if repos else ()
    return (*repos, *clean, *plan_ca_certificates(facts.installed))


VAULT = Step(
    number="6a",
    key="vault-repos",
    title="CentOS vault repos, CA bundle",
    section="(aged) base/updates/extras from a vault; ca-certificates updated from it",
    scope="all",
    facts_type=VaultFacts,
    facts=lambda lab, node: {"content": f.file_text(BASE_REPO), "installed": INSTALLED},
    plan=plan_vault,
    # the box's own repo file and its 2020-era bundle (7.8.2003: ca-certificates 2019.2.32)
    fresh=lambda lab, node: VaultFacts(
        "[base]\nmirrorlist=http://mirrorlist.centos.org/\n", ("ca-certificates 2019.2.32",)
    ),
)


# --- step 6: Docker 19.03 with the systemd cgroup driver (guide: 安装docker, skipped there) -

DOCKER_REPO = "/etc/yum.repos.d/docker-ce.repo"
DAEMON_JSON = "/etc/docker/daemon.json"


def render_daemon_json(lab: Lab) -> str:
    docker = _k8s(lab).docker
    conf = {
        "exec-opts": [f"native.cgroupdriver={docker.cgroup_driver}"],
        "log-driver": "json-file",
        "log-opts": {"max-size": "100m"},
        "storage-driver": "overlay2",
    }
    if docker.registry_mirrors:
        conf["registry-mirrors"] = list(docker.registry_mirrors)
    return json.dumps(conf, indent=2) + "\n"


def docker_packages(lab: Lab) -> dict[str, str]:
    docker = _k8s(lab).docker
    return {
        "docker-ce": docker.version,
        "docker-ce-cli": docker.version,
        "containerd.io": docker.containerd_version,
    }


@dataclass(frozen=True)
class DockerFacts:
    repo: str | None
    installed: tuple[str, ...]  # "name version" from rpm -q
    daemon_json: str | None
    active: bool
    enabled: bool


def docker_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    return {
        "repo": f.file_text(DOCKER_REPO),
        "installed": INSTALLED,
        "daemon_json": f.file_text(DAEMON_JSON),
        **service_facts("docker"),
    }


def package_changes(
    wanted: dict[str, str], installed: Sequence[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(names to remove, yum specs to install) to get `wanted` exactly.

    When a pinned package is installed at another version, every installed pinned package is
    removed and reinstalled, as the guide does when yum gave it the latest kubelet
    (`yum -y remove kubelet kubeadm kubectl`, then the pinned install): yum removes what
    depends on a removed package too (kubeadm needs kubelet), so removing only the wrong one
    would lose its dependents.
    """
    have = dict(line.split() for line in installed)
    pinned = [name for name, version in wanted.items() if version and name in have]
    wrong = any(have[name] != wanted[name].split("-")[0] for name in pinned)
    remove = tuple(pinned) if wrong else ()
    install = tuple(
        f"{name}-{version}" if version else name
        for name, version in wanted.items()
        if name not in have or name in remove
    )
    return remove, install


def yum_changes(wanted: dict[str, str], installed: Sequence[str]) -> list[Command]:
    remove, install = package_changes(wanted, installed)
    plan = [cmd("yum", "remove", "-y", *remove)] if remove else []
    if install:
        plan.append(cmd("yum", "install", "-y", *install, mirror=True))
    return plan


def plan_docker(lab: Lab, node: Node, facts: DockerFacts) -> tuple[Command, ...]:
    plan: list[Command] = []
    repo = render_repo("docker-ce-stable", "Docker CE Stable", _k8s(lab).docker.repo)
    if facts.repo != repo:
        plan.append(write_file(DOCKER_REPO, repo))
    plan += yum_changes(docker_packages(lab), facts.installed)
    daemon = render_daemon_json(lab)
    if facts.daemon_json != daemon:
        plan.append(write_file(DAEMON_JSON, daemon))
    if not facts.enabled:
        plan.append(cmd("systemctl", "enable", "docker"))
    if facts.daemon_json != daemon or not facts.active:
        plan.append(cmd("systemctl", "restart", "docker"))
    return tuple(plan)


DOCKER = Step(
    number="6",
    key="docker",
    title="Docker (systemd cgroup driver)",
    section="准备工作 / 安装docker",
    scope="all",
    facts_type=DockerFacts,
    facts=docker_facts,
    plan=plan_docker,
    fresh=lambda lab, node: DockerFacts(None, (), None, False, False),
)


# --- step 8: the kubernetes repo and pinned kubelet/kubeadm/kubectl (guide: 安装 kubeadm...) -

K8S_REPO = "/etc/yum.repos.d/kubernetes.repo"


def k8s_packages(lab: Lab) -> dict[str, str]:
    """kubelet/kubeadm/kubectl at the guide's version, and kubernetes-cni pinned too: their
    rpms only require kubernetes-cni >= 0.7.5, so unpinned yum takes the newest (1.x), which
    has no `flannel` plugin, and flannel v0.14.0's manifest installs none (pods would stay
    ContainerCreating; flannel-io/flannel#1471). cri-tools likewise (kubeadm only requires
    >= 1.13.0): unpinned, yum takes the newest build, which gpgcheck may refuse when it is
    signed with a key the mirror's copies of the repository keys lack."""
    k8s = _k8s(lab)
    pinned = {p: f"{k8s.version}-{k8s.package_release}" for p in ("kubelet", "kubeadm", "kubectl")}
    return {
        **pinned,
        "kubernetes-cni": k8s.cni_package_version,
        "cri-tools": k8s.cri_tools_version,
    }


@dataclass(frozen=True)
class PackagesFacts:
    repo: str | None
    installed: tuple[str, ...]
    kubelet_enabled: bool


def k8s_packages_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    return {
        "repo": f.file_text(K8S_REPO),
        "installed": INSTALLED,
        "kubelet_enabled": f.unit_enabled("kubelet"),
    }


def plan_k8s_packages(lab: Lab, node: Node, facts: PackagesFacts) -> tuple[Command, ...]:
    plan: list[Command] = []
    repo = render_repo("kubernetes", "Kubernetes", _k8s(lab).repo)
    if facts.repo != repo:
        plan.append(write_file(K8S_REPO, repo))
    plan += yum_changes(k8s_packages(lab), facts.installed)
    if not facts.kubelet_enabled:
        plan.append(cmd("systemctl", "enable", "kubelet"))
    return tuple(plan)


K8S_PACKAGES = Step(
    number="8",
    key="kubernetes-packages",
    title="kubelet/kubeadm/kubectl",
    section="安装 kubeadm, kubelet, kubectl / 修改 yum 安装源",
    scope="all",
    facts_type=PackagesFacts,
    facts=k8s_packages_facts,
    plan=plan_k8s_packages,
    fresh=lambda lab, node: PackagesFacts(None, (), False),
)


# --- step 8a: kubelet --node-ip (pitfall: the management NIC holds the default route) -------

KUBELET_SYSCONFIG = "/etc/sysconfig/kubelet"


@dataclass(frozen=True)
class KubeletFacts:
    sysconfig: str | None
    active: bool


def plan_kubelet(lab: Lab, node: Node, facts: KubeletFacts) -> tuple[Command, ...]:
    wanted = render_kubelet_sysconfig(node)
    if facts.sysconfig == wanted:
        return ()
    plan = [write_file(KUBELET_SYSCONFIG, wanted)]
    if facts.active:
        plan.append(cmd("systemctl", "restart", "kubelet"))
    return tuple(plan)


KUBELET_NODE_IP = Step(
    number="8a",
    key="kubelet-node-ip",
    title="kubelet --node-ip",
    section="(pitfall) kubelet must use the private IP",
    scope="all",
    facts_type=KubeletFacts,
    facts=lambda lab, node: {
        "sysconfig": f.file_text(KUBELET_SYSCONFIG),
        "active": f.unit_active("kubelet"),
    },
    plan=plan_kubelet,
    fresh=lambda lab, node: KubeletFacts("KUBELET_EXTRA_ARGS=\n", False),
)


# --- step 8b: kubeadm's images pre-pulled on every node (workers too: kube-proxy and pause
# would otherwise be pulled only after the join, while the first checks already run) --------


def kubeadm_images_args(lab: Lab) -> tuple[str, ...]:
    """The guide's --kubernetes-version and --image-repository, as `kubeadm init` gets them."""
    k8s = _k8s(lab)
    return (f"--kubernetes-version={k8s.version}", "--image-repository", k8s.image_repository)


DOCKER_IMAGES = cmd("docker", "images", "--format", "{{.Repository}}:{{.Tag}}")


def parse_image_lines(out: Output) -> tuple[str, ...] | None:
    """Image references one per line (`kubeadm config images list`, `docker images --format`);
    None when the command failed (kubeadm not installed yet, Docker down)."""
    if not out.ok:
        return None
    return tuple(line.strip() for line in out.stdout.splitlines() if line.strip())


@dataclass(frozen=True)
class KubeadmImagesFacts:
    wanted: tuple[str, ...] | None  # `kubeadm config images list` (None: not answerable yet)
    present: tuple[str, ...] | None  # `docker images`, repository:tag


def kubeadm_images_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    listing = cmd("kubeadm", "config", "images", "list", *kubeadm_images_args(lab))
    return {
        "wanted": f.Fact("kubeadm's images", listing, parse_image_lines),
        "present": f.Fact("docker images", DOCKER_IMAGES, parse_image_lines),
    }


def plan_kubeadm_images(lab: Lab, node: Node, facts: KubeadmImagesFacts) -> tuple[Command, ...]:
    if facts.wanted and set(facts.wanted) <= set(facts.present or ()):
        return ()
    return (cmd("kubeadm", "config", "images", "pull", *kubeadm_images_args(lab), mirror=True),)


KUBEADM_IMAGES = Step(
    number="8b",
    key="kubeadm-images",
    title="kubeadm images pre-pulled",
    section="运行初始化命令 (images via --image-repository, on every node)",
    scope="all",
    facts_type=KubeadmImagesFacts,
    facts=kubeadm_images_facts,
    plan=plan_kubeadm_images,
    fresh=lambda lab, node: KubeadmImagesFacts(None, ()),
)


# --- step 9: kubeadm init on the control plane (guide: 运行初始化命令) -----------------------


@dataclass(frozen=True)
class ExistsFacts:
    exists: bool


def plan_kubeadm_init(lab: Lab, node: Node, facts: ExistsFacts) -> tuple[Command, ...]:
    """The images are there already (step 8b pulled them, with retries)."""
    if facts.exists:
        return ()
    return (Command(render_kubeadm_init_args(lab)),)


KUBEADM_INIT = Step(
    number="9",
    key="kubeadm-init",
    title="kubeadm init",
    section="运行初始化命令",
    scope="control-plane",
    facts_type=ExistsFacts,
    facts=lambda lab, node: {"exists": f.file_exists(ADMIN_CONF)},
    plan=plan_kubeadm_init,
    fresh=lambda lab, node: ExistsFacts(False),
)


# --- step 10: kubeconfig for root and the login user (guide: 配置kubectl工具), mode 0600 -----


def kubeconfig_targets() -> dict[str, str]:
    return {"/root/.kube/config": "root", f"/home/{USER}/.kube/config": USER}


# the login user's ~/.kube, made by the user's own hand in the guide (`mkdir -p $HOME/.kube`):
# `install -D` would make it root's, and kubectl run as the user could not write its cache
USER_KUBE_DIR = f"/home/{USER}/.kube"


@dataclass(frozen=True)
class KubeconfigFacts:
    sums: tuple[str, ...]  # `sha256sum` lines of admin.conf and each target
    stats: tuple[str, ...]  # `stat -c '%n %a %U'` lines of each target and the user's ~/.kube


def kubeconfig_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    targets = tuple(kubeconfig_targets())
    return {
        "sums": f.stdout_lines("checksums", cmd("sha256sum", ADMIN_CONF, *targets)),
        "stats": f.stdout_lines("modes", cmd("stat", "-c", "%n %a %U", *targets, USER_KUBE_DIR)),
    }


def plan_kubeconfig(lab: Lab, node: Node, facts: KubeconfigFacts) -> tuple[Command, ...]:
    sums = {path: digest for digest, path in (line.split() for line in facts.sums)}
    stats = {p: (mode, owner) for p, mode, owner in (line.split() for line in facts.stats)}
    plan = []
    if stats.get(USER_KUBE_DIR) != ("700", USER):
        plan.append(Command(("install", "-d", "-m", "0700", "-o", USER, "-g", USER, USER_KUBE_DIR)))
    for path, owner in kubeconfig_targets().items():
        current = sums.get(path) == sums.get(ADMIN_CONF) and stats.get(path) == ("600", owner)
        if not current:
            plan.append(
                Command(("install", "-D", "-m", "0600", "-o", owner, "-g", owner, ADMIN_CONF, path))
            )
    return tuple(plan)


KUBECONFIG = Step(
    number="10",
    key="kubeconfig",
    title="kubeconfig",
    section="配置kubectl工具",
    scope="control-plane",
    facts_type=KubeconfigFacts,
    facts=kubeconfig_facts,
    plan=plan_kubeconfig,
    fresh=lambda lab, node: KubeconfigFacts((), ()),
)


# --- step 11a: the flannel image from the mirror, re-tagged, on every node -----------------
#
# Docker Hub allows anonymous pulls per address and hour, and a lab's nodes share one NAT
# address: every Docker Hub image is pulled once per lab, on the control plane, and the other
# nodes load the control plane's copy (`docker save` there, streamed through this host to
# `docker load` on each). The image steps run twice for it (`control_plane_first`): on the
# control plane, then on the workers, given the archive as an input.


@dataclass(frozen=True)
class ImageFacts:
    present: bool
    # a local archive of the control plane's copy (input, workers only)
    flannel_archive: str | None = None


def pull(image: str, mirror: str = "") -> tuple[Command, ...]:
    """`image` on the node: pulled as is, or from `mirror` and re-tagged as `image`."""
    if not mirror:
        return (cmd("docker", "pull", image, mirror=True),)
    return (cmd("docker", "pull", mirror, mirror=True), cmd("docker", "tag", mirror, image))


def from_docker_hub(image: Image) -> bool:
    """The node pulls it from Docker Hub (its mirror, when it has one, is what is pulled)."""
    return registry_of(image.mirror or image.image) == DOCKER_HUB


def flannel_hub_images(lab: Lab) -> tuple[str, ...]:
    fl = lab.pod_network.flannel
    return (
        (fl.image,) if fl is not None and from_docker_hub(Image(fl.image, fl.mirror_image)) else ()
    )


def load_archive(archive: str) -> Command:
    """`docker load` of an archive on this host, streamed to the node (raw bytes, its own SSH
    channel: lab.adapters.ssh.SshChannel.run_streaming)."""
    return Command(("docker", "load"), stdin_file=archive)


def save_command(images: Sequence[str]) -> Command:
    return cmd("docker", "save", *images)


def archive_placeholder(lab: Lab, images: Sequence[str]) -> str | None:
    """What the dry run shows for an archive made at provisioning time."""
    plane = lab.control_plane
    if not images or plane is None:
        return None
    return f"<{plane.name}: {' '.join(save_command(images).argv)}>"


def plan_flannel_image(lab: Lab, node: Node, facts: ImageFacts) -> tuple[Command, ...]:
    flannel = lab.pod_network.flannel
    if facts.present or flannel is None:
        return ()
    if facts.flannel_archive is not None and flannel_hub_images(lab):
        return (load_archive(facts.flannel_archive),)
    return pull(flannel.image, flannel.mirror_image)


def _flannel_image(lab: Lab) -> str:
    return lab.pod_network.flannel.image if lab.pod_network.flannel else ""


def image_present(image: str) -> AnyFact:
    return f.command_ok(
        f"image {image} present", cmd("docker", "image", "inspect", "--format", "{{.Id}}", image)
    )


FLANNEL_IMAGE = Step(
    number="11a",
    key="flannel-image",
    title="flannel image via mirror",
    section="安装flannel / 获取镜像",
    scope="all",
    facts_type=ImageFacts,
    facts=lambda lab, node: {"present": image_present(_flannel_image(lab))},
    plan=plan_flannel_image,
    fresh=lambda lab, node: ImageFacts(False),
)


# --- step 11b: the e2e suite's images, pre-pulled (via their mirrors) on every node --------


@dataclass(frozen=True)
class E2eImagesFacts:
    busybox: bool
    nginx: bool
    echo: bool
    # a local archive of the control plane's copies of the Docker Hub ones (input, workers only)
    e2e_archive: str | None = None


def e2e_images(lab: Lab) -> dict[str, Image]:
    images = _k8s(lab).e2e_images
    return {item.name: getattr(images, item.name) for item in dataclasses.fields(images)}


def e2e_hub_images(lab: Lab) -> tuple[str, ...]:
    return tuple(image.image for image in e2e_images(lab).values() if from_docker_hub(image))


def plan_e2e_images(lab: Lab, node: Node, facts: E2eImagesFacts) -> tuple[Command, ...]:
    missing = {name: image for name, image in e2e_images(lab).items() if not getattr(facts, name)}
    copied = {
        name
        for name, image in missing.items()
        if facts.e2e_archive is not None and from_docker_hub(image)
    }
    load = (load_archive(facts.e2e_archive),) if copied and facts.e2e_archive else ()
    return load + tuple(
        command
        for name, image in missing.items()
        if name not in copied
        for command in pull(image.image, image.mirror)
    )


E2E_IMAGES = Step(
    number="11b",
    key="e2e-images",
    title="e2e images via mirrors",
    section="(suite) busybox + nginx (the guide's pod), agnhost echo: pre-pulled",
    scope="all",
    facts_type=E2eImagesFacts,
    facts=lambda lab, node: {
        name: image_present(image.image) for name, image in e2e_images(lab).items()
    },
    plan=plan_e2e_images,
    fresh=lambda lab, node: E2eImagesFacts(False, False, False),
)


def control_plane_first(
    step: Step[F],
    archive: str,
    hub_images: Callable[[Lab], tuple[str, ...]],
    missing: Callable[[F], bool],
) -> tuple[Step[F], Step[F]]:
    """An image step as two phases: the control plane pulls (Docker Hub images included), then
    each worker loads the control plane's copy of the Docker Hub ones (input `archive`, asked
    for only while an image is `missing`) and pulls the rest itself."""

    def fresh(lab: Lab, node: Node) -> F:
        placeholder = archive_placeholder(lab, hub_images(lab))
        return dataclasses.replace(step.fresh(lab, node), **{archive: placeholder})  # type: ignore[type-var]

    def needs(facts: F) -> tuple[str, ...]:
        return (archive,) if missing(facts) else ()

    plane = dataclasses.replace(step, scope="control-plane")
    title = f"{step.title} (from Docker Hub: the control plane's copy)"
    workers = dataclasses.replace(step, scope="workers", title=title, fresh=fresh, needs=needs)
    return plane, workers


# --- step 11: the patched flannel manifest applied (guide: 安装flannel / 加载flannel) --------

FLANNEL_MANIFEST = "/etc/kubernetes/netlab/kube-flannel.yml"


@dataclass(frozen=True)
class FlannelFacts:
    manifest: str | None
    daemonset: bool


def flannel_step(upstream: str) -> Step[FlannelFacts]:
    """The step closes over the upstream manifest text (a pinned, checksummed input)."""

    def plan(lab: Lab, node: Node, facts: FlannelFacts) -> tuple[Command, ...]:
        wanted = render_flannel_manifest(lab, upstream)
        if facts.manifest == wanted and facts.daemonset:
            return ()
        return (
            write_file(FLANNEL_MANIFEST, wanted),
            Command((*KUBECTL, "apply", "-f", FLANNEL_MANIFEST)),
        )

    return Step(
        number="11",
        key="flannel",
        title="flannel manifest",
        section="安装flannel / 加载flannel",
        scope="control-plane",
        facts_type=FlannelFacts,
        facts=lambda lab, node: {
            "manifest": f.file_text(FLANNEL_MANIFEST),
            "daemonset": f.command_ok(
                "flannel daemonset exists",
                cmd(*KUBECTL, "-n", "kube-system", "get", "daemonset", "kube-flannel-ds"),
            ),
        },
        plan=plan,
        fresh=lambda lab, node: FlannelFacts(None, False),
    )


# --- step 12: kubelet enabled at boot + kubectl bash completion (guide: 设置开机启动) ---------

COMPLETION_LINE = "source <(kubectl completion bash)"


@dataclass(frozen=True)
class CompletionFacts:
    bash_completion: bool
    bashrc: str | None


def plan_completion(lab: Lab, node: Node, facts: CompletionFacts) -> tuple[Command, ...]:
    plan: list[Command] = []
    if not facts.bash_completion:
        plan.append(cmd("yum", "install", "-y", "bash-completion", mirror=True))
    bashrc = facts.bashrc or ""
    if COMPLETION_LINE not in bashrc.splitlines():
        sep = "" if not bashrc or bashrc.endswith("\n") else "\n"
        plan.append(
            write_file(f"/home/{USER}/.bashrc", f"{bashrc}{sep}{COMPLETION_LINE}\n", owner=USER)
        )
    return tuple(plan)


COMPLETION = Step(
    number="12",
    key="completion",
    title="kubectl completion",
    section="设置开机启动 / 安装命令补全",
    scope="control-plane",
    facts_type=CompletionFacts,
    facts=lambda lab, node: {
        "bash_completion": f.rpm_installed(RPMS, "bash-completion"),
        "bashrc": f.file_text(f"/home/{USER}/.bashrc"),
    },
    plan=plan_completion,
    fresh=lambda lab, node: CompletionFacts(False, "# .bashrc\n"),
)


# --- step 13: kubeadm join on workers, with a join command created at join time -------------


@dataclass(frozen=True)
class JoinFacts:
    joined: bool
    join_command: tuple[str, ...] | None = None  # argv from `kubeadm token create`


JOIN_PLACEHOLDER = (
    "kubeadm",
    "join",
    "<control-plane>:6443",
    "--token",
    "<created-at-join-time>",
    "--discovery-token-ca-cert-hash",
    "sha256:<from-the-control-plane>",
)


def parse_join_command(text: str) -> tuple[str, ...]:
    """`kubeadm token create --print-join-command` -> its argv."""
    argv = tuple(shlex.split(text.strip()))
    if argv[:2] != ("kubeadm", "join") or "--token" not in argv[:-1]:
        raise ValueError("not a kubeadm join command")
    return argv


def join_secrets(argv: tuple[str, ...]) -> tuple[str, ...]:
    """The values of a join command that are secrets: the token and any certificate key."""
    return tuple(
        argv[i + 1] for i, word in enumerate(argv[:-1]) if word in ("--token", "--certificate-key")
    )


def plan_join(lab: Lab, node: Node, facts: JoinFacts) -> tuple[Command, ...]:
    if facts.joined:
        return ()
    if facts.join_command is None:
        return (Command((*JOIN_PLACEHOLDER, f"--node-name={node.name}")),)
    argv = facts.join_command
    return (Command((*argv, f"--node-name={node.name}"), secrets=join_secrets(argv)),)


JOIN = Step(
    number="13",
    key="kubeadm-join",
    title="kubeadm join",
    section="node 加入集群",
    scope="workers",
    facts_type=JoinFacts,
    facts=lambda lab, node: {"joined": f.file_exists("/etc/kubernetes/kubelet.conf")},
    plan=plan_join,
    fresh=lambda lab, node: JoinFacts(False),
    needs=lambda facts: () if facts.joined else ("join_command",),
)

JOIN_COMMAND = cmd("kubeadm", "token", "create", "--print-join-command", "--ttl", "30m")


class ImageArchiveSource:
    """An image archive input: the control plane's copies of `images` saved once per
    provisioning run to a local file (`docker save`, stdout streamed to this host), its path
    given to every worker that asks; None when the step has no Docker Hub image."""

    def __init__(self, plane: SavingRunner | None, images: tuple[str, ...], path: str) -> None:
        self.plane = plane
        self.images = images
        self.path = path
        self.lock = threading.Lock()
        self.saved = False

    def __call__(self) -> str | None:
        with self.lock:
            if not self.images:
                return None
            if not self.saved:
                if self.plane is None:
                    raise ValueError("a worker needs the control plane's images; no control plane")
                self.plane.run_to_file(save_command(self.images), self.path, timeout=900)
                self.saved = True
            return self.path


class JoinCommandSource:
    """The `join_command` input: one join command per provisioning run, created on the
    control plane the first time a worker needs it (its token is a secret: the join step's
    command carries it in `secrets`, so logs, plans and errors show it redacted)."""

    def __init__(self, plane: Runner | None) -> None:
        self.plane = plane
        self.lock = threading.Lock()
        self.argv: tuple[str, ...] | None = None

    def __call__(self) -> tuple[str, ...]:
        with self.lock:
            if self.argv is None:
                if self.plane is None:
                    raise ValueError("a worker needs to join but the lab has no control plane")
                self.argv = parse_join_command(self.plane.run(JOIN_COMMAND, timeout=60).stdout)
            return self.argv


def inputs(
    lab: Lab, channels: Mapping[str, SavingRunner], archives: str = ""
) -> dict[str, Callable[[], object]]:
    """The inputs the el7 steps may need, by name (image archives go to the directory
    `archives` on this host: the lab's state directory unless given)."""
    archives = archives or str(paths.state_dir(lab.name) / "images")
    plane = lab.control_plane
    seed = channels[plane.name] if plane else None
    return {
        "join_command": JoinCommandSource(seed),
        "flannel_archive": ImageArchiveSource(
            seed, flannel_hub_images(lab), f"{archives}/flannel-image.tar"
        ),
        "e2e_archive": ImageArchiveSource(seed, e2e_hub_images(lab), f"{archives}/e2e-images.tar"),
    }


# --- step 13a: VXLAN checksum offload off on flannel.1 (kubernetes#89622, 63 s stalls) -------

OFFLOAD_RULE = "/etc/udev/rules.d/90-netlab-flannel-offload.rules"
OFFLOAD_RULE_CONTENT = (
    'ACTION=="add", SUBSYSTEM=="net", KERNEL=="flannel.1", '
    'RUN+="/usr/sbin/ethtool --offload flannel.1 rx off tx off"\n'
)


@dataclass(frozen=True)
class OffloadFacts:
    rule: str | None
    device: bool
    checksum_on: bool


ETHTOOL_FEATURES = cmd("ethtool", "-k", "flannel.1")


def offload_facts(lab: Lab, node: Node) -> dict[str, AnyFact]:
    return {
        "rule": f.file_text(OFFLOAD_RULE),
        "device": f.command_ok("flannel.1 exists", ETHTOOL_FEATURES),
        "checksum_on": f.matches_if_ok(
            "flannel.1 checksum offload on", ETHTOOL_FEATURES, r"^(rx|tx)-checksumming: on"
        ),
    }


def plan_offload(lab: Lab, node: Node, facts: OffloadFacts) -> tuple[Command, ...]:
    if not _k8s(lab).vxlan_offload_workaround:
        return ()
    if facts.rule != OFFLOAD_RULE_CONTENT:
        # The rule covers a flannel.1 created from now on. One created before the reload (even
        # between our probe and the reload: flanneld may start at any time) got its "add" event
        # without the rule, so the event is replayed for flannel.1 (a no-op while it does not
        # exist) and udev is waited for: whenever the device appeared, the rule has run.
        return (
            write_file(OFFLOAD_RULE, OFFLOAD_RULE_CONTENT),
            cmd("udevadm", "control", "--reload"),
            *OFFLOAD_REPLAY,
        )
    if facts.device and facts.checksum_on:
        return (cmd("ethtool", "--offload", "flannel.1", "rx", "off", "tx", "off"),)
    return ()


OFFLOAD_REPLAY = (
    cmd("udevadm", "trigger", "--action=add", "--subsystem-match=net", "--sysname-match=flannel.1"),
    cmd("udevadm", "settle", "--timeout=30"),
)


OFFLOAD = Step(
    number="13a",
    key="vxlan-offload",
    title="flannel.1 checksum offload off",
    section="(1.18.1 pitfall) kubernetes#89622 workaround",
    scope="all",
    facts_type=OffloadFacts,
    facts=offload_facts,
    plan=plan_offload,
    fresh=lambda lab, node: OffloadFacts(None, False, False),
)


# --- step 15: the cluster settled (guide: kubectl get nodes -o wide), a bounded wait --------

NODES_JSON = cmd(*KUBECTL, "get", "nodes", "-o", "json")
SYSTEM_PODS_JSON = cmd(*KUBECTL, "-n", SYSTEM_NAMESPACE, "get", "pods", "-o", "json")


def _not_answering(command: Command, out: Output) -> tuple[str, ...]:
    return (
        f"`kubectl {' '.join(command.argv[3:])}` exited {out.exit_code} (API server not up yet?)",
    )


def unsettled_nodes(lab: Lab) -> Callable[[Output], tuple[str, ...]]:
    """What keeps the nodes from being the lab's, all Ready: one line each (lab.k8s checks)."""

    def parse(out: Output) -> tuple[str, ...]:
        if not out.ok:
            return _not_answering(NODES_JSON, out)
        return tuple(str(p) for p in validate_nodes_ready(parse_nodes(out.stdout), lab))

    return parse


def unsettled_pods(out: Output) -> tuple[str, ...]:
    """kube-system pods not Running with every container ready, one line each."""
    if not out.ok:
        return _not_answering(SYSTEM_PODS_JSON, out)
    return tuple(str(p) for p in validate_system_pods(parse_pods(out.stdout)))


@dataclass(frozen=True)
class ClusterFacts:
    nodes: tuple[str, ...]  # what is not settled, one line each; empty: settled
    pods: tuple[str, ...]


def plan_settled(lab: Lab, node: Node, facts: ClusterFacts) -> tuple[Command, ...]:
    if facts.nodes or facts.pods:
        raise NotSettled("; ".join((*facts.nodes, *facts.pods)))
    return ()


SETTLED = Step(
    number="15",
    key="cluster-settled",
    title="every node Ready, every kube-system pod Running",
    section="(harness) kubectl get nodes: the cluster settled before anything uses it",
    scope="control-plane",
    facts_type=ClusterFacts,
    facts=lambda lab, node: {
        "nodes": f.Fact("nodes not Ready", NODES_JSON, unsettled_nodes(lab)),
        "pods": f.Fact("kube-system pods not Running", SYSTEM_PODS_JSON, unsettled_pods),
    },
    plan=plan_settled,
    fresh=lambda lab, node: ClusterFacts((), ()),  # a check: passes once it is settled
    check=True,
    wait=waits.CLUSTER_SETTLED,
)


def steps(lab: Lab, resources: Resources, podnet: PodnetSteps) -> tuple[AnyStep, ...]:
    """The guide's order, the pod network (flannel) where the guide installs it. Scopes split
    it into phases: all, control plane, all, control plane, workers, all, control plane (the
    cluster settled). The image steps run on the control plane, then on the workers, which
    load its copies of the Docker Hub images: the pod network's with the suite's."""
    os_path = profile_of(lab)
    e2e_images_plane, e2e_images_workers = control_plane_first(
        E2E_IMAGES,
        "e2e_archive",
        e2e_hub_images,
        lambda facts: not (facts.busybox and facts.nginx and facts.echo),
    )
    plane_images = tuple(s for s in podnet.images if s.scope != "workers")
    worker_images = tuple(s for s in podnet.images if s.scope == "workers")
    return (
        tools_step(os_path, everything=False),
        FIREWALLD,
        SELINUX,
        BRIDGE,
        FORWARD,
        SWAP,
        VAULT,
        DOCKER,
        HOSTNAME,
        K8S_PACKAGES,
        KUBELET_NODE_IP,
        KUBEADM_IMAGES,
        KUBEADM_INIT,
        KUBECONFIG,
        *plane_images,
        e2e_images_plane,
        *worker_images,
        e2e_images_workers,
        *podnet.network,
        COMPLETION,
        JOIN,
        *podnet.after_join,
        tools_step(os_path, everything=True),
        SETTLED,
    )
