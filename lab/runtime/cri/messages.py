"""CRI requests as kubelet builds them, and the runtime's answers read back (pure).

A pod is a sandbox (RunPodSandbox: the runtime creates the network namespace, starts the
pause container in it and calls CNI ADD) plus containers created in it (CreateContainer +
StartContainer) that join its network namespace. Every object the lab creates carries the
labels `netlab.io/managed=true` and `netlab.io/run=<run id>`, so a run lists and sweeps exactly
its own pods (ListPodSandbox / ListContainers with a label selector).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

from lab.runtime.cri import runtime_v1_pb2 as pb

API_VERSION = "v1"  # what VersionRequest.version announces (kubelet sends "v1" too)
MANAGED_LABEL = "netlab.io/managed"
RUN_LABEL = "netlab.io/run"
POD_LABEL = "netlab.io/pod"
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


@dataclass(frozen=True)
class DnsConfig:
    """The pod's resolv.conf as kubelet hands it to the runtime (CRI DNSConfig): with
    ClusterFirst, the cluster DNS's address, the search path of the pod's namespace and
    `ndots:5`."""

    servers: tuple[str, ...]
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def resolv_conf(self) -> list[str]:
        """The lines containerd writes for it (/etc/resolv.conf of the pod)."""
        lines = [f"nameserver {s}" for s in self.servers]
        lines += [f"search {' '.join(self.searches)}"] if self.searches else []
        lines += [f"options {' '.join(self.options)}"] if self.options else []
        return lines


@dataclass(frozen=True)
class PodSpec:
    """A pod as the lab asks for it. `log_directory` defaults to kubelet's layout,
    /var/log/pods/<namespace>_<name>_<uid>."""

    name: str
    namespace: str
    uid: str
    run_id: str
    attempt: int = 0
    labels: tuple[tuple[str, str], ...] = ()
    log_directory: str = ""
    hostname: str = ""
    dns: DnsConfig | None = None

    @property
    def log_dir(self) -> str:
        return self.log_directory or f"/var/log/pods/{self.namespace}_{self.name}_{self.uid}"


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    add_capabilities: tuple[str, ...] = ()
    attempt: int = 0


def _label_problems(where: str, labels: Sequence[tuple[str, str]]) -> list[str]:
    problems = []
    for key, value in labels:
        if not LABEL_KEY.match(key) or len(key.rsplit("/", 1)[-1]) > 63:
            problems.append(f"{where}: label key {key!r} is not a valid label key")
        if not LABEL_VALUE.match(value) or len(value) > 63:
            problems.append(
                f"{where}: label {key}={value!r}: values are at most 63 letters, digits, "
                "'-', '_' or '.', starting and ending alphanumeric"
            )
    return problems


def validate_pod(pod: PodSpec) -> list[str]:
    """Problems with a pod (never raises), each naming the field, the value and the fix."""
    problems = []
    for field_name in ("name", "namespace"):
        value = getattr(pod, field_name)
        if not DNS1123_LABEL.match(value) or len(value) > 63:
            problems.append(
                f"pod {field_name} {value!r}: must be a DNS-1123 label (lowercase letters, "
                "digits, '-'; at most 63)"
            )
    if not pod.uid:
        problems.append(f"pod {pod.name}: uid is empty; give a unique id (e.g. a uuid4)")
    if pod.attempt < 0:
        problems.append(f"pod {pod.name}: attempt {pod.attempt} must be >= 0")
    if not pod.log_dir.startswith("/"):
        problems.append(f"pod {pod.name}: log directory {pod.log_dir!r} must be absolute")
    problems += _label_problems(f"pod {pod.name}", [(RUN_LABEL, pod.run_id), *pod.labels])
    if pod.dns is not None:  # kubelet's limits (glibc reads 3 nameservers and 6 domains)
        if not 0 < len(pod.dns.servers) <= 3:
            problems.append(
                f"pod {pod.name}: {len(pod.dns.servers)} DNS servers; give 1 to 3 "
                "(a resolver reads no more)"
            )
        if len(pod.dns.searches) > 6:
            problems.append(
                f"pod {pod.name}: {len(pod.dns.searches)} DNS search domains; give at most 6"
            )
    return problems


def validate_container(spec: ContainerSpec) -> list[str]:
    problems = []
    if not DNS1123_LABEL.match(spec.name) or len(spec.name) > 63:
        problems.append(f"container name {spec.name!r}: must be a DNS-1123 label")
    if not spec.image:
        problems.append(f"container {spec.name}: image is empty")
    problems += _label_problems(f"container {spec.name}", spec.labels)
    return problems


def _expect_valid(problems: list[str]) -> None:
    if problems:
        raise ValueError("; ".join(problems))


def run_labels(run_id: str) -> dict[str, str]:
    """The selector for everything one run created."""
    return {MANAGED_LABEL: "true", RUN_LABEL: run_id}


def pod_labels(pod: PodSpec) -> dict[str, str]:
    return {**dict(pod.labels), **run_labels(pod.run_id), POD_LABEL: pod.name}


def _namespace_options() -> pb.NamespaceOption:
    # kubelet's choice for a pod: one network and IPC namespace for the pod, a PID namespace
    # per container
    return pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)


def pod_sandbox_config(pod: PodSpec) -> pb.PodSandboxConfig:
    _expect_valid(validate_pod(pod))
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(
            name=pod.name, uid=pod.uid, namespace=pod.namespace, attempt=pod.attempt
        ),
        hostname=pod.hostname or pod.name,
        log_directory=pod.log_dir,
        labels=pod_labels(pod),
        dns_config=None
        if pod.dns is None
        else pb.DNSConfig(
            servers=list(pod.dns.servers),
            searches=list(pod.dns.searches),
            options=list(pod.dns.options),
        ),
        linux=pb.LinuxPodSandboxConfig(
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=_namespace_options())
        ),
    )


def run_pod_sandbox_request(pod: PodSpec, runtime_handler: str = "") -> pb.RunPodSandboxRequest:
    return pb.RunPodSandboxRequest(config=pod_sandbox_config(pod), runtime_handler=runtime_handler)


def container_config(pod: PodSpec, spec: ContainerSpec) -> pb.ContainerConfig:
    _expect_valid(validate_container(spec))
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=spec.name, attempt=spec.attempt),
        image=pb.ImageSpec(image=spec.image),
        command=list(spec.command),
        args=list(spec.args),
        envs=[pb.KeyValue(key=k, value=v) for k, v in spec.env],
        labels={**dict(spec.labels), **pod_labels(pod)},
        log_path=f"{spec.name}/{spec.attempt}.log",
        linux=pb.LinuxContainerConfig(
            security_context=pb.LinuxContainerSecurityContext(
                namespace_options=_namespace_options(),
                capabilities=pb.Capability(add_capabilities=list(spec.add_capabilities)),
            )
        ),
    )


def create_container_request(
    sandbox_id: str, pod: PodSpec, spec: ContainerSpec
) -> pb.CreateContainerRequest:
    return pb.CreateContainerRequest(
        pod_sandbox_id=sandbox_id,
        config=container_config(pod, spec),
        sandbox_config=pod_sandbox_config(pod),
    )


def pod_sandbox_filter(labels: Mapping[str, str]) -> pb.PodSandboxFilter:
    return pb.PodSandboxFilter(label_selector=dict(labels))


def container_filter(labels: Mapping[str, str], sandbox_id: str = "") -> pb.ContainerFilter:
    return pb.ContainerFilter(label_selector=dict(labels), pod_sandbox_id=sandbox_id)


# --- answers --------------------------------------------------------------------------------


def sandbox_ips(status: pb.PodSandboxStatus) -> tuple[IPv4Address | IPv6Address, ...]:
    """The pod's IPs as the runtime reports them (network.ip first, then additional_ips)."""
    texts = [status.network.ip, *(extra.ip for extra in status.network.additional_ips)]
    return tuple(ip_address(text) for text in texts if text)


