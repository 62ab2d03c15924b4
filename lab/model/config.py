"""The lab model: frozen dataclasses, their structural parse and validation (pure).

`check_lab(raw)` gives a `Lab` or *every* problem found, structural and semantic together, each
naming the field, the value and the fix (`lab.model.labfile.load_lab` reads the file). `parse_lab`
and `validate_lab` are its two halves; none of them raises.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from pathlib import PurePosixPath
from typing import Final, Literal

from lab.common.redact import redact, userinfos
from lab.hosts.os import base as os_profiles
from lab.model import lookalike, strict
from lab.model.problems import ABSENT, Problem, render_problems
from lab.net import netmath
from lab.podnet import base as podnet

__all__ = ["ABSENT", "Lab", "LabError", "Problem", "check_lab", "parse_lab", "validate_lab"]

Role = Literal["control-plane", "worker"]
Hypervisor = Literal["auto", "kvm", "qemu"]
# an OS family (lab/hosts/os/) and a pod-network backend (lab/podnet/) are names their
# registries know: validation asks them, no other code compares the names
OsFamily = str
PodNetworkDriver = str
# the container runtime the lab installs for pods made through the CRI: containerd (Debian 12's
# 1.6, CRI runtime.v1) on the Debian labs; "none" where pods are the suite's own sandboxes (the
# CNI-direct driver) or Kubernetes' (el7 keeps the guide's Docker, under kubernetes.docker)
Runtime = Literal["none", "containerd"]
# the OCI runtime containerd's runc v2 shim calls for every container create, start, exec, kill
# and delete: runc (containerd's default, what the guide's Docker runs) or crun (C, Debian's
# crun 1.8; under TCG about half runc's CPU per call: docs/benchmarks.md)
OciRuntime = Literal["runc", "crun"]


class LabError(Exception):
    """A lab file that cannot be used; `problems` lists every reason at once."""

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(render_problems(self.problems))
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
class Segment:
    """One layer-2 segment of a routed underlay (one libvirt network): its nodes share it; the
    router VM takes its last host address (lab/model/underlay.py)."""

    name: str
    cidr: IPv4Network

    @property
    def router_address(self) -> IPv4Address:
        """The router VM's address on this segment: its last host address (.254 of a /24)."""
        return self.cidr.broadcast_address - 1


@dataclass(frozen=True)
class Router:
    """The router VM between the segments of a routed underlay: a real hop (its own kernel,
    MTU, filters and queues) and, for the BGP backend, the top-of-rack peer."""

    name: str = "router"
    cpus: int = 1
    memory_mib: int = 512


@dataclass(frozen=True)
class Network:
    # the node network: one flat layer-2 segment, or with `segments`, the block they are cut from
    private: IPv4Network
    management: IPv4Network = IPv4Network("192.168.121.0/24")  # noqa: RUF009 (immutable)
    # a routed underlay: two or more segments with a router VM between them (empty: flat)
    segments: tuple[Segment, ...] = ()
    router: Router | None = None  # the router VM (default: Router()) where there are segments

    @property
    def routed(self) -> bool:
        """A routed underlay: nodes on segments with a router VM between them."""
        return bool(self.segments)

    @property
    def router_vm(self) -> Router:
        return self.router if self.router is not None else Router()


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
    mtu: int | None = None  # the pods' interface MTU; default: 1450 in a VXLAN tunnel, else 1500
    cni_version: str = "0.4.0"
    flannel: Flannel | None = None


# the pod_network sub-sections that belong to one backend (Backend.sections says whose)
POD_NETWORK_SECTIONS = ("flannel",)


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
class Services:
    """The Services of a lab without Kubernetes: the suite's own, over its own pods, and the
    kube-proxy-shaped rules that carry them (iptables mode of v1.18; no kube-proxy runs).
    kubeadm's defaults: the service CIDR 10.96.0.0/12, cluster DNS at its 10th address, the
    API server's NodePort range."""

    cidr: IPv4Network = IPv4Network("10.96.0.0/12")  # noqa: RUF009 (immutable)
    node_port_range: str = "30000-32767"
    cluster_domain: str = "cluster.local"

    @property
    def dns_ip(self) -> IPv4Address:
        """kubeadm's cluster DNS address: the service CIDR's 10th address."""
        return self.cidr.network_address + 10

    @property
    def node_ports(self) -> range:
        low, _, high = self.node_port_range.partition("-")
        return range(int(low), int(high) + 1)


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
    # cri-tools, pinned: kubeadm 1.18 only requires >= 1.13.0, so yum would take the newest
    # build, which may be signed with a key the mirror's copies of the repo keys lack
    cri_tools_version: str = "1.13.0-0"
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
    runtime: Runtime = "none"
    oci_runtime: OciRuntime = "runc"
    services: Services | None = None
    source: str = field(default="", compare=False)
    # an instance of another lab (lab/model/instance.py): that lab's name; "" for the lab itself
    definition: str = field(default="", compare=False)

    @property
    def prefix(self) -> str:
        """Every libvirt object of this lab (domain, volume, network) starts with this, and no
        other lab's does: `_` cannot appear in a lab's name (a DNS-1123 label), so a lab whose
        name extends this one's (ci-debian12-vxlan, ci-debian12) never matches it."""
        return f"netlab-{self.name}_"

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
# Structure (the strict decoder) and semantics, every problem of a file in one pass


def parse_lab(raw: object, source: str = "<lab>") -> tuple[Lab | None, list[Problem]]:
    """Structure and types only: unknown keys, missing keys, wrong types, bad addresses."""
    problems: list[Problem] = []
    lab = _decode_lab(raw, source, problems)
    return (lab if isinstance(lab, Lab) and not problems else None), problems


def _decode_lab(raw: object, source: str, problems: list[Problem]) -> Lab | strict.Broken:
    if raw is None:
        problems.append(
            Problem(
                "<file>",
                message="is empty (nothing but comments or blank lines)",
                fix="a lab needs name, vm, network, nodes, os and pod_network: copy "
                "labs/ci-debian12.yaml to start",
            )
        )
        return strict.BROKEN
    decoded = strict.decode(Lab, raw, "", problems)
    if isinstance(decoded, Lab):
        return dataclasses.replace(decoded, source=source)
    return strict.BROKEN


