"""Rendering is pinned by golden files and by the guide's own flags."""

from __future__ import annotations

import dataclasses
import json
import os
from ipaddress import IPv4Network
from pathlib import Path

import pytest
import yaml

from lab.hosts.hypervisor import KVM, TCG
from lab.hosts.render import render_lab_files
from lab.hosts.vagrantfile import render_vagrant
from lab.k8s.kubeadm import render_kubeadm_init_args, render_kubelet_sysconfig
from lab.model.config import Lab
from lab.model.labfile import load_lab
from lab.podnet.bridge import render_cni_conflist
from lab.podnet.flannel import render_flannel_manifest
from lab.podnet.hostroutes import render_pod_routes
from tests.unit.golden import golden_text

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
UPSTREAM = (ROOT / "labs" / "vendor" / "kube-flannel-v0.14.0.yml").read_text()


@pytest.fixture(scope="module")
def guide() -> Lab:
    return load_lab(ROOT / "labs" / "guide-centos7.yaml")


@pytest.fixture(scope="module")
def ci() -> Lab:
    return load_lab(ROOT / "labs" / "ci-debian12.yaml")


def golden(name: str, actual: str) -> None:
    """Compare with tests/golden/NAME; NETLAB_UPDATE_GOLDEN=1 rewrites it (shows the diff)."""
    path = GOLDEN / name
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        golden_text(path, actual)
    assert path.exists(), f"missing golden {path}; run with NETLAB_UPDATE_GOLDEN=1 once"
    assert actual == path.read_text(), f"{name} differs from its golden file"


GUIDE_INIT = (
    "kubeadm",
    "init",
    "--kubernetes-version=1.18.1",
    "--apiserver-advertise-address=10.10.10.241",
    "--image-repository",
    "registry.aliyuncs.com/google_containers",
    "--service-cidr=10.1.0.0/16",
    "--pod-network-cidr=10.244.0.0/16",
    "--node-name=k8s-master",
)


def test_kubeadm_init_has_exactly_the_guides_flags(guide: Lab) -> None:
    assert render_kubeadm_init_args(guide) == GUIDE_INIT


def test_kubeadm_preflight_opt_out_is_one_more_flag_after_the_guides(guide: Lab) -> None:
    k8s = dataclasses.replace(guide.kubernetes, ignore_preflight_resources=True)  # type: ignore[type-var]
    lab = dataclasses.replace(guide, kubernetes=k8s)
    assert render_kubeadm_init_args(lab) == (*GUIDE_INIT, "--ignore-preflight-errors=NumCPU,Mem")


def test_kubelet_reports_the_private_ip(guide: Lab) -> None:
    assert render_kubelet_sysconfig(guide.node("k8s-node2")) == (
        "KUBELET_EXTRA_ARGS=--node-ip=10.10.10.243\n"
    )


def _docs(text: str) -> list[dict]:  # type: ignore[type-arg]
    return [d for d in yaml.safe_load_all(text) if d]


def _daemonset(docs: list[dict]) -> dict:  # type: ignore[type-arg]
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    return ds


def test_flannel_manifest_network_iface_and_image(guide: Lab) -> None:
    rendered = render_flannel_manifest(guide, UPSTREAM)
    docs = _docs(rendered)
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert json.loads(cm["data"]["net-conf.json"]) == {
        "Network": "10.244.0.0/16",
        "Backend": {"Type": "vxlan"},
    }
    spec = _daemonset(docs)["spec"]["template"]["spec"]
    (flanneld,) = spec["containers"]
    assert flanneld["args"] == ["--ip-masq", "--kube-subnet-mgr", "--iface=eth1"]
    images = {c["image"] for c in [*spec["initContainers"], *spec["containers"]]}
    assert images == {"quay.io/coreos/flannel:v0.14.0"}
    golden("guide-centos7.kube-flannel.yml", rendered)


def test_flannel_manifest_follows_the_lab_not_upstream(guide: Lab) -> None:
    pn = dataclasses.replace(
        guide.pod_network,
        cidr=IPv4Network("10.32.0.0/12"),
        flannel=dataclasses.replace(
            guide.pod_network.flannel, image="mirror.example/flannel:v0.14.0"
        ),  # type: ignore[type-var]
    )
    vm = dataclasses.replace(guide.vm, private_nic="eth2")
    docs = _docs(
        render_flannel_manifest(dataclasses.replace(guide, pod_network=pn, vm=vm), UPSTREAM)
    )
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert json.loads(cm["data"]["net-conf.json"])["Network"] == "10.32.0.0/12"
    spec = _daemonset(docs)["spec"]["template"]["spec"]
    assert "--iface=eth2" in spec["containers"][0]["args"]
    assert spec["initContainers"][0]["image"] == "mirror.example/flannel:v0.14.0"


def test_flannel_manifest_keeps_everything_else_of_upstream(guide: Lab) -> None:
    upstream, rendered = _docs(UPSTREAM), _docs(render_flannel_manifest(guide, UPSTREAM))
    assert [(d["kind"], d["metadata"]["name"]) for d in upstream] == [
        (d["kind"], d["metadata"]["name"]) for d in rendered
    ]
    for before, after in zip(upstream, rendered, strict=True):
        if before["kind"] not in ("ConfigMap", "DaemonSet"):
            assert before == after


def test_flannel_manifest_rejects_an_unexpected_upstream(guide: Lab) -> None:
    with pytest.raises(ValueError, match="expected one kube-flannel-cfg ConfigMap"):
        render_flannel_manifest(guide, "kind: ConfigMap\nmetadata: {name: other}\n")


def test_vagrant_json_golden(ci: Lab, guide: Lab) -> None:
    golden("ci-debian12.vagrant.json", json.dumps(render_vagrant(ci, TCG), indent=2) + "\n")
    golden("guide-centos7.vagrant.json", json.dumps(render_vagrant(guide, KVM), indent=2) + "\n")


def test_vagrant_json_names_everything_with_the_lab_prefix(ci: Lab) -> None:
    data = render_vagrant(ci, TCG)
    assert data["libvirt"]["default_prefix"] == "netlab-ci-debian12_"
    assert data["libvirt"]["management_network_name"].startswith("netlab-ci-debian12_")
    assert {
        net["libvirt__network_name"] for n in data["nodes"] for net in n["private_networks"]
    } == {"netlab-ci-debian12_priv"}
    assert data["libvirt"]["driver"] == "qemu"
    assert data["libvirt"]["cpu_model"] == "qemu64"


def test_ci_node_pod_network(ci: Lab) -> None:
    conf = render_cni_conflist(ci, ci.node("node2"))
    bridge = conf["plugins"][0]
    assert [p["type"] for p in conf["plugins"]] == ["bridge", "portmap"]
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24", "gateway": "10.244.1.1"}]]
    (route,) = render_pod_routes(ci, ci.node("node2"))
    assert (str(route.destination), str(route.via), route.device) == (
        "10.244.0.0/24",
        "10.10.40.241",
        "eth1",
    )


def test_render_lab_files_lists(ci: Lab, guide: Lab) -> None:
    assert sorted(render_lab_files(ci, TCG, None)) == [
        "cni-node1.conflist",
        "cni-node2.conflist",
        "routes-node1.txt",
        "routes-node2.txt",
        "vagrant.json",
    ]
    assert sorted(render_lab_files(guide, KVM, UPSTREAM)) == [
        "kube-flannel.yml",
        "kubeadm-init.args",
        "kubelet-k8s-master.sysconfig",
        "kubelet-k8s-node1.sysconfig",
        "kubelet-k8s-node2.sysconfig",
        "vagrant.json",
    ]
