"""The lab model: frozen dataclasses, a strict YAML loader and validation (pure).

`load_lab(path)` returns a `Lab` or raises `LabError` carrying *every* problem found, each naming
the field, the value and the fix. `validate_lab` returns problems and never raises.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Literal

from lab import netmath

Role = Literal["control-plane", "worker"]
Hypervisor = Literal["auto", "kvm", "qemu"]
OsFamily = Literal["el7", "debian12"]
PodNetworkDriver = Literal["flannel", "host-routes"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a lab file: where, what value, what is wrong and how to fix it."""

    field: str
    value: object
    message: str
    fix: str = ""

    def __str__(self) -> str:
        fix = f"; {self.fix}" if self.fix else ""
        return f"{self.field} = {self.value!r}: {self.message}{fix}"


class LabError(Exception):
    """A lab file that cannot be used; `problems` lists every reason at once."""

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{lines}")


# ---------------------------------------------------------------------------------------------
# Model


@dataclass(frozen=True)
class Repo:
    """A yum repository (the guide writes these under /etc/yum.repos.d/)."""

    baseurl: str
    gpgkeys: tuple[str, ...] = ()
    gpgcheck: bool = True
    repo_gpgcheck: bool = False
    # other copies of the same repository, tried in order when baseurl fails
    alternatives: tuple[str, ...] = ()


@dataclass(frozen=True)
class VM:
    box: str
    box_version: str = ""
    box_url: str = ""
    box_build: Literal["", "debian12"] = ""
    hypervisor: Hypervisor = "auto"
    cpus: int = 2
    memory_mib: int = 2048
    private_nic: str = "eth1"
    boot_timeout_s: int = 900


@dataclass(frozen=True)
class Network:
    private: IPv4Network
    management: IPv4Network = IPv4Network("192.168.121.0/24")  # noqa: RUF009 (immutable)


@dataclass(frozen=True)
class Node:
    name: str
    ip: IPv4Address
    role: Role = "worker"
    cpus: int | None = None
    memory_mib: int | None = None


@dataclass(frozen=True)
class Flannel:
    version: str
    manifest_url: str
    manifest_sha256: str
    image: str
    mirror_image: str = ""
    backend: Literal["vxlan", "host-gw"] = "vxlan"
    ip_masq: bool = True


@dataclass(frozen=True)
class PodNetwork:
    driver: PodNetworkDriver
    cidr: IPv4Network
    subnet_len: int = 24
    bridge: str = "cni0"
    mtu: int = 1500
    cni_version: str = "0.4.0"
    flannel: Flannel | None = None


@dataclass(frozen=True)
class OS:
    family: OsFamily
    vault_url: str = ""
    gpgkey_url: str = ""


@dataclass(frozen=True)
class Image:
    """An image every node holds before the suite runs: `image` is the name pods use; with
    `mirror` set it is pulled from there and re-tagged as `image`."""

    image: str
    mirror: str = ""


@dataclass(frozen=True)
class E2eImages:
    """The images of the Kubernetes checks, pre-pulled on every node by provisioning so the
    suite never waits on a registry (its pods use imagePullPolicy IfNotPresent)."""

    # the guide's two-container pod (busybox + nginx); busybox 1.28's nslookup is the one the
    # Kubernetes DNS debugging docs pin. Both from Docker Hub.
    busybox: Image = Image("busybox:1.28")
    nginx: Image = Image("nginx:1.19")
    # the echo server: agnhost netexec (/hostname, /clientip), upstream's e2e image
    echo: Image = Image("registry.k8s.io/e2e-test-images/agnhost:2.21")


@dataclass(frozen=True)
class Docker:
    version: str
    repo: Repo
    cgroup_driver: Literal["systemd", "cgroupfs"] = "systemd"
    # daemon.json registry-mirrors: Docker Hub pulls go there first
    registry_mirrors: tuple[str, ...] = ()
    # containerd.io, pinned: docker-ce only requires a minimum, so yum took the newest el7 build
    containerd_version: str = "1.4.3"