def check_lab(
    raw: object,
    source: str = "<lab>",
    host_networks: Iterable[IPv4Network] = (),
    local_files: LocalFiles | None = None,
) -> tuple[Lab | None, list[Problem]]:
    """A `Lab`, or every problem of the file: structural ones first, then every semantic check
    that does not read a field the structure left broken. `local_files` (the files a pinned
    checksum may name here, see validate_pins) turns on the pin check. Never raises."""
    problems: list[Problem] = []
    lab = _decode_lab(raw, source, problems)
    structural = bool(problems)
    if isinstance(lab, Lab):
        problems.extend(validate_lab(lab, host_networks, structural, local_files))
    if problems or not isinstance(lab, Lab):
        return None, problems
    return lab, problems


# ---------------------------------------------------------------------------------------------
# Semantic validation (pure): every check returns problems, never raises

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SEMVER = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
DOCKER_VERSION = re.compile(r"^[0-9]+\.[0-9]+(\.[0-9]+)?$")
BOX_VERSION = re.compile(r"^[0-9]+(\.[0-9]+)*$")
RELEASE = re.compile(r"^[0-9A-Za-z.]+$")
URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/\S*)?$")
NIC = re.compile(r"^[a-z][a-z0-9]{0,14}$")
# registry/path:tag, as a container image reference, optionally pinned by digest
# (name:tag@sha256:<64 hex>, name@sha256:<64 hex>; OCI's sha512 too)
DIGEST = r"@(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})"
SHA256 = re.compile(r"^[0-9a-f]{64}$")  # a pinned file's checksum
IMAGE = re.compile(
    r"^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    rf"(:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?({DIGEST})?$"
)
REGISTRY = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")

# kubeadm's preflight minimums for a control-plane node (NumCPU and Mem checks)
KUBEADM_MIN_CPUS = 2
KUBEADM_MIN_MEMORY_MIB = 1700
# the smallest VM that boots our boxes reliably
MIN_MEMORY_MIB = 512
# beyond these a value is a typo, not a VM (QEMU's own limits are near them)
MAX_CPUS = 256
MAX_MEMORY_MIB = 1024 * 1024  # 1 TiB
MAX_BOOT_TIMEOUT_S = 24 * 3600
# the longest per-node pod subnet: a /30 holds the bridge and one pod
MAX_SUBNET_LEN = 30

# Where a lab's networks may be: private (RFC 1918) or documented for tests (RFC 5737
# TEST-NETs, RFC 2544 benchmarking). A public range would shadow real hosts for the nodes.
PRIVATE_RANGES = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
    IPv4Network("192.0.2.0/24"),
    IPv4Network("198.51.100.0/24"),
    IPv4Network("203.0.113.0/24"),
    IPv4Network("198.18.0.0/15"),
)
SPECIAL_RANGES = (
    (IPv4Network("127.0.0.0/8"), "loopback"),
    (IPv4Network("169.254.0.0/16"), "link-local"),
    (IPv4Network("224.0.0.0/4"), "multicast"),
    (IPv4Network("0.0.0.0/8"), "'this network' (RFC 1122)"),
    (IPv4Network("240.0.0.0/4"), "reserved (240.0.0.0/4)"),
)
NETWORK_EXAMPLES = {
    "network.private": "10.10.10.0/24",
    "network.management": "192.168.121.0/24",
    "pod_network.cidr": "10.244.0.0/16",
    "kubernetes.service_cidr": "10.96.0.0/12",
    "services.cidr": "10.96.0.0/12",
}


def matches(pattern: re.Pattern[str], value: str) -> bool:
    """`pattern` matches all of `value` (a BROKEN value stops the check, see strict.Broken)."""
    if isinstance(value, strict.Broken):
        raise strict.BrokenField
    return pattern.match(value) is not None


def suggest_dns1123(name: str) -> str:
    """`k8s_Master` -> `k8s-master`: what a user most likely meant."""
    label = re.sub(r"[^a-z0-9-]+", "-", name[:200].lower()).strip("-")
    return label[:63].rstrip("-") or "node"


def dns1123_fix(name: str, limit: int = 63) -> str:
    """How to make `name` a DNS-1123 label: a suggestion, unless the name only fails for a
    look-alike or invisible character (then the suggestion would be what the person typed:
    which character is wrong is what helps)."""
    if lookalike.suspects(name):
        return lookalike.retype_fix(name)
    # from the redacted name: a suggestion rewrites the value, out of the redaction's sight
    return f"try {suggest_dns1123(redact(name))[:limit].rstrip('-')!r}"


def _check_name(where: str, name: str) -> Iterator[Problem]:
    if not matches(DNS1123_LABEL, name) or len(name) > 63:
        yield Problem(
            where,
            name,
            "hostname must be a DNS-1123 label (lowercase letters, digits, '-'; start and end "
            "with a letter or digit; at most 63 characters): kubeadm rejects it otherwise",
            dns1123_fix(name),
        )


def _authority(url: str) -> str:
    rest = url.split("://", 1)[1] if "://" in url else url
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def _decoded_path(url: str) -> str:
    """The path of `url` as a server reads it: %XX decoded until nothing changes (a double
    encoding, %252e, is the usual way past one decoding)."""
    path = urllib.parse.urlsplit(url).path if "://" in url else url
    for _ in range(3):
        decoded = urllib.parse.unquote(path)
        if decoded == path:
            break
        path = decoded
    return path


def _climbs_out(url: str) -> bool:
    """A path segment '..' (also percent-encoded, or with backslashes): it climbs out of the
    directory the URL names."""
    try:
        path = _decoded_path(url)
    except ValueError:
        return False
    return ".." in re.split(r"[/\\]", path)


def _check_url_path(where: str, url: str) -> Iterator[Problem]:
    if _climbs_out(url):
        yield Problem(
            where,
            url,
            "has a '..' path segment (or one percent-encoded, %2e%2e): it climbs out of the "
            "directory it names, to what the lab file does not say",
            "write the path it means without '..'",
        )


def _carries_credentials(url: str) -> bool:
    """user@ or user:password@ before the URL's host (a password may hold '/', '@', ...), or a
    user:password@ of a URL in its query."""
    return "@" in _authority(url) or any(":" in info for info in userinfos(url))


def check_url(where: str, url: str) -> Iterator[Problem]:
    if isinstance(url, strict.Broken):
        raise strict.BrokenField
    if url.lower().startswith("file:"):
        yield Problem(
            where,
            url,
            "is a file:// URL: this field is fetched over http(s) (only a gpg key may be a file "
            "already on the node)",
            "give the http(s) URL of a mirror, e.g. https://mirrors.example.org/",
        )
        return
    if _carries_credentials(url):
        yield Problem(
            where,
            redact(url),
            "carries credentials (user:password@host): a lab file is shared, logged and "
            "copied into every node's repo files",
            "remove them from the URL; give the nodes credentials outside the lab file "
            "(e.g. a netrc or the mirror's own access control)",
        )
    elif not matches(URL, url):
        yield Problem(where, url, "must be an http(s) URL", "e.g. https://mirrors.example.org/")
    else:
        port = re.search(r":([0-9]+)$", _authority(url))
        # leading zeros do not count (:0080 is port 80); past 5 digits, 6 tell it is too big
        if port and not 0 < int(port[1].lstrip("0")[:6] or "0") <= 65535:
            yield Problem(where, url, "has a port outside 1-65535")
        yield from _check_url_path(where, url)


