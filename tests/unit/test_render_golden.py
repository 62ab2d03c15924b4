"""Every file `python -m lab render` writes, for every shipped lab, pinned by a golden copy
(tests/golden/render/LAB/; NETLAB_UPDATE_GOLDEN=1 rewrites them), and the flannel manifest's
edge cases: an upstream `--iface` replaced, `--ip-masq` dropped when the lab says so, an
upstream with two DaemonSets refused."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from lab.hosts.hypervisor import TCG
from lab.hosts.render import render_lab_files
from lab.k8s.kubeadm import render_kubeadm_init_args
from lab.model.labfile import load_lab
from lab.podnet.bridge import render_cni_conflist
from lab.podnet.flannel import render_flannel_manifest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
UPSTREAM = (ROOT / "labs" / "vendor" / "kube-flannel-v0.14.0.yml").read_text()
LABS = sorted(p.stem for p in (ROOT / "labs").glob("*.yaml"))


@pytest.mark.parametrize("name", LABS)
def test_every_rendered_file_of_a_shipped_lab_matches_its_golden_copy(name: str) -> None:
    files = render_lab_files(load_lab(ROOT / "labs" / f"{name}.yaml"), TCG, UPSTREAM)
    manifest = files.pop("kube-flannel.yml", None)  # pinned by its own golden file
    pinned = GOLDEN / f"{name}.kube-flannel.yml"
    assert manifest == (pinned.read_text() if pinned.exists() else None)
    here = GOLDEN / "render" / name
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        here.mkdir(parents=True, exist_ok=True)
        for old in here.iterdir():
            old.unlink()
        for file, text in files.items():
            (here / file).write_text(text)
    assert sorted(files) == sorted(p.name for p in here.iterdir())
    for file, text in files.items():
        assert text == (here / file).read_text(), f"{name}/{file} differs from its golden copy"


def test_a_lab_without_kubernetes_has_no_kubeadm_init() -> None:
    lab = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    with pytest.raises(ValueError, match=r"^lab 'ci-debian12' has no Kubernetes control plane$"):
        render_kubeadm_init_args(lab)
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    no_plane = dataclasses.replace(
        guide, nodes=tuple(n for n in guide.nodes if n.role != "control-plane")
    )
    with pytest.raises(ValueError, match="has no Kubernetes control plane"):
        render_kubeadm_init_args(no_plane)


def test_a_lab_without_flannel_has_no_flannel_manifest() -> None:
    lab = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    with pytest.raises(ValueError, match=r"^lab 'ci-debian12' does not use flannel$"):
        render_flannel_manifest(lab, UPSTREAM)


def _flanneld_args(manifest: str) -> list[str]:
    (ds,) = [d for d in yaml.safe_load_all(manifest) if d and d["kind"] == "DaemonSet"]
    (flanneld,) = ds["spec"]["template"]["spec"]["containers"]
    return list(flanneld["args"])


def test_an_upstream_iface_is_replaced_and_ip_masq_dropped_when_the_lab_says_so() -> None:
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    upstream = UPSTREAM.replace(
        "- --kube-subnet-mgr", "- --kube-subnet-mgr\n        - --iface=eth9"
    )
    assert "--iface=eth9" in upstream
    assert _flanneld_args(render_flannel_manifest(guide, upstream)) == [
        "--ip-masq",
        "--kube-subnet-mgr",
        "--iface=eth1",
    ]
    fl = dataclasses.replace(guide.pod_network.flannel, ip_masq=False)  # type: ignore[type-var]
    no_masq = dataclasses.replace(
        guide, pod_network=dataclasses.replace(guide.pod_network, flannel=fl)
    )
    assert _flanneld_args(render_flannel_manifest(no_masq, upstream)) == [
        "--kube-subnet-mgr",
        "--iface=eth1",
    ]


def test_an_upstream_daemonset_without_init_containers_gets_the_image_too() -> None:
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    docs = [d for d in yaml.safe_load_all(UPSTREAM) if d]
    for doc in docs:
        if doc["kind"] == "DaemonSet":
            del doc["spec"]["template"]["spec"]["initContainers"]
    rendered = render_flannel_manifest(guide, yaml.safe_dump_all(docs))
    (ds,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "DaemonSet"]
    assert "initContainers" not in ds["spec"]["template"]["spec"]
    assert (
        ds["spec"]["template"]["spec"]["containers"][0]["image"] == guide.pod_network.flannel.image
    )  # type: ignore[union-attr]


def test_an_upstream_with_a_second_daemonset_or_configmap_is_refused() -> None:
    guide = load_lab(ROOT / "labs" / "guide-centos7.yaml")
    docs = [d for d in yaml.safe_load_all(UPSTREAM) if d]
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    for extra, counts in ((ds, "found 1 and 2"), (cm, "found 2 and 1")):
        twice = yaml.safe_dump_all([*docs, extra])
        with pytest.raises(ValueError, match=counts):
            render_flannel_manifest(guide, twice)


def test_the_vxlan_conflist_takes_the_pod_mtu_from_the_nic_it_is_given() -> None:
    lab = load_lab(ROOT / "labs" / "ci-debian12-vxlan.yaml")
    conf = render_cni_conflist(lab, lab.nodes[0], 9000)
    assert conf["plugins"][0]["mtu"] == 8950


def test_the_vxlan_pod_mtu_needs_the_nics() -> None:
    lab = load_lab(ROOT / "labs" / "ci-debian12-vxlan.yaml")
    with pytest.raises(ValueError, match=r"^the private NIC's MTU is needed for the VXLAN pod MTU"):
        render_cni_conflist(lab, lab.nodes[0], None)