@dataclass(frozen=True)
class Kubernetes:
    version: str
    repo: Repo
    image_repository: str
    service_cidr: IPv4Network
    pod_network_cidr: IPv4Network
    docker: Docker
    package_release: str = "0"
    ignore_preflight_resources: bool = False
    vxlan_offload_workaround: bool = True
    # kubernetes-cni, pinned: kubelet/kubeadm 1.18 only require >= 0.7.5, so yum would take
    # the newest (1.x), which ships no `flannel` plugin (flannel-io/flannel#1471)
    cni_package_version: str = "0.8.7-0"
    e2e_images: E2eImages = E2eImages()


@dataclass(frozen=True)
class Lab:
    name: str
    vm: VM
    network: Network
    nodes: tuple[Node, ...]
    os: OS
    pod_network: PodNetwork
    description: str = ""
    kubernetes: Kubernetes | None = None
    source: str = field(default="", compare=False)

    @property
    def prefix(self) -> str:
        """Every libvirt object of this lab (domain, volume, network) starts with this."""
        return f"netlab-{self.name}-"

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"lab {self.name!r} has no node {name!r}; nodes: {self.node_names}")

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    def cpus(self, node: Node) -> int:
        return node.cpus if node.cpus is not None else self.vm.cpus

    def memory_mib(self, node: Node) -> int:
        return node.memory_mib if node.memory_mib is not None else self.vm.memory_mib

    @property
    def control_plane(self) -> Node | None:
        planes = [n for n in self.nodes if n.role == "control-plane"]
        return planes[0] if planes else None


# ---------------------------------------------------------------------------------------------
# Strict structural conversion: dict -> dataclass, collecting every problem


def _type_name(tp: Any) -> str:
    names = {
        str: "a string",
        int: "an integer",
        bool: "true or false",
        IPv4Address: "an IPv4 address like 10.10.10.241",
        IPv4Network: "an IPv4 CIDR like 10.244.0.0/16",
    }
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(tp: Any, value: Any, where: str, problems: list[Problem]) -> Any:
    """Convert `value` to `tp`; on failure append a Problem and return None."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where, problems)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value in allowed:
            return value
        problems.append(
            Problem(where, value, "unknown value", f"use one of {', '.join(map(repr, allowed))}")
        )
        return None
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list):
            problems.append(Problem(where, value, "must be a list"))
            return None
        items = [_convert(item_tp, v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
        return tuple(items)
    if dataclasses.is_dataclass(tp):
        return _from_mapping(typing.cast(type, tp), value, where, problems)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is str:
        if isinstance(value, float):
            # YAML reads 20.10 as the number 20.1: the text the user wrote is already lost
            problems.append(
                Problem(
                    where,
                    value,
                    "was read as a number, not as text (YAML turns 20.10 into 20.1)",
                    "put the value in quotes, as you wrote it",
                )
            )
            return None
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    elif tp in (IPv4Address, IPv4Network):
        try:
            return tp(str(value))
        except ValueError as exc:
            fix = ""
            if tp is IPv4Network and "host bits set" in str(exc):
                fix = f"did you mean {IPv4Network(str(value), strict=False)}?"
            problems.append(Problem(where, value, f"must be {_type_name(tp)} ({exc})", fix))
            return None
    problems.append(Problem(where, value, f"must be {_type_name(tp)}"))
    return None


def _from_mapping(cls: type, value: Any, where: str, problems: list[Problem]) -> Any:
    if not isinstance(value, Mapping):
        problems.append(Problem(where or "<file>", value, "must be a mapping of keys to values"))
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name != "source"}
    before = len(problems)
    for key in value:
        if key not in fields:
            close = _closest(str(key), fields)
            fix = f"did you mean {close!r}?" if close else f"known keys: {', '.join(fields)}"
            problems.append(Problem(_join(where, str(key)), value[key], "unknown key", fix))
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        path = _join(where, name)
        if name not in value:
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if required:
                problems.append(Problem(path, None, "is required"))
            continue
        kwargs[name] = _convert(hints[name], value[name], path, problems)
    if len(problems) > before:
        return None
    return cls(**kwargs)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _closest(key: str, known: Iterable[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


# ---------------------------------------------------------------------------------------------
# Semantic validation (pure): every check returns problems, never raises

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
FLANNEL_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
DOCKER_VERSION = re.compile(r"^\d+\.\d+(\.\d+)?$")
BOX_VERSION = re.compile(r"^\d+(\.\d+)*$")
RELEASE = re.compile(r"^[0-9A-Za-z.]+$")
URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d+)?(/\S*)?$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
NIC = re.compile(r"^[a-z][a-z0-9]{0,14}$")
# registry/path:tag, as a container image reference (no digest forms needed here)
IMAGE = re.compile(
    r"^([a-z0-9.-]+(:\d+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$"
)
REGISTRY = re.compile(r"^[a-z0-9.-]+(:\d+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")

# kubeadm's preflight minimums for a control-plane node (NumCPU and Mem checks)
KUBEADM_MIN_CPUS = 2
KUBEADM_MIN_MEMORY_MIB = 1700
# the smallest VM that boots our boxes reliably
MIN_MEMORY_MIB = 512


def suggest_dns1123(name: str) -> str:
    """`k8s_Master` -> `k8s-master`: what a user most likely meant."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return label[:63] or "node"