FILE_URL = re.compile(r"^file:///\S+$")


def check_key_url(where: str, url: str, required: bool = True) -> Iterator[Problem]:
    """A gpg key: an http(s) URL, or a file already on the node (file:///path)."""
    if not url and not required:
        return
    if _carries_credentials(url):  # said first, as check_url does (else: not a URL)
        yield Problem(
            where,
            redact(url),
            "carries credentials (user:password@host): a lab file is shared, logged and "
            "copied into every node's repo files",
            "remove them from the URL",
        )
    elif not matches(URL, url) and not matches(FILE_URL, url):
        yield Problem(
            where,
            url,
            "must be an http(s) URL or a file on the node (file:///path)",
            "e.g. file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7",
        )
    else:
        yield from _check_url_path(where, url)


def _check_repo(where: str, repo: Repo) -> Iterator[Problem]:
    yield from check_url(f"{where}.baseurl", repo.baseurl)
    for i, url in enumerate(repo.alternatives):
        yield from check_url(f"{where}.alternatives[{i}]", url)
    for i, key in enumerate(repo.gpgkeys):
        yield from check_key_url(f"{where}.gpgkeys[{i}]", key)


def check_image(where: str, image: str) -> Iterator[Problem]:
    if not matches(IMAGE, image):
        yield Problem(
            where,
            image,
            "is not a container image reference",
            "use registry/repository:tag, e.g. quay.io/coreos/flannel:v0.14.0",
        )


def guard_each(checks: Iterable[Iterator[Problem]]) -> Iterator[Problem]:
    """Each check on its own: one that touches a broken field stops alone."""
    for check in checks:
        yield from strict.guarded(check, partial=False)


def validate_nodes(lab: Lab) -> Iterator[Problem]:
    if not lab.nodes:
        yield Problem(
            "nodes", [], "a lab needs at least one node", "add one: - {name: node1, ip: ...}"
        )
    names: dict[str, int] = {}
    ips: dict[IPv4Address, int] = {}
    yield from guard_each(_check_node(lab, i, node, names, ips) for i, node in enumerate(lab.nodes))
    yield from validate_node_names(lab)


def _check_node(
    lab: Lab, i: int, node: Node, names: dict[str, int], ips: dict[IPv4Address, int]
) -> Iterator[Problem]:
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
    yield from strict.guarded(_check_node_ip(lab, i, node, ips), partial=False)
    yield from _check_resources(where, node.cpus, node.memory_mib)


def _check_node_ip(lab: Lab, i: int, node: Node, ips: dict[IPv4Address, int]) -> Iterator[Problem]:
    where = f"nodes[{i}]"
    if node.ip in ips:
        yield Problem(
            f"{where}.ip",
            str(node.ip),
            f"duplicates nodes[{ips[node.ip]}].ip",
            "give every node its own address",
        )
    ips.setdefault(node.ip, i)
    private = lab.network.private
    if node.ip not in private:
        yield Problem(
            f"{where}.ip",
            str(node.ip),
            f"is outside network.private {private}",
            f"pick an address in {private}",
        )
    elif lab.network.routed:
        yield from _check_node_segment(lab, i, node)
    elif private.prefixlen > 29:
        return  # network.private is too small: reported on its own
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


def _check_node_segment(lab: Lab, i: int, node: Node) -> Iterator[Problem]:
    """On a routed underlay: the node sits on one segment, on a host address that is neither
    libvirt's host bridge (the segment's first) nor the router's (its last)."""
    where = f"nodes[{i}].ip"
    segments = [s for s in lab.network.segments if node.ip in s.cidr]
    if not segments:
        listed = ", ".join(f"{s.name} {s.cidr}" for s in lab.network.segments)
        yield Problem(
            where,
            str(node.ip),
            f"is on no segment of network.segments ({listed}): a node of a routed underlay "
            "sits on one of its segments",
            "pick an address inside one of them",
        )
        return
    seg = segments[0]
    net = seg.cidr
    if net.prefixlen > 29:
        return  # the segment is too small: reported on its own
    if node.ip in (net.network_address, net.broadcast_address):
        kind = "network" if node.ip == net.network_address else "broadcast"
        yield Problem(
            where,
            str(node.ip),
            f"is the {kind} address of segment {seg.name} {net}",
            f"pick a host address between {net.network_address + 2} and {seg.router_address - 1}",
        )
    elif node.ip == net.network_address + 1:
        yield Problem(
            where,
            str(node.ip),
            f"is segment {seg.name}'s first address, which libvirt gives the host bridge",
            f"pick an address from {net.network_address + 2} on",
        )
    elif node.ip == seg.router_address:
        yield Problem(
            where,
            str(node.ip),
            f"is segment {seg.name}'s last host address, which the router VM "
            f"{lab.network.router_vm.name!r} takes",
            f"pick an address between {net.network_address + 2} and {seg.router_address - 1}",
        )


MAX_SEGMENTS = 4  # the router VM's private NICs (eth1..eth4)
SEGMENT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def validate_underlay(lab: Lab) -> Iterator[Problem]:
    """A routed underlay (network.segments, network.router): two to MAX_SEGMENTS disjoint
    segments inside network.private, each holding a node, and a router VM that a node's name
    does not shadow; an OS path that provisions it."""
    net = lab.network
    if not net.routed:
        if net.router is not None:
            yield Problem(
                "network.router",
                message="is the router between the segments of a routed underlay; this lab "
                "has no network.segments (one flat segment, no router)",
                fix="remove network.router, or add network.segments",
            )
        return
    yield from guard_each((_segments(lab), _router(lab), _underlay_os(lab)))


