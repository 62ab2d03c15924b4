"""Renderers of the e2e suite's Kubernetes objects (pure): plain dicts for `kubectl apply -f -`,
every name and label checked before anything is sent."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any, Literal

from lab.k8s.model import E2E_LABEL, RUN_LABEL, RestartPolicy, ServiceType
from lab.model.config import DNS1123_LABEL

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _check_label_name(what: str, name: str) -> None:
    if not DNS1123_LABEL.match(name) or len(name) > 63:
        raise ValueError(
            f"{what} {name!r} must be a DNS-1123 label (lowercase letters, digits, '-'; at most "
            "63 characters)"
        )


def _check_label_value(key: str, value: str) -> None:
    if not LABEL_VALUE.match(value) or len(value) > 63:
        raise ValueError(
            f"label {key}={value!r}: a label value has at most 63 characters of letters, "
            "digits, '-', '_' and '.', starting and ending with a letter or digit"
        )


def run_labels(run_id: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The labels every e2e object carries: this run's id and the e2e marker (for sweeps)."""
    labels = {RUN_LABEL: run_id, E2E_LABEL: "true", **(extra or {})}
    for key, value in labels.items():
        _check_label_value(key, value)
    return labels


def namespace_for(run_id: str, test: str) -> str:
    """A unique, valid namespace name for one test of one run: `nl-<run>-<test>-<hash>`."""
    slug = re.sub(r"[^a-z0-9]+", "-", test.lower()).strip("-")
    digest = hashlib.sha256(f"{run_id}/{test}".encode()).hexdigest()[:6]
    run = re.sub(r"[^a-z0-9]+", "-", run_id.lower()).strip("-")
    head = f"nl-{run}-{slug}"[: 63 - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}"


@dataclass(frozen=True)
class ContainerSpec:
    """A container to render: `command` replaces the image's entrypoint (empty = the image's)."""

    name: str
    image: str
    command: tuple[str, ...] = ()


def render_namespace(name: str, run_id: str) -> dict[str, Any]:
    _check_label_name("namespace name", name)
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": run_labels(run_id)},
    }


def render_pod(
    name: str,
    namespace: str,
    node: str,
    containers: Sequence[ContainerSpec],
    run_id: str,
    labels: Mapping[str, str] | None = None,
    restart_policy: RestartPolicy = "Never",
) -> dict[str, Any]:
    """A pod pinned to `node` (nodeName: the scheduler is bypassed, as a test needs to choose
    where each pod runs). restartPolicy Never by default, so a crashed test container shows
    as terminated instead of being hidden by restarts; grace period 0 for quick teardown."""
    if not DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
        raise ValueError(f"pod name {name!r} must be a DNS-1123 subdomain (lowercase, digits, -.)")
    _check_label_name("namespace name", namespace)
    if not containers:
        raise ValueError(f"pod {name}: needs at least one container")
    names = [c.name for c in containers]
    for c in containers:
        _check_label_name(f"pod {name}: container name", c.name)
        if not c.image:
            raise ValueError(f"pod {name}: container {c.name} has no image")
    if len(set(names)) != len(names):
        raise ValueError(f"pod {name}: container names repeat: {names}")
    rendered = []
    for c in containers:
        spec: dict[str, Any] = {"name": c.name, "image": c.image, "imagePullPolicy": "IfNotPresent"}
        if c.command:
            spec["command"] = list(c.command)
        rendered.append(spec)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": run_labels(run_id, labels)},
        "spec": {
            "nodeName": node,
            "restartPolicy": restart_policy,
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            # the control-plane node carries node-role.kubernetes.io/master:NoSchedule
            "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
            "containers": rendered,
        },
    }


def _check_service(name: str, namespace: str, selector: Mapping[str, str], shown: str) -> None:
    _check_label_name("service name", name)
    _check_label_name("namespace name", namespace)
    if not selector:
        raise ValueError(f"service {shown}: needs a selector")
    for key, value in selector.items():
        _check_label_value(key, value)


def render_service(
    name: str,
    namespace: str,
    run_id: str,
    selector: Mapping[str, str],
    port: int,
    target_port: int,
    service_type: ServiceType = "ClusterIP",
    node_port: int | None = None,
    protocol: Literal["TCP", "UDP"] = "TCP",
) -> dict[str, Any]:
    """A ClusterIP or NodePort service selecting pods by label (nodePort None: allocated)."""
    _check_service(name, namespace, selector, name)
    if node_port is not None and service_type != "NodePort":
        raise ValueError(f"service {name}: nodePort needs type NodePort")
    port_spec: dict[str, Any] = {
        "name": protocol.lower(),
        "protocol": protocol,
        "port": port,
        "targetPort": target_port,
    }
    if node_port is not None:
        port_spec["nodePort"] = node_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": run_labels(run_id)},
        "spec": {"type": service_type, "selector": dict(selector), "ports": [port_spec]},
    }


@dataclass(frozen=True)
class PortSpec:
    """One port of a Service the suite places itself: `node_port` 0 for none."""

    name: str
    protocol: Literal["TCP", "UDP"]
    port: int
    target_port: int
    node_port: int = 0


def render_placed_service(
    name: str,
    namespace: str,
    run_id: str,
    selector: Mapping[str, str],
    cluster_ip: IPv4Address,
    ports: Sequence[PortSpec],
) -> dict[str, Any]:
    """A Service at the ClusterIP and NodePorts the suite chose (spec.clusterIP, nodePort):
    the API server takes them as given or refuses the object (an address already allocated,
    a port outside its range); nothing is left to its random allocation, so every worker and
    every run knows them from the lab file. Type NodePort when its ports have NodePorts (all
    of them: one without would get a random one), else ClusterIP."""
    _check_service(name, namespace, selector, f"{namespace}/{name}")
    if not ports:
        raise ValueError(f"service {namespace}/{name}: needs at least one port")
    keys = [(p.port, p.protocol) for p in ports]
    names = [p.name for p in ports]
    if len(set(keys)) != len(keys) or len(set(names)) != len(names):
        raise ValueError(f"service {namespace}/{name}: ports repeat a name or a port/protocol")
    with_node_port = [p.name for p in ports if p.node_port]
    if with_node_port and len(with_node_port) != len(ports):
        raise ValueError(
            f"service {namespace}/{name}: ports {with_node_port} have a nodePort and the "
            "others none; give every port one (or none), or the API server picks at random"
        )
    rendered = []
    for p in ports:
        _check_label_name(f"service {namespace}/{name}: port name", p.name)
        spec: dict[str, Any] = {
            "name": p.name,
            "protocol": p.protocol,
            "port": p.port,
            "targetPort": p.target_port,
        }
        if p.node_port:
            spec["nodePort"] = p.node_port
        rendered.append(spec)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": run_labels(run_id)},
        "spec": {
            "type": "NodePort" if with_node_port else "ClusterIP",
            "clusterIP": str(cluster_ip),
            "selector": dict(selector),
            "ports": rendered,
        },
    }


def render_manifest(objects: Iterable[Mapping[str, Any]]) -> str:
    """Objects as one `kind: List` JSON document for `kubectl apply -f -`."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}, indent=1)