def _check_name(where: str, name: str) -> Iterator[Problem]:
    if not DNS1123_LABEL.match(name) or len(name) > 63:
        yield Problem(
            where,
            name,
            "hostname must be a DNS-1123 label (lowercase letters, digits, '-'; start and end "
            "with a letter or digit; at most 63 characters): kubeadm rejects it otherwise",
            f"try {suggest_dns1123(name)!r}",
        )


def _check_url(where: str, url: str, required: bool = True) -> Iterator[Problem]:
    if not url and not required:
        return
    if not URL.match(url):
        yield Problem(where, url, "must be an http(s) URL", "e.g. https://mirrors.example.org/")


FILE_URL = re.compile(r"^file:///\S+$")


def _check_key_url(where: str, url: str, required: bool = True) -> Iterator[Problem]:
    """A gpg key: an http(s) URL, or a file already on the node (file:///path)."""
    if not url and not required:
        return
    if not URL.match(url) and not FILE_URL.match(url):
        yield Problem(
            where,
            url,
            "must be an http(s) URL or a file on the node (file:///path)",
            "e.g. file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7",
        )


def _check_repo(where: str, repo: Repo) -> Iterator[Problem]:
    yield from _check_url(f"{where}.baseurl", repo.baseurl)
    for i, url in enumerate(repo.alternatives):
        yield from _check_url(f"{where}.alternatives[{i}]", url)
    for i, key in enumerate(repo.gpgkeys):
        yield from _check_key_url(f"{where}.gpgkeys[{i}]", key)


def _check_image(where: str, image: str) -> Iterator[Problem]:
    if not IMAGE.match(image):
        yield Problem(
            where,
            image,
            "is not a container image reference",
            "use registry/repository:tag, e.g. quay.io/coreos/flannel:v0.14.0",
        )


def validate_nodes(lab: Lab) -> Iterator[Problem]:
    private = lab.network.private
    if not lab.nodes:
        yield Problem("nodes", [], "a lab needs at least one node")
    names: dict[str, int] = {}
    ips: dict[IPv4Address, int] = {}
    for i, node in enumerate(lab.nodes):
        where = f"nodes[{i}]"
        yield from _check_name(f"{where}.name", node.name)
        if node.name in names:
            yield Problem(
                f"{where}.name",
                node.name,
                f"duplicates nodes[{names[node.name]}].name",
                "give every node its own name",
            )
        names.setdefault(node.name, i)
        if node.ip in ips:
            yield Problem(
                f"{where}.ip",
                str(node.ip),
                f"duplicates nodes[{ips[node.ip]}].ip",
                "give every node its own address",
            )
        ips.setdefault(node.ip, i)
        if node.ip not in private:
            yield Problem(
                f"{where}.ip",
                str(node.ip),
                f"is outside network.private {private}",
                f"pick an address in {private}",
            )
        elif node.ip in (private.network_address, private.broadcast_address):
            yield Problem(
                f"{where}.ip",
                str(node.ip),
                f"is the {'network' if node.ip == private.network_address else 'broadcast'} "
                f"address of {private}",
                f"pick a host address between {private.network_address + 2} and "
                f"{private.broadcast_address - 1}",
            )
        elif node.ip == private.network_address + 1:
            yield Problem(
                f"{where}.ip",
                str(node.ip),
                f"is {private}'s first address, which libvirt gives the host bridge",
                f"pick an address from {private.network_address + 2} on",
            )
        cpus, mem = lab.cpus(node), lab.memory_mib(node)
        if cpus < 1:
            yield Problem(f"{where}.cpus", cpus, "must be at least 1")
        if mem < MIN_MEMORY_MIB:
            yield Problem(f"{where}.memory_mib", mem, f"must be at least {MIN_MEMORY_MIB}")