def _segments(lab: Lab) -> Iterator[Problem]:
    net = lab.network
    count = len(net.segments)
    if count == 1:
        yield Problem(
            "network.segments",
            [net.segments[0].name],
            "one segment is the flat network: a routed underlay has two or more, with the "
            "router between them",
            "add a segment, or remove network.segments for a flat lab",
        )
    elif count > MAX_SEGMENTS:
        yield Problem(
            "network.segments",
            [s.name for s in net.segments],
            f"has {count} segments; the router VM has a NIC for at most {MAX_SEGMENTS}",
            f"use at most {MAX_SEGMENTS} segments",
        )
    names: dict[str, int] = {}
    for i, seg in enumerate(net.segments):
        where = f"network.segments[{i}]"
        if not matches(SEGMENT_NAME, seg.name) or len(seg.name) > 15:
            yield Problem(
                f"{where}.name",
                seg.name,
                "must be a short label (lowercase letters, digits, '-'; at most 15): it names "
                "the segment's libvirt network",
                f"try {suggest_dns1123(seg.name)[:15].rstrip('-')!r}",
            )
        elif seg.name in names:
            yield Problem(
                f"{where}.name",
                seg.name,
                f"duplicates network.segments[{names[seg.name]}].name",
                "give every segment its own name",
            )
        names.setdefault(seg.name, i)
        if not seg.cidr.subnet_of(net.private):
            yield Problem(
                f"{where}.cidr",
                str(seg.cidr),
                f"is outside network.private {net.private} (the block the segments are cut "
                "from: instances move it as one)",
                f"pick a range inside {net.private}, or widen network.private",
            )
        if seg.cidr.prefixlen > 29:
            yield Problem(
                f"{where}.cidr", str(seg.cidr), "is too small for a segment", "use a /29 or larger"
            )
        elif not any(n.ip in seg.cidr for n in lab.nodes):
            yield Problem(
                f"{where}.cidr",
                str(seg.cidr),
                f"holds no node: segment {seg.name} would only connect the router to nothing",
                "put a node on it (nodes[*].ip) or remove the segment",
            )
    named = [(f"network.segments[{i}].cidr", s.cidr) for i, s in enumerate(net.segments)]
    for (a_name, a), (b_name, b) in netmath.overlapping_pairs(named):
        yield Problem(b_name, str(b), f"overlaps {a_name} {a}", "segments must be disjoint")


def _router(lab: Lab) -> Iterator[Problem]:
    router = lab.network.router_vm
    yield from _check_name("network.router.name", router.name)
    if router.name in lab.node_names:
        yield Problem(
            "network.router.name",
            router.name,
            "is also a node's name: the router is a VM of its own",
            f"name it e.g. {router.name + '-tor'!r}",
        )
    yield from _check_resources("network.router", router.cpus, router.memory_mib)


def _underlay_os(lab: Lab) -> Iterator[Problem]:
    try:
        path = os_profiles.profile(lab.os.family)
    except KeyError:
        return  # named by the OS checks
    if not path.routed_underlay:
        fitting = [f for f in os_profiles.families() if os_profiles.profile(f).routed_underlay]
        yield Problem(
            "network.segments",
            [s.name for s in lab.network.segments],
            f"the {lab.os.family} path does not provision a routed underlay (the nodes' "
            "routes to the other segments, the router VM)",
            "remove network.segments, or use os.family " + " or ".join(fitting),
        )


def _check_resources(where: str, cpus: int | None, memory_mib: int | None) -> Iterator[Problem]:
    """A VM's CPUs and memory in a sane range (None: not set here, the vm default applies)."""
    if cpus is not None and not 1 <= cpus <= MAX_CPUS:
        yield Problem(f"{where}.cpus", cpus, f"must be between 1 and {MAX_CPUS}")
    if memory_mib is not None and memory_mib < MIN_MEMORY_MIB:
        yield Problem(f"{where}.memory_mib", memory_mib, f"must be at least {MIN_MEMORY_MIB}")
    elif memory_mib is not None and memory_mib > MAX_MEMORY_MIB:
        yield Problem(
            f"{where}.memory_mib",
            memory_mib,
            f"is more than 1 TiB ({MAX_MEMORY_MIB} MiB): the unit is MiB",
            "e.g. 2048 for 2 GiB",
        )


def _network_kind(net: IPv4Network) -> str | None:
    """Why `net` is no place for a lab network (None: it is private or a test range)."""
    if any(net.subnet_of(r) for r in PRIVATE_RANGES):
        return None
    for special, kind in SPECIAL_RANGES:
        if net.overlaps(special):
            return f"is {kind}"
    if any(net.overlaps(r) for r in PRIVATE_RANGES):
        return "reaches beyond the private range it starts in (public addresses)"
    return "is public address space (not RFC 1918)"


def validate_networks(lab: Lab, host_networks: Iterable[IPv4Network]) -> Iterator[Problem]:
    named: list[tuple[str, IPv4Network]] = []
    for name, get in (
        ("network.private", lambda: lab.network.private),
        ("network.management", lambda: lab.network.management),
        ("pod_network.cidr", lambda: lab.pod_network.cidr),
        ("kubernetes.service_cidr", lambda: _service_cidr(lab)),
        ("services.cidr", lambda: None if lab.services is None else lab.services.cidr),
    ):
        net = _field(get)
        if isinstance(net, IPv4Network):
            named.append((name, net))
    for net_name, net in named:
        kind = _network_kind(net)
        if kind is not None:
            yield Problem(
                net_name,
                str(net),
                f"{kind}: a lab network must be private",
                "use a range inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 (or a "
                f"documented test range), e.g. {NETWORK_EXAMPLES[net_name]}",
            )
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
    if "network.private" in dict(named) and lab.network.private.prefixlen > 29:
        yield Problem(
            "network.private",
            str(lab.network.private),
            "is too small for a lab",
            "use a /29 or larger",
        )
    yield from guard_each((validate_service_network(lab), validate_management_network(lab)))


NODE_PORT_RANGE = re.compile(r"^([0-9]{1,5})-([0-9]{1,5})$")
CLUSTER_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def validate_services(lab: Lab) -> Iterator[Problem]:
    svc = lab.services
    if svc is None:
        return

    def cidr() -> Iterator[Problem]:
        yield from check_service_cidr("services.cidr", svc.cidr)

    def node_ports() -> Iterator[Problem]:
        m = matches(NODE_PORT_RANGE, svc.node_port_range)
        found = NODE_PORT_RANGE.match(svc.node_port_range) if m else None
        low, high = (int(found[1]), int(found[2])) if found else (0, 0)
        if not found or not 0 < low < high <= 65535:
            yield Problem(
                "services.node_port_range",
                svc.node_port_range,
                "must be LOW-HIGH, two ports with 0 < LOW < HIGH <= 65535",
                "e.g. 30000-32767 (the API server's default)",
            )
        elif high - low < 15:
            yield Problem(
                "services.node_port_range",
                svc.node_port_range,
                "leaves fewer than 16 ports for the suite's NodePorts",
                "e.g. 30000-32767 (the API server's default)",
            )

    def domain() -> Iterator[Problem]:
        if not matches(CLUSTER_DOMAIN, svc.cluster_domain) or len(svc.cluster_domain) > 253:
            yield Problem(
                "services.cluster_domain",
                svc.cluster_domain,
                "is not a DNS domain (lowercase labels separated by dots)",
                "e.g. cluster.local (kubelet's default)",
            )

    def not_with_kubernetes() -> Iterator[Problem]:
        if lab.kubernetes is not None:
            yield Problem(
                "services",
                message="is for labs without Kubernetes: a Kubernetes lab's Services are its "
                "own (kubernetes.service_cidr, kube-proxy, CoreDNS)",
                fix="remove services",
            )

    yield from guard_each((cidr(), node_ports(), domain(), not_with_kubernetes()))


