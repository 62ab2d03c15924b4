"""What a host must offer a lab before anything is created (pure): address ranges no libvirt
network of another name holds (vagrant-libvirt refuses them), KVM where the lab needs it,
free memory, and every URL and registry the lab names reachable. The probes that fill these
checks live in adapters and are passed in, so each check is unit-tested with fakes."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from typing import Literal, Protocol
from urllib.parse import urlsplit

from lab.hosts.hypervisor import HostFacts, kvm_usable
from lab.hosts.vagrantfile import management_network_name, private_networks
from lab.model.config import Lab, Problem, Repo


@dataclass(frozen=True)
class LibvirtNetwork:
    name: str
    subnets: tuple[IPv4Network, ...]  # its IPv4 ranges


def parse_libvirt_network_xml(text: str) -> LibvirtNetwork:
    """`virsh net-dumpxml` / virNetwork.XMLDesc -> name and IPv4 ranges."""
    root = ET.fromstring(text)
    name = (root.findtext("name") or "").strip()
    subnets = []
    for ip in root.findall("ip"):
        if ip.get("family", "ipv4") != "ipv4" or not ip.get("address"):
            continue
        mask = ip.get("prefix") or ip.get("netmask") or "24"
        subnets.append(IPv4Network(f"{ip.get('address')}/{mask}", strict=False))
    return LibvirtNetwork(name, tuple(subnets))


def lab_libvirt_networks(lab: Lab) -> tuple[tuple[str, str, IPv4Network], ...]:
    """(field, libvirt network name, range) of every network vagrant-libvirt creates for it."""
    private = private_networks(lab)
    fields = (
        [f"network.segments[{i}].cidr" for i in range(len(private))]
        if lab.network.routed
        else ["network.private"]
    )
    return (
        ("network.management", management_network_name(lab), lab.network.management),
        *((field, name, net) for field, (name, net) in zip(fields, private, strict=True)),
    )


def libvirt_subnet_problems(lab: Lab, existing: Iterable[LibvirtNetwork]) -> list[Problem]:
    """Ranges of the lab that a libvirt network of another name already holds.

    vagrant-libvirt refuses a network whose address exists under another name
    (NetworkNameAndAddressMismatch), e.g. its own default `vagrant-libvirt` network on
    192.168.121.0/24 or another lab's; an overlapping range fails when libvirt starts it. The
    host-interface check cannot see these (it skips libvirt's virbr* bridges)."""
    problems = []
    for field, name, subnet in lab_libvirt_networks(lab):
        for net in existing:
            if net.name == name:
                # the lab's own network, from an earlier up: fine while its range is the one
                # the lab file names now (a lab file whose ranges moved meets its old network)
                if net.subnets and subnet not in net.subnets:
                    problems.append(
                        Problem(
                            field,
                            str(subnet),
                            f"this lab's libvirt network {name!r} still holds "
                            f"{', '.join(map(str, net.subnets))} from an earlier up: "
                            "vagrant-libvirt refuses a known network name with another address",
                            f"destroy the lab first (python -m lab destroy {lab.name}), or "
                            f"remove the network (virsh net-destroy {name}; virsh net-undefine "
                            f"{name})",
                        )
                    )
                continue
            for held in net.subnets:
                if held.overlaps(subnet):
                    problems.append(
                        Problem(
                            field,
                            str(subnet),
                            f"libvirt network {net.name!r} already holds {held}: vagrant-libvirt "
                            "refuses a network whose address exists under another name "
                            "(NetworkNameAndAddressMismatch)",
                            f"pick a free range for {field}, or remove {net.name!r} if nothing "
                            f"uses it (virsh net-destroy {net.name}; virsh net-undefine "
                            f"{net.name})",
                        )
                    )
    return problems


# --- preflight: one check per thing the host must offer ---------------------------------------

Status = Literal["ok", "missing", "warn", "info", "skipped"]
FAILING: frozenset[str] = frozenset({"missing"})


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def needs_kvm(lab: Lab) -> bool:
    """A Kubernetes lab under QEMU TCG is impractically slow (kubeadm's control plane times
    out); the CI lab is built for TCG. `vm.hypervisor: kvm` asks for KVM explicitly."""
    return lab.vm.hypervisor == "kvm" or (
        lab.vm.hypervisor == "auto" and lab.kubernetes is not None
    )


def check_kvm(lab: Lab, facts: HostFacts) -> Check:
    if kvm_usable(facts):
        return Check("KVM", "ok", "usable (/dev/kvm, kvm_intel/kvm_amd, vmx/svm)")
    why = "; ".join(
        text
        for bad, text in (
            (not facts.dev_kvm_accessible, "/dev/kvm is not accessible"),
            (not facts.kvm_vendor_module, "no kvm_intel/kvm_amd module"),
            (not facts.virt_cpu_flag, "no vmx/svm CPU flag"),
        )
        if bad
    )
    if lab.vm.hypervisor == "qemu":
        return Check("KVM", "info", f"not usable ({why}); the lab asks for QEMU TCG")
    if needs_kvm(lab):
        return Check(
            "KVM",
            "missing",
            f"not usable here ({why}); lab {lab.name} runs Kubernetes and needs hardware "
            "virtualisation (under QEMU TCG kubeadm's control plane does not come up in time)",
            "run it on a Linux host with VT-x/AMD-V enabled in the firmware, kvm_intel or "
            "kvm_amd loaded and /dev/kvm readable and writable by you (group kvm)",
        )
    return Check("KVM", "warn", f"not usable ({why}): QEMU TCG, 5-10x slower; fine for {lab.name}")


MEMORY_HEADROOM_MIB = 1024  # the host, libvirt and QEMU's own overhead per lab


def parse_meminfo_available_mib(text: str) -> int:
    m = re.search(r"^MemAvailable:\s+(\d+) kB", text, flags=re.M)
    if m is None:
        raise ValueError("no MemAvailable line in /proc/meminfo")
    return int(m[1]) // 1024


def check_memory(lab: Lab, available_mib: int) -> Check:
    needed = sum(lab.memory_mib(n) for n in lab.nodes) + MEMORY_HEADROOM_MIB
    detail = (
        f"{needed} MiB needed ({len(lab.nodes)} nodes + {MEMORY_HEADROOM_MIB} MiB headroom), "
        f"{available_mib} MiB available"
    )
    if available_mib < needed:
        return Check("memory", "missing", detail, "free memory, or lower vm.memory_mib")
    return Check("memory", "ok", detail)


def check_cpus(lab: Lab, host_cpus: int) -> Check:
    widest = max(lab.cpus(n) for n in lab.nodes)
    total = sum(lab.cpus(n) for n in lab.nodes)
    detail = f"{host_cpus} host CPUs; nodes have {total} vCPUs, the largest {widest}"
    if host_cpus < widest:
        return Check("CPUs", "missing", detail, "a node cannot have more vCPUs than the host")
    if host_cpus < total:
        return Check("CPUs", "warn", detail + " (overcommitted: slower, still works)")
    return Check("CPUs", "ok", detail)


HOST_TOOLS = ("vagrant", "virsh", "libvirtd", "qemu-system-x86_64")


def check_host_tools(found: dict[str, bool]) -> Check:
    missing = [t for t in HOST_TOOLS if not found.get(t)]
    if missing:
        return Check("host tools", "info", f"not installed yet: {', '.join(missing)}", "make setup")
    return Check("host tools", "ok", ", ".join(HOST_TOOLS))


def check_host_networks(lab: Lab, host_networks: Iterable[IPv4Network]) -> Check:
    held = tuple(host_networks)
    clashes = [
        f"{field} {net} overlaps {h}"
        for field, net in (
            ("network.management", lab.network.management),
            ("network.private", lab.network.private),
            ("pod_network.cidr", lab.pod_network.cidr),
            *(
                (("kubernetes.service_cidr", lab.kubernetes.service_cidr),)
                if lab.kubernetes
                else ()
            ),
        )
        for h in held
        if net.overlaps(h)
    ]
    if clashes:
        return Check(
            "host subnets", "missing", "; ".join(clashes), "pick ranges no host interface uses"
        )
    return Check("host subnets", "ok", f"no overlap with {len(held)} host interface range(s)")


def check_libvirt_networks(lab: Lab, xmls: Sequence[str] | None) -> Check:
    if xmls is None:
        return Check(
            "libvirt subnets",
            "skipped",
            "libvirtd is not running (preflight starts nothing); `up` checks this before any VM",
        )
    problems = libvirt_subnet_problems(lab, [parse_libvirt_network_xml(x) for x in xmls])
    if problems:
        return Check(
            "libvirt subnets",
            "missing",
            "; ".join(f"{p.field} {p.value}: {p.message}" for p in problems),
            problems[0].fix,
        )
    return Check("libvirt subnets", "ok", f"no overlap with {len(xmls)} libvirt network(s)")


# --- every URL and registry the lab names ------------------------------------------------------

DOCKER_HUB = "registry-1.docker.io"
Kind = Literal["url", "yum-repo", "registry"]


@dataclass(frozen=True)
class Endpoint:
    field: str  # where the lab names it
    url: str  # what is fetched (a yum repo's repomd.xml, a registry's /v2/)
    kind: Kind
    optional: bool = False  # a pinned copy exists locally: unreachable is only a warning


DOCKER_HUB_NAMES = ("docker.io", "index.docker.io", DOCKER_HUB)


def registry_of(image: str) -> str:
    """The registry host an image reference is pulled from (Docker Hub when none is named, or
    when it is named docker.io)."""
    first, sep, _rest = image.partition("/")
    if (
        sep
        and first not in DOCKER_HUB_NAMES
        and ("." in first or ":" in first or first == "localhost")
    ):
        return first
    return DOCKER_HUB


def _repo_endpoints(field: str, repo: Repo) -> Iterator[Endpoint]:
    for i, base in enumerate((repo.baseurl, *repo.alternatives)):
        where = f"{field}.baseurl" if i == 0 else f"{field}.alternatives[{i - 1}]"
        yield Endpoint(where, base.rstrip("/") + "/repodata/repomd.xml", "yum-repo")
    for i, key in enumerate(repo.gpgkeys):
        if key.startswith(("http://", "https://")):
            yield Endpoint(f"{field}.gpgkeys[{i}]", key, "url")


def pulled_images(lab: Lab) -> Iterator[tuple[str, str]]:
    """(field, reference) of every image a node pulls (a mirror replaces its image)."""
    fl = lab.pod_network.flannel
    if fl is not None:
        if fl.mirror_image:
            yield "pod_network.flannel.mirror_image", fl.mirror_image
        else:
            yield "pod_network.flannel.image", fl.image
    if lab.kubernetes is not None:
        images = lab.kubernetes.e2e_images
        for item in dataclasses.fields(images):
            image = getattr(images, item.name)
            if image.mirror:
                yield f"kubernetes.e2e_images.{item.name}.mirror", image.mirror
            else:
                yield f"kubernetes.e2e_images.{item.name}.image", image.image
        yield "kubernetes.image_repository", f"{lab.kubernetes.image_repository}/pause:3.2"


def lab_endpoints(lab: Lab, manifest_cached: bool = False) -> list[Endpoint]:
    """Every URL and registry the lab file names, as what a node or the host fetches."""
    found: list[Endpoint] = []
    if lab.vm.box_url:
        found.append(Endpoint("vm.box_url", lab.vm.box_url, "url"))
    elif not lab.vm.box_build:
        found.append(Endpoint("vm.box", f"https://vagrantcloud.com/{lab.vm.box}", "url"))
    if lab.os.vault_url:
        base = lab.os.vault_url.rstrip("/")
        found.append(Endpoint("os.vault_url", f"{base}/os/x86_64/repodata/repomd.xml", "yum-repo"))
    if lab.os.gpgkey_url.startswith(("http://", "https://")):
        found.append(Endpoint("os.gpgkey_url", lab.os.gpgkey_url, "url"))
    fl = lab.pod_network.flannel
    if fl is not None:
        found.append(
            Endpoint("pod_network.flannel.manifest_url", fl.manifest_url, "url", manifest_cached)
        )
    k8s = lab.kubernetes
    if k8s is not None:
        found += _repo_endpoints("kubernetes.repo", k8s.repo)
        found += _repo_endpoints("kubernetes.docker.repo", k8s.docker.repo)
        for i, mirror in enumerate(k8s.docker.registry_mirrors):
            found.append(
                Endpoint(
                    f"kubernetes.docker.registry_mirrors[{i}]",
                    mirror.rstrip("/") + "/v2/",
                    "registry",
                )
            )
    registries: dict[str, list[str]] = {}
    for field, image in pulled_images(lab):
        registries.setdefault(registry_of(image), []).append(field)
    for host, fields in registries.items():
        found.append(Endpoint(", ".join(fields), f"https://{host}/v2/", "registry"))
    return found


class NetProbe(Protocol):
    """DNS, TCP and HTTP(S), each bounded by `timeout` (real ones in lab.adapters.netprobe)."""

    def resolve(self, host: str, timeout: float) -> list[str]: ...

    def connect(self, address: str, port: int, timeout: float) -> None: ...

    def fetch(self, url: str, timeout: float) -> int: ...


def check_endpoint(endpoint: Endpoint, net: NetProbe, timeout: float, proxy: str = "") -> Check:
    """DNS, then TCP, then HTTP(S), each with `timeout`; the first that fails names the cause.
    Behind a proxy (HTTPS_PROXY) only the request is made, through the proxy."""
    url = urlsplit(endpoint.url)
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    name = f"{endpoint.field}"
    bad: Status = "warn" if endpoint.optional else "missing"
    fix = "a pinned copy is cached; fine" if endpoint.optional else _endpoint_fix(endpoint)
    if not proxy:
        try:
            addresses = net.resolve(host, timeout)
        except OSError as exc:
            return Check(name, bad, f"{host}: DNS failed ({exc})", fix)
        if not addresses:
            return Check(name, bad, f"{host}: DNS returned no address", fix)
        try:
            net.connect(addresses[0], port, timeout)
        except OSError as exc:
            return Check(name, bad, f"{host}:{port} ({addresses[0]}): TCP failed ({exc})", fix)
    try:
        status = net.fetch(endpoint.url, timeout)
    except OSError as exc:
        return Check(name, bad, f"{endpoint.url}: request failed ({exc})", fix)
    via = f" via proxy {proxy}" if proxy else ""
    if endpoint.kind == "registry" and status in (200, 401):
        return Check(name, "ok", f"{endpoint.url}: registry answers (HTTP {status}){via}")
    if 200 <= status < 300:
        return Check(name, "ok", f"{endpoint.url}: HTTP {status}{via}")
    if status == 404:
        return Check(name, bad, f"{endpoint.url}: HTTP 404 (moved or removed?){via}", fix)
    return Check(name, "warn", f"{endpoint.url}: HTTP {status}{via}", fix)


def _endpoint_fix(endpoint: Endpoint) -> str:
    if endpoint.kind == "registry":
        return (
            "set a mirror you can reach (kubernetes.docker.registry_mirrors or the image's mirror)"
        )
    return f"point {endpoint.field.split(',')[0]} at a mirror you can reach"


def exit_code(checks: Sequence[Check]) -> int:
    return 1 if any(c.status in FAILING for c in checks) else 0