def validate_networks(lab: Lab, host_networks: Iterable[IPv4Network]) -> Iterator[Problem]:
    named: list[tuple[str, IPv4Network]] = [
        ("network.private", lab.network.private),
        ("network.management", lab.network.management),
        ("pod_network.cidr", lab.pod_network.cidr),
    ]
    if lab.kubernetes is not None:
        named.append(("kubernetes.service_cidr", lab.kubernetes.service_cidr))
    for (a_name, a), (b_name, b) in netmath.overlapping_pairs(named):
        yield Problem(
            b_name,
            str(b),
            f"overlaps {a_name} {a}",
            "the pod, service, private and management networks must be pairwise disjoint",
        )
    for net_name, net in named:
        for host_net in host_networks:
            if net.overlaps(host_net):
                yield Problem(
                    net_name,
                    str(net),
                    f"overlaps host network {host_net} (a host interface)",
                    "pick a range no host interface uses",
                )
    if lab.network.private.prefixlen > 29:
        yield Problem(
            "network.private",
            str(lab.network.private),
            "is too small for a lab",
            "use a /29 or larger",
        )


def validate_pod_network(lab: Lab) -> Iterator[Problem]:
    pn = lab.pod_network
    if not pn.cidr.prefixlen < pn.subnet_len <= 30:
        yield Problem(
            "pod_network.subnet_len",
            pn.subnet_len,
            f"must be longer than pod_network.cidr's /{pn.cidr.prefixlen} and at most 30",
            "the guide's flannel default is 24",
        )
    else:
        room = netmath.subnet_count(pn.cidr, pn.subnet_len)
        shortest = pn.cidr.prefixlen + (len(lab.nodes) - 1).bit_length()
        if room < len(lab.nodes):
            yield Problem(
                "pod_network.subnet_len",
                pn.subnet_len,
                f"{pn.cidr} holds only {room} /{pn.subnet_len} node subnet(s) for "
                f"{len(lab.nodes)} nodes",
                f"use a longer subnet_len (at least {shortest}) or a larger pod_network.cidr",
            )
    if not NIC.match(pn.bridge):
        yield Problem("pod_network.bridge", pn.bridge, "is not a valid interface name")
    if not 576 <= pn.mtu <= 9000:
        yield Problem("pod_network.mtu", pn.mtu, "must be between 576 and 9000")
    if pn.cni_version not in ("0.3.1", "0.4.0", "1.0.0"):
        yield Problem(
            "pod_network.cni_version",
            pn.cni_version,
            "unsupported CNI version",
            "use 0.3.1, 0.4.0 or 1.0.0",
        )
    if pn.driver == "flannel":
        if pn.flannel is None:
            yield Problem("pod_network.flannel", None, "is required when driver is flannel")
        else:
            yield from validate_flannel(pn.flannel)
        if lab.kubernetes is None:
            yield Problem(
                "pod_network.driver",
                pn.driver,
                "flannel needs a kubernetes section",
                "add kubernetes, or use driver host-routes",
            )
    elif pn.flannel is not None:
        yield Problem(
            "pod_network.flannel",
            "...",
            "is only used when driver is flannel",
            "remove it or set driver: flannel",
        )