def _service_cidr(lab: Lab) -> IPv4Network | None:
    return None if lab.kubernetes is None else lab.kubernetes.service_cidr


def _field(get: Callable[[], object]) -> object:
    """A field's value, or None when it (or a section above it) could not be decoded."""
    try:
        value = get()
    except strict.BrokenField:
        return None
    return None if isinstance(value, strict.Broken) else value


def validate_pod_network(lab: Lab) -> Iterator[Problem]:
    pn = lab.pod_network

    def bridge() -> Iterator[Problem]:
        if not matches(NIC, pn.bridge):
            yield Problem("pod_network.bridge", pn.bridge, "is not a valid interface name")

    def mtu() -> Iterator[Problem]:
        if pn.mtu is not None and not 576 <= pn.mtu <= 9000:
            yield Problem("pod_network.mtu", pn.mtu, "must be between 576 and 9000")

    def cni() -> Iterator[Problem]:
        if pn.cni_version not in ("0.3.1", "0.4.0", "1.0.0"):
            yield Problem(
                "pod_network.cni_version",
                pn.cni_version,
                "unsupported CNI version",
                "use 0.3.1, 0.4.0 or 1.0.0",
            )

    def driver() -> Iterator[Problem]:
        try:
            chosen = podnet.backend(pn.driver)
        except KeyError:
            yield Problem(
                "pod_network.driver",
                pn.driver,
                "is not a pod-network backend this harness knows",
                f"use one of: {', '.join(podnet.names())}",
            )
            return
        for section in POD_NETWORK_SECTIONS:  # a backend's own section, set for another
            if getattr(pn, section) is None or section in chosen.sections:
                continue
            users = [n for n in podnet.names() if section in podnet.backend(n).sections]
            yield Problem(
                f"pod_network.{section}",
                message=f"is only used when driver is {' or '.join(users)}",
                fix=f"remove it or set driver: {users[0]}" if users else "remove it",
            )
        if chosen.needs_kubernetes and lab.kubernetes is None:
            yield Problem(
                "pod_network.driver",
                pn.driver,
                f"{pn.driver} runs on Kubernetes: it needs a kubernetes section",
                "add kubernetes, or use "
                + " or ".join(
                    f"driver {n}" for n in podnet.names() if not podnet.backend(n).needs_kubernetes
                ),
            )
        yield from guard_each([chosen.validate(lab)])

    yield from guard_each((_check_pod_subnets(lab), bridge(), mtu(), cni(), driver()))


def _check_pod_subnets(lab: Lab) -> Iterator[Problem]:
    """A /subnet_len per node fits in the pod CIDR; each hint is one the user can follow."""
    pn = lab.pod_network
    nodes = max(len(lab.nodes), 1)
    bits = (nodes - 1).bit_length()  # subnet_len - cidr length must be at least this
    shortest = pn.cidr.prefixlen + max(bits, 1)
    if shortest > MAX_SUBNET_LEN:
        widest = MAX_SUBNET_LEN - max(bits, 1)
        yield Problem(
            "pod_network.cidr",
            str(pn.cidr),
            f"is too small for {nodes} node subnet(s): the longest node subnet is a "
            f"/{MAX_SUBNET_LEN}",
            f"use a /{widest} or larger, e.g. 10.244.0.0/16 (flannel's default)",
        )
    elif not pn.cidr.prefixlen < pn.subnet_len <= MAX_SUBNET_LEN:
        hint = (
            "the guide's flannel default is 24"
            if shortest <= 24
            else f"use a value from {shortest} to {MAX_SUBNET_LEN}"
        )
        yield Problem(
            "pod_network.subnet_len",
            pn.subnet_len,
            f"must be longer than pod_network.cidr's /{pn.cidr.prefixlen} and at most "
            f"{MAX_SUBNET_LEN}",
            hint,
        )
    else:
        room = netmath.subnet_count(pn.cidr, pn.subnet_len)
        if room < nodes:
            yield Problem(
                "pod_network.subnet_len",
                pn.subnet_len,
                f"{pn.cidr} holds only {room} /{pn.subnet_len} node subnet(s) for {nodes} nodes",
                f"use a longer subnet_len (at least {pn.cidr.prefixlen + bits}) or a larger "
                "pod_network.cidr",
            )


def _where(lab: Lab, i: int, node: Node, attr: str) -> str:
    """The field a node's CPUs or memory come from: its own, or the vm default it inherits."""
    return f"nodes[{i}].{attr}" if getattr(node, attr) is not None else f"vm.{attr}"


def validate_kubernetes(lab: Lab) -> Iterator[Problem]:
    k8s = lab.kubernetes
    if k8s is None:
        return
    yield from guard_each(_kubernetes_checks(lab, k8s))