@dataclass(frozen=True)
class VerboseInfo:
    """What containerd 1.6 puts under info["info"] of a verbose PodSandboxStatus or
    ContainerStatus: the task's host PID, the network namespace path from the OCI runtime
    spec (a sandbox: its pinned netns, e.g. /var/run/netns/cni-...; a container:
    /proc/<sandbox pid>/ns/net) and, for a sandbox, the CNI result it got."""

    pid: int
    netns_path: str
    cni_result: Mapping[str, Any] | None
    raw: Mapping[str, Any]


class InfoError(ValueError):
    pass


def parse_verbose_info(info: Mapping[str, str]) -> VerboseInfo:
    if "info" not in info:
        raise InfoError(
            f"no 'info' key in the verbose answer (keys: {sorted(info)}); was verbose=True "
            "sent, and is the runtime containerd?"
        )
    try:
        doc = json.loads(info["info"])
    except json.JSONDecodeError as exc:
        raise InfoError(f"info['info'] is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InfoError("info['info'] is not a JSON object")
    pid = doc.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        raise InfoError(f"info['info'].pid = {pid!r}: not a process id (task not running?)")
    namespaces = ((doc.get("runtimeSpec") or {}).get("linux") or {}).get("namespaces") or []
    netns = [ns.get("path", "") for ns in namespaces if ns.get("type") == "network"]
    cni = doc.get("cniResult")
    return VerboseInfo(
        pid=pid,
        netns_path=netns[0] if netns else "",
        cni_result=cni if isinstance(cni, dict) else None,
        raw=doc,
    )


def cni_result_pod_ips(cni_result: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Pod-side interfaces and their addresses from containerd's `cniResult` (its own shape,
    not the CNI spec's: {"Interfaces": {name: {"IPConfigs": [{"IP", "Gateway"}], "Mac",
    "Sandbox"}}, "Routes", "DNS"}). Interfaces in the sandbox only, loopback left out."""
    interfaces = cni_result.get("Interfaces")
    if not isinstance(interfaces, dict):
        raise InfoError(f"cniResult has no Interfaces object: {json.dumps(cni_result)[:200]}")
    found: dict[str, tuple[str, ...]] = {}
    for name, iface in sorted(interfaces.items()):
        if not isinstance(iface, dict) or not iface.get("Sandbox") or name == "lo":
            continue
        configs = iface.get("IPConfigs") or []
        found[name] = tuple(str(c.get("IP", "")) for c in configs if isinstance(c, dict))
    return found