def validate_flannel(fl: Flannel) -> Iterator[Problem]:
    if not FLANNEL_VERSION.match(fl.version):
        yield Problem("pod_network.flannel.version", fl.version, "must look like v0.14.0")
    yield from _check_url("pod_network.flannel.manifest_url", fl.manifest_url)
    if not SHA256.match(fl.manifest_sha256):
        yield Problem(
            "pod_network.flannel.manifest_sha256",
            fl.manifest_sha256,
            "must be 64 lowercase hex digits",
            "run sha256sum on the manifest",
        )
    yield from _check_image("pod_network.flannel.image", fl.image)
    if fl.mirror_image:
        yield from _check_image("pod_network.flannel.mirror_image", fl.mirror_image)


def validate_kubernetes(lab: Lab) -> Iterator[Problem]:
    k8s = lab.kubernetes
    if k8s is None:
        return
    if not SEMVER.match(k8s.version):
        yield Problem(
            "kubernetes.version",
            k8s.version,
            "must be MAJOR.MINOR.PATCH",
            "e.g. 1.18.1 (the guide's)",
        )
    if not RELEASE.match(k8s.package_release):
        yield Problem(
            "kubernetes.package_release", k8s.package_release, "must be an rpm release like 0"
        )
    yield from _check_repo("kubernetes.repo", k8s.repo)
    if k8s.repo.gpgcheck and not k8s.repo.gpgkeys:
        yield Problem(
            "kubernetes.repo.gpgkeys",
            [],
            "gpgcheck is on but no keys are given",
            "list the repository's gpg keys or set gpgcheck: false",
        )
    yield from validate_cni_package(lab, k8s)
    for i, mirror in enumerate(k8s.docker.registry_mirrors):
        yield from _check_url(f"kubernetes.docker.registry_mirrors[{i}]", mirror)
    for item in dataclasses.fields(E2eImages):
        name, image = item.name, getattr(k8s.e2e_images, item.name)
        yield from _check_image(f"kubernetes.e2e_images.{name}.image", image.image)
        if image.mirror:
            yield from _check_image(f"kubernetes.e2e_images.{name}.mirror", image.mirror)
    if not REGISTRY.match(k8s.image_repository):
        yield Problem(
            "kubernetes.image_repository",
            k8s.image_repository,
            "is not a registry path",
            "e.g. registry.aliyuncs.com/google_containers",
        )
    if k8s.pod_network_cidr != lab.pod_network.cidr:
        yield Problem(
            "pod_network.cidr",
            str(lab.pod_network.cidr),
            f"(flannel's net-conf Network) differs from kubernetes.pod_network_cidr "
            f"{k8s.pod_network_cidr}: flannel would masquerade cross-node pod traffic",
            f"set both to {k8s.pod_network_cidr}",
        )
    if not DOCKER_VERSION.match(k8s.docker.version):
        yield Problem("kubernetes.docker.version", k8s.docker.version, "must look like 19.03.15")
    yield from _check_repo("kubernetes.docker.repo", k8s.docker.repo)
    if not SEMVER.match(k8s.docker.containerd_version):
        yield Problem(
            "kubernetes.docker.containerd_version",
            k8s.docker.containerd_version,
            "must be a version like 1.4.3 (unpinned, yum takes the newest el7 build)",
        )
    planes = [i for i, n in enumerate(lab.nodes) if n.role == "control-plane"]
    if len(planes) != 1:
        yield Problem(
            "nodes[*].role",
            [lab.nodes[i].name for i in planes],
            f"a Kubernetes lab needs exactly one control-plane node, found {len(planes)}",
            "mark one node role: control-plane",
        )
    for i in planes:
        node = lab.nodes[i]
        cpus, mem = lab.cpus(node), lab.memory_mib(node)
        fix = "raise it, or set kubernetes.ignore_preflight_resources: true to opt out"
        if k8s.ignore_preflight_resources:
            continue
        if cpus < KUBEADM_MIN_CPUS:
            yield Problem(
                f"nodes[{i}].cpus",
                cpus,
                f"kubeadm needs at least {KUBEADM_MIN_CPUS} CPUs on the control plane",
                fix,
            )
        if mem < KUBEADM_MIN_MEMORY_MIB:
            yield Problem(
                f"nodes[{i}].memory_mib",
                mem,
                f"kubeadm needs at least {KUBEADM_MIN_MEMORY_MIB} MiB on the control plane",
                fix,
            )