def _kubernetes_checks(lab: Lab, k8s: Kubernetes) -> Iterator[Iterator[Problem]]:
    def version() -> Iterator[Problem]:
        if not matches(SEMVER, k8s.version):
            yield Problem(
                "kubernetes.version",
                k8s.version,
                "must be MAJOR.MINOR.PATCH",
                "e.g. 1.18.1 (the guide's)",
            )
        if not matches(RELEASE, k8s.package_release):
            yield Problem(
                "kubernetes.package_release", k8s.package_release, "must be an rpm release like 0"
            )

    def repo(where: str, repo: Repo, keys_required: bool) -> Iterator[Problem]:
        yield from _check_repo(where, repo)
        if keys_required and repo.gpgcheck and not repo.gpgkeys:
            yield Problem(
                f"{where}.gpgkeys",
                [],
                "gpgcheck is on but no keys are given",
                "list the repository's gpg keys or set gpgcheck: false",
            )

    def registry() -> Iterator[Problem]:
        if not matches(REGISTRY, k8s.image_repository):
            yield Problem(
                "kubernetes.image_repository",
                k8s.image_repository,
                "is not a registry path",
                "e.g. registry.aliyuncs.com/google_containers",
            )

    def pod_cidr() -> Iterator[Problem]:
        if k8s.pod_network_cidr != lab.pod_network.cidr:
            yield Problem(
                "pod_network.cidr",
                str(lab.pod_network.cidr),
                f"(flannel's net-conf Network) differs from kubernetes.pod_network_cidr "
                f"{k8s.pod_network_cidr}: flannel would masquerade cross-node pod traffic",
                f"set both to {k8s.pod_network_cidr}",
            )

    def docker() -> Iterator[Problem]:
        if not matches(DOCKER_VERSION, k8s.docker.version):
            yield Problem(
                "kubernetes.docker.version", k8s.docker.version, "must look like 19.03.15"
            )
        if not matches(SEMVER, k8s.docker.containerd_version):
            yield Problem(
                "kubernetes.docker.containerd_version",
                k8s.docker.containerd_version,
                "must be a version like 1.4.3 (unpinned, yum takes the newest el7 build)",
            )

    def mirrors() -> Iterator[Problem]:
        for i, mirror in enumerate(k8s.docker.registry_mirrors):
            yield from check_url(f"kubernetes.docker.registry_mirrors[{i}]", mirror)

    def images() -> Iterator[Problem]:
        for item in dataclasses.fields(E2eImages):
            name, image = item.name, getattr(k8s.e2e_images, item.name)
            yield from check_image(f"kubernetes.e2e_images.{name}.image", image.image)
            if image.mirror:
                yield from check_image(f"kubernetes.e2e_images.{name}.mirror", image.mirror)

    yield version()
    yield validate_cni_package(lab, k8s)
    yield repo("kubernetes.repo", k8s.repo, keys_required=True)
    yield registry()
    yield pod_cidr()
    yield docker()
    yield repo("kubernetes.docker.repo", k8s.docker.repo, keys_required=False)
    yield mirrors()
    yield images()
    yield _control_plane(lab, k8s)


def _control_plane(lab: Lab, k8s: Kubernetes) -> Iterator[Problem]:
    planes = [i for i, n in enumerate(lab.nodes) if n.role == "control-plane"]
    if len(planes) != 1:
        yield Problem(
            "nodes[*].role",
            [lab.nodes[i].name for i in planes],
            f"a Kubernetes lab needs exactly one control-plane node, found {len(planes)}",
            "mark one node role: control-plane",
        )
    if k8s.ignore_preflight_resources:
        return
    fix = "raise it, or set kubernetes.ignore_preflight_resources: true to opt out"
    for i in planes:
        node = lab.nodes[i]
        cpus, mem = lab.cpus(node), lab.memory_mib(node)
        inherits = f" ({node.name} takes the vm default)"
        if cpus < KUBEADM_MIN_CPUS:
            where = _where(lab, i, node, "cpus")
            yield Problem(
                where,
                cpus,
                f"kubeadm needs at least {KUBEADM_MIN_CPUS} CPUs on the control plane"
                + (inherits if where.startswith("vm.") else ""),
                fix,
            )
        if mem < KUBEADM_MIN_MEMORY_MIB:
            where = _where(lab, i, node, "memory_mib")
            yield Problem(
                where,
                mem,
                f"kubeadm needs at least {KUBEADM_MIN_MEMORY_MIB} MiB on the control plane"
                + (inherits if where.startswith("vm.") else ""),
                fix,
            )


RPM_VERSION_RELEASE = re.compile(r"^([0-9]+)\.[0-9]+\.[0-9]+-[0-9A-Za-z.]+$")


def validate_cni_package(lab: Lab, k8s: Kubernetes) -> Iterator[Problem]:
    if not matches(RPM_VERSION_RELEASE, k8s.cri_tools_version):
        yield Problem(
            "kubernetes.cri_tools_version",
            k8s.cri_tools_version,
            "must be an rpm version-release like 1.13.0-0 (unpinned, yum takes the newest)",
        )
    m = RPM_VERSION_RELEASE.match(k8s.cni_package_version)
    if not m:
        yield Problem(
            "kubernetes.cni_package_version",
            k8s.cni_package_version,
            "must be an rpm version-release like 0.8.7-0",
        )


def validate_os_and_vm(lab: Lab) -> Iterator[Iterator[Problem]]:
    """The top-level, vm and os checks, one per field (each runs on its own)."""

    def name() -> Iterator[Problem]:
        if not matches(DNS1123_LABEL, lab.name) or len(lab.name) > 40:
            yield Problem(
                "name",
                lab.name,
                "must be lowercase letters, digits and '-' (<= 40)",
                dns1123_fix(lab.name, 40),
            )

    def box() -> Iterator[Problem]:
        vm = lab.vm
        if vm.box_version and not matches(BOX_VERSION, vm.box_version):
            yield Problem("vm.box_version", vm.box_version, "must be a version like 2004.01")
        if vm.box_url:
            yield from check_url("vm.box_url", vm.box_url)
        if not vm.box_version and not vm.box_build and not vm.box_url:
            yield Problem(
                "vm.box_version",
                "",
                "pin the box: a reproducible lab needs a version",
                "set vm.box_version, or vm.box_build for a locally built box",
            )

    def vm() -> Iterator[Problem]:
        if not matches(NIC, lab.vm.private_nic):
            yield Problem(
                "vm.private_nic",
                lab.vm.private_nic,
                "is not an interface name",
                "Vagrant's private network is eth1 on these boxes",
            )
        if not 30 <= lab.vm.boot_timeout_s <= MAX_BOOT_TIMEOUT_S:
            yield Problem(
                "vm.boot_timeout_s",
                lab.vm.boot_timeout_s,
                f"must be between 30 and {MAX_BOOT_TIMEOUT_S} (24 hours)",
            )

    def resources() -> Iterator[Problem]:
        yield from _check_resources("vm", lab.vm.cpus, None)
        yield from _check_resources("vm", None, lab.vm.memory_mib)

    yield name()
    yield box()
    yield vm()
    yield resources()
    yield validate_os_path(lab)
    yield validate_runtime(lab)


