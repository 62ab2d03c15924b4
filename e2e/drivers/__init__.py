"""Workload drivers: make pods on the lab's nodes, run commands in them, observe probes from
pods and nodes. Which drivers a lab supports follows from its definition alone (so every xdist
worker collects the same tests): CNI-direct on every lab, Kubernetes on a lab with Kubernetes,
CRI (containerd's pods, made as kubelet makes them) on a lab with `runtime: containerd`.

The network-model tests run, by default, on the lab's own pods only: the most faithful driver
it has (Kubernetes' pods, else the runtime's, else the suite's CNI-direct sandboxes, which
stand in for a runtime where there is none). `--drivers all` runs them on every driver (the
nightly does); the CNI contract tests and the pod creation flow pin their driver either way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from e2e.drivers.base import CommandLog, Driver, NodeRunner, service_namespace
from lab.adapters.protocols import NodeChannel
from lab.model.config import Lab


def drivers_for(lab: Lab) -> tuple[str, ...]:
    names = ["cni"]
    if lab.kubernetes is not None:
        names.append("k8s")
    if lab.runtime == "containerd":
        names.append("cri")
    return tuple(names)


# How each driver's pods get the run's Services: "rules", the suite programs kube-proxy-shaped
# rules and runs a DNS pod (a lab with a `services` section, e2e/services.py); "cluster", the
# lab's Kubernetes makes Service objects over them, its kube-proxy and CoreDNS carry them
# (e2e/cluster_services.py). The CNI-direct sandboxes on a Kubernetes lab are in no cluster
# object, so no Service there selects them.
SERVICE_PLANES = {"cni": "rules", "cri": "rules", "k8s": "cluster"}


def service_plane(name: str, lab: Lab) -> str | None:
    """How the driver `name` gets Services on `lab` (see SERVICE_PLANES), None for not at all."""
    plane = SERVICE_PLANES.get(name)
    if plane == "rules" and lab.services is not None and name in drivers_for(lab):
        return plane
    if plane == "cluster" and lab.kubernetes is not None and name in drivers_for(lab):
        return plane
    return None


def service_drivers(lab: Lab) -> tuple[str, ...]:
    """The drivers of `lab` whose pods get the run's Services (the layout allots theirs)."""
    return tuple(n for n in drivers_for(lab) if service_plane(n, lab) is not None)


def why_no_services(name: str, lab: Lab) -> str | None:
    """None when the driver's pods get Services on `lab`; else why not, as a skip reason."""
    if service_plane(name, lab) is not None:
        return None
    if lab.kubernetes is not None:
        return (
            f"on a lab with Kubernetes the run's Services are the cluster's, over its own pods "
            f"([k8s]); the {name} driver's pods are in no cluster object"
        )
    return (
        "needs a lab with a `services` section (the CI labs ci-debian12 and ci-debian12-vxlan) "
        "or with Kubernetes (guide-centos7, on a KVM host with internet)"
    )


FAITHFUL_FIRST = ("k8s", "cri", "cni")  # pods as a cluster makes them, first


def model_drivers(lab: Lab, choice: str) -> tuple[str, ...]:
    """The drivers the network-model tests run on, for `--drivers CHOICE`: `lab` (the most
    faithful one the lab has), `all`, or a comma-separated list of names the lab supports.
    ValueError names the choice, what is wrong with it and what the lab supports."""
    supported = drivers_for(lab)
    if choice == "lab":
        return (next(name for name in FAITHFUL_FIRST if name in supported),)
    if choice == "all":
        return supported
    names = tuple(dict.fromkeys(n.strip() for n in choice.split(",") if n.strip()))
    problems = [why_no_driver(n, lab) for n in names]
    if not names or any(problems):
        why = "; ".join(p for p in problems if p) or "no driver named"
        raise ValueError(
            f"--drivers {choice!r}: {why}. Use lab, all, or names among "
            f"{','.join(supported)} (what lab {lab.name} supports)"
        )
    return names


def why_no_driver(name: str, lab: Lab) -> str | None:
    """None when `lab` supports the driver `name`; else what it would need, as a skip reason
    (a test that pins its driver runs on every lab and is skipped where the driver is not)."""
    if name in drivers_for(lab):
        return None
    needs = {
        "k8s": "a lab with a Kubernetes control plane (`kubernetes:`, e.g. guide-centos7 on a "
        "KVM host with internet)",
        "cri": f"a lab with `runtime: containerd` (e.g. ci-debian12); lab {lab.name} has "
        f"runtime: {lab.runtime}",
    }.get(name, f"a driver named {name!r}, and there is none")
    return f"the {name} driver needs {needs}"


def make_driver(
    name: str,
    lab: Lab,
    channels: Mapping[str, NodeChannel] | NodeRunner,
    run_id: str,
    log: CommandLog,
    forwards: str = "",
) -> Driver[Any]:
    """`forwards`: the directory of the controller's containerd socket forwards, in a
    parallel run's worker ("" elsewhere)."""
    if name == "cni":
        from e2e.drivers.cni import CniDriver

        return CniDriver(lab, channels, log)
    if name == "k8s":
        from e2e.drivers.k8s import K8sDriver

        # the fleet's namespace is the run's Services' (a selector picks pods of its own only)
        return K8sDriver(lab, channels, run_id, log=log).in_namespace(service_namespace(name))
    if name == "cri" and lab.runtime == "containerd":
        from e2e.drivers.cri import CriDriver

        return CriDriver(lab, channels, run_id, log, forwards=forwards)
    raise ValueError(f"no driver {name!r}; lab {lab.name} supports {', '.join(drivers_for(lab))}")
