"""Workload drivers: make pods on the lab's nodes, run commands in them, observe probes from
pods and nodes. Which drivers a lab supports follows from its definition alone (so every xdist
worker collects the same tests): CNI-direct on every lab, Kubernetes on a lab with Kubernetes,
CRI (containerd's pods, made as kubelet makes them) on a lab with `runtime: containerd`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from e2e.drivers.base import CommandLog, Driver, NodeChannel, NodeRunner
from lab.config import Lab


def drivers_for(lab: Lab) -> tuple[str, ...]:
    names = ["cni"]
    if lab.kubernetes is not None:
        names.append("k8s")
    if lab.runtime == "containerd":
        names.append("cri")
    return tuple(names)


def why_no_driver(name: str, lab: Lab) -> str | None:
    """None when `lab` supports the driver `name`; else what it would need, as a skip reason
    (a test that pins its driver runs on every lab and is skipped where the driver is not)."""
    if name in drivers_for(lab):
        return None
    needs = {
        "k8s": "a lab with a Kubernetes control plane (`kubernetes:`, e.g. guide-centos7 on a "
        "KVM host)",
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
) -> Driver[Any]:
    if name == "cni":
        from e2e.drivers.cni import CniDriver

        return CniDriver(lab, channels, log)
    if name == "k8s":
        from e2e.drivers.k8s import K8sDriver

        return K8sDriver(lab, channels, run_id, log=log).in_namespace(f"nl-{run_id}-fleet")
    if name == "cri" and lab.runtime == "containerd":
        from e2e.drivers.cri import CriDriver

        return CriDriver(lab, channels, run_id, log)
    raise ValueError(f"no driver {name!r}; lab {lab.name} supports {', '.join(drivers_for(lab))}")