def validate_os_path(lab: Lab) -> Iterator[Problem]:
    """The OS family is known, its own checks, and what its path installs matches the lab."""
    try:
        path = os_profiles.profile(lab.os.family)
    except KeyError:
        yield Problem(
            "os.family",
            lab.os.family,
            "is not an OS family this harness knows",
            f"use one of: {', '.join(os_profiles.families())}",
        )
        return
    yield from path.validate(lab)
    family = lab.os.family
    if path.kubernetes and lab.kubernetes is None:
        yield Problem(
            "kubernetes",
            message=f"the {family} path follows the guide and installs Kubernetes: it needs "
            "a kubernetes section",
            fix="copy the kubernetes section of labs/guide-centos7.yaml",
        )
    if not path.kubernetes and lab.kubernetes is not None:
        yield Problem(
            "kubernetes",
            message=f"the {family} path has no Kubernetes packages",
            fix="remove kubernetes, or use an os.family that installs it: "
            + ", ".join(f for f in os_profiles.families() if os_profiles.profile(f).kubernetes),
        )
    try:
        chosen = podnet.backend(lab.pod_network.driver)
    except KeyError:
        return  # named by the pod_network checks
    if chosen.needs_kubernetes != path.kubernetes:
        fitting = [
            n for n in podnet.names() if podnet.backend(n).needs_kubernetes == path.kubernetes
        ]
        how = (
            "installs Kubernetes and its pod network runs on it"
            if path.kubernetes
            else "has no Kubernetes: it wires pods itself"
        )
        yield Problem(
            "pod_network.driver",
            lab.pod_network.driver,
            f"the {family} path {how}",
            "use " + " or ".join(f"driver: {n}" for n in fitting),
        )


def validate_runtime(lab: Lab) -> Iterator[Problem]:
    """The container runtimes the lab asks for are ones its OS path installs."""
    try:
        path = os_profiles.profile(lab.os.family)
    except KeyError:
        return
    if lab.runtime != "none" and lab.runtime not in path.runtimes:
        others = [
            f for f in os_profiles.families() if lab.runtime in os_profiles.profile(f).runtimes
        ]
        yield Problem(
            "runtime",
            lab.runtime,
            f"the {lab.os.family} path does not install {lab.runtime}"
            + ("; it keeps the guide's Docker (kubernetes.docker)" if path.kubernetes else ""),
            "remove runtime (or set runtime: none)"
            + (f", or use os.family {' or '.join(others)}" if others else ""),
        )
    if lab.oci_runtime != "runc" and lab.runtime != "containerd":
        yield Problem(
            "oci_runtime",
            lab.oci_runtime,
            f"is the OCI runtime containerd calls; this lab has runtime: {lab.runtime}",
            "remove oci_runtime, or set runtime: containerd",
        )


# ---------------------------------------------------------------------------------------------
# Limits the tools themselves set (kubeadm, the API server, vagrant-libvirt, the NICs), and names
# the hosts file and the lab's own libvirt objects hold

# kubeadm gives cluster DNS the 10th address of the service CIDR (kubeadm's GetDNSIP), and the
# API server refuses a service range of more than 20 host bits (a /12 for IPv4, a /108 for IPv6)
DNS_SERVICE_INDEX: Final = 10
MAX_SERVICE_HOST_BITS: Final = 20
SERVICE_EXAMPLES: Final = {
    4: "10.96.0.0/12 (kubeadm's default) or 10.1.0.0/16",
    6: "fd00:10:96::/108",
}


def check_service_cidr(where: str, net: IPv4Network | IPv6Network) -> Iterator[Problem]:
    """A service CIDR kubeadm and the API server take: no larger than the API server allows
    (2^20 addresses: a /12 for IPv4) and large enough for kubeadm's DNS address, its 10th
    (a /28 at the smallest for IPv4). `where` is the field it came from."""
    if isinstance(net, strict.Broken):
        raise strict.BrokenField
    host_bits = net.max_prefixlen - net.prefixlen
    example = SERVICE_EXAMPLES[net.version]
    if host_bits > MAX_SERVICE_HOST_BITS:
        largest = net.max_prefixlen - MAX_SERVICE_HOST_BITS
        yield Problem(
            where,
            str(net),
            f"is larger than a /{largest}: the API server refuses a service range of more than "
            f'2^{MAX_SERVICE_HOST_BITS} addresses ("--service-cluster-ip-range is too large")',
            f"use a /{largest} or smaller, e.g. {example}",
        )
    elif net.num_addresses <= DNS_SERVICE_INDEX:
        smallest = net.max_prefixlen - (DNS_SERVICE_INDEX).bit_length()
        yield Problem(
            where,
            str(net),
            f"holds {net.num_addresses} addresses: kubeadm gives cluster DNS the "
            f"{DNS_SERVICE_INDEX}th address of the service range, which {net} does not have",
            f"use a /{smallest} or larger, e.g. {example}",
        )


def validate_service_network(lab: Lab) -> Iterator[Problem]:
    k8s = lab.kubernetes
    if k8s is not None:
        yield from check_service_cidr("kubernetes.service_cidr", k8s.service_cidr)


# vagrant-libvirt's management network: the host's bridge takes its first address and each VM
# a DHCP lease from the range after it up to the last address before the broadcast
MANAGEMENT_RESERVED: Final = 3  # the network address, the host's gateway, the broadcast


def validate_management_network(lab: Lab) -> Iterator[Problem]:
    net, nodes = lab.network.management, len(lab.nodes)
    leases = max(net.num_addresses - MANAGEMENT_RESERVED, 0)
    if leases >= nodes:
        return
    prefix = net.max_prefixlen - (nodes + MANAGEMENT_RESERVED - 1).bit_length()
    yield Problem(
        "network.management",
        str(net),
        f"has room for {leases} DHCP lease(s) and the lab has {nodes} node(s): "
        "vagrant-libvirt's management network gives each VM a lease, after the network "
        "address and the host's gateway, before the broadcast address",
        f"use a /{prefix} or larger, e.g. 192.168.121.0/24 (vagrant-libvirt's default)",
    )


# Vagrant reaches every VM on its first NIC (eth0 on these boxes: vagrant-libvirt's management
# network); the lab's private network is the second
MANAGEMENT_NIC: Final = "eth0"


def validate_nics(lab: Lab) -> Iterator[Problem]:
    nic, bridge = lab.vm.private_nic, lab.pod_network.bridge
    if nic == MANAGEMENT_NIC:
        yield Problem(
            "vm.private_nic",
            nic,
            f"is the NIC Vagrant manages the VMs through ({MANAGEMENT_NIC}, on vagrant-libvirt's "
            "management network): pod routes and the node IPs would go on the wrong network",
            "the lab's private network is the second NIC: eth1 on these boxes",
        )
    elif nic == "lo":
        yield Problem("vm.private_nic", nic, "is the loopback interface", "use eth1")
    taken = {nic: "private NIC", MANAGEMENT_NIC: "management NIC", "lo": "loopback interface"}
    if bridge in taken:
        yield Problem(
            "pod_network.bridge",
            bridge,
            f"is the name of the node's {taken[bridge]}: the CNI bridge plugin would take that "
            "interface for the pods' bridge",
            "give the bridge a name of its own, e.g. cni0",
        )