RPM_VERSION_RELEASE = re.compile(r"^(\d+)\.\d+\.\d+-[0-9A-Za-z.]+$")


def validate_cni_package(lab: Lab, k8s: Kubernetes) -> Iterator[Problem]:
    m = RPM_VERSION_RELEASE.match(k8s.cni_package_version)
    if not m:
        yield Problem(
            "kubernetes.cni_package_version",
            k8s.cni_package_version,
            "must be an rpm version-release like 0.8.7-0",
        )
    elif lab.pod_network.driver == "flannel" and int(m[1]) >= 1:
        yield Problem(
            "kubernetes.cni_package_version",
            k8s.cni_package_version,
            "kubernetes-cni 1.x ships no flannel CNI plugin (flannel-io/flannel#1471) and the "
            "flannel manifest installs none: pods would stay ContainerCreating",
            "pin a 0.8.x release that ships it, e.g. 0.8.7-0",
        )


def validate_os_and_vm(lab: Lab) -> Iterator[Problem]:
    if not DNS1123_LABEL.match(lab.name) or len(lab.name) > 40:
        yield Problem(
            "name",
            lab.name,
            "must be lowercase letters, digits and '-' (<= 40)",
            f"try {suggest_dns1123(lab.name)[:40]!r}",
        )
    if lab.vm.box_version and not BOX_VERSION.match(lab.vm.box_version):
        yield Problem("vm.box_version", lab.vm.box_version, "must be a version like 2004.01")
    if lab.vm.box_url:
        yield from _check_url("vm.box_url", lab.vm.box_url)
    if not lab.vm.box_version and not lab.vm.box_build and not lab.vm.box_url:
        yield Problem(
            "vm.box_version",
            "",
            "pin the box: a reproducible lab needs a version",
            "set vm.box_version, or vm.box_build for a locally built box",
        )
    if not NIC.match(lab.vm.private_nic):
        yield Problem(
            "vm.private_nic",
            lab.vm.private_nic,
            "is not an interface name",
            "Vagrant's private network is eth1 on these boxes",
        )
    if lab.vm.boot_timeout_s < 30:
        yield Problem("vm.boot_timeout_s", lab.vm.boot_timeout_s, "must be at least 30")
    if lab.os.family == "el7":
        yield from _check_url("os.vault_url", lab.os.vault_url)
        yield from _check_key_url("os.gpgkey_url", lab.os.gpgkey_url, required=False)
        if lab.kubernetes is None:
            yield Problem("kubernetes", None, "an el7 lab follows the guide and needs Kubernetes")
    if lab.os.family == "debian12":
        if lab.kubernetes is not None:
            yield Problem(
                "kubernetes",
                "...",
                "the debian12 path has no Kubernetes packages",
                "remove kubernetes, or use os.family el7",
            )
        if lab.pod_network.driver != "host-routes":
            yield Problem(
                "pod_network.driver",
                lab.pod_network.driver,
                "the debian12 path wires pods with host-routes",
                "use driver: host-routes",
            )


def validate_lab(lab: Lab, host_networks: Iterable[IPv4Network] = ()) -> list[Problem]:
    """Every semantic problem of a structurally valid lab, in file order of the checks."""
    return [
        *validate_os_and_vm(lab),
        *validate_nodes(lab),
        *validate_networks(lab, tuple(host_networks)),
        *validate_pod_network(lab),
        *validate_kubernetes(lab),
    ]


def parse_lab(raw: object, source: str = "<lab>") -> tuple[Lab | None, list[Problem]]:
    """Structure and types only: unknown keys, missing keys, wrong types, bad addresses."""
    problems: list[Problem] = []
    lab = _from_mapping(Lab, raw, "", problems)
    if lab is not None:
        lab = dataclasses.replace(lab, source=source)
    return lab, problems