# names a node cannot have: what /etc/hosts already names on Debian and CentOS (and macOS), and
# the names of the lab's own libvirt networks (netlab-<lab>-mgmt, -priv), which a node's
# domain netlab-<lab>-<node> would repeat
RESERVED_HOSTNAMES: Final = frozenset(
    (
        *("localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4"),
        *("localhost6", "localhost6.localdomain6", "ip6-localhost", "ip6-loopback"),
        *("ip6-localnet", "ip6-mcastprefix", "ip6-allnodes", "ip6-allrouters", "ip6-allhosts"),
        "broadcasthost",
    )
)
LIBVIRT_SUFFIXES: Final = {"mgmt": "management network", "priv": "private network"}


def validate_node_names(lab: Lab) -> Iterator[Problem]:
    for i, node in enumerate(lab.nodes):
        yield from strict.guarded(_check_reserved_name(lab, i, node), partial=False)


def _check_reserved_name(lab: Lab, i: int, node: Node) -> Iterator[Problem]:
    name = node.name.lower()
    if name in RESERVED_HOSTNAMES:
        yield Problem(
            f"nodes[{i}].name",
            node.name,
            "is a name every host's /etc/hosts (or its resolver) already gives to itself or to "
            "a multicast group: the nodes' hosts files would send it to two places",
            f"name the node otherwise, e.g. node{i + 1}",
        )
    elif name in LIBVIRT_SUFFIXES:
        yield Problem(
            f"nodes[{i}].name",
            node.name,
            f"would name the node's VM {lab.prefix}{name}, the name of the lab's "
            f"{LIBVIRT_SUFFIXES[name]} in libvirt",
            f"name the node otherwise, e.g. node{i + 1}",
        )


def validate_box(lab: Lab) -> Iterator[Problem]:
    """vm.box is a box's name (owner/name): a URL or a path goes in vm.box_url."""
    box = lab.vm.box
    if "://" in box or _climbs_out(box) or box.startswith(("/", "~")):
        yield Problem(
            "vm.box",
            box,
            "is a box's name (like netlab/debian12 or centos/7), not a URL or a path",
            "put a URL in vm.box_url and give the box a name here",
        )


def validate_image_pins(lab: Lab) -> Iterator[Problem]:
    """An image pinned by digest cannot be the name a mirror's copy is re-tagged as (`docker
    tag` refuses a digest): the digest belongs on the mirror."""
    pairs: list[tuple[str, str, str]] = []
    fl = lab.pod_network.flannel
    if fl is not None:
        pairs.append(("pod_network.flannel.image", fl.image, fl.mirror_image))
    if lab.kubernetes is not None:
        for item in dataclasses.fields(E2eImages):
            image = getattr(lab.kubernetes.e2e_images, item.name)
            pairs.append((f"kubernetes.e2e_images.{item.name}.image", image.image, image.mirror))
    for where, image, mirror in pairs:
        if mirror and matches(IMAGE, image) and "@" in image:
            yield Problem(
                where,
                image,
                "is pinned by digest and has a mirror: its copy from the mirror is re-tagged as "
                "this name, and `docker tag` cannot create a name with a digest",
                "pin the digest on the mirror's reference instead, and give a tag here",
            )


@dataclass(frozen=True)
class LocalFile:
    """A file on this host a pinned checksum may name: its path and its real sha256."""

    path: str
    sha256: str


# the files a pinned sha256 may name here (the cached download of that name, the vendored
# inputs in labs/vendor/), read from disk by lab.adapters.fetch.local_files: nothing downloaded
LocalFiles = Callable[[str], tuple[LocalFile, ...]]


def validate_pins(lab: Lab, local_files: LocalFiles | None) -> Iterator[Problem]:
    """The flannel manifest's pinned sha256 against the files here: one that matches neither
    the vendored manifest of the same name and version nor a cached download names the file it
    was compared with and that file's sha256 (a one-digit slip in the pin shows at `validate`,
    not as a failed download in `plan`). A manifest with nothing here to compare with is left
    to `plan`, which downloads and checks it."""
    fl = lab.pod_network.flannel
    if fl is None or local_files is None or not matches(SHA256, fl.manifest_sha256):
        return
    files = local_files(fl.manifest_sha256)
    if any(f.sha256 == fl.manifest_sha256 for f in files):
        return
    stem = PurePosixPath(urllib.parse.urlsplit(fl.manifest_url).path).stem
    same = [
        f
        for f in files
        if PurePosixPath(f.path).name.startswith(stem) and fl.version in PurePosixPath(f.path).name
    ]
    if not stem or not same:
        return
    vendored = same[0]
    yield Problem(
        "pod_network.flannel.manifest_sha256",
        fl.manifest_sha256,
        f"matches neither {vendored.path} (the vendored {fl.version} manifest, whose sha256 is "
        f"{vendored.sha256}) nor a cached download: the pin and the vendored manifest disagree, "
        "and plan would find out only after a download",
        f"if {PurePosixPath(vendored.path).name} is the manifest meant, pin its sha256: "
        f"{vendored.sha256}",
    )


def validate_limits(lab: Lab) -> Iterator[Iterator[Problem]]:
    """The checks above, one per concern (each runs on its own)."""
    yield validate_nics(lab)
    yield validate_box(lab)
    yield validate_image_pins(lab)


def validate_lab(
    lab: Lab,
    host_networks: Iterable[IPv4Network] = (),
    partial: bool = False,
    local_files: LocalFiles | None = None,
) -> list[Problem]:
    """Every semantic problem of a lab, in file order of the checks. `partial`: the lab has
    fields the structural parse could not decode (strict.BROKEN); a check that would read one
    is skipped, every other one runs. Never raises."""
    hosts = tuple(host_networks)
    checks: list[Iterator[Problem]] = [
        *validate_os_and_vm(lab),
        validate_nodes(lab),
        validate_networks(lab, hosts),
        validate_underlay(lab),
        validate_pod_network(lab),
        validate_kubernetes(lab),
        validate_services(lab),
        *validate_limits(lab),
        validate_pins(lab, local_files),
    ]
    return [p for check in checks for p in strict.guarded(check, partial)]
