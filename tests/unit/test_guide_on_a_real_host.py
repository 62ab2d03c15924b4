"""What reading the CentOS 7 path end to end finds would fail on a real KVM host with internet
(issue 12), one test per fix, each failing on the code before it."""

from __future__ import annotations

import argparse
import dataclasses
import json
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from app import cli
from lab.common.commands import Output, cmd
from lab.hosts.capacity import HostResources
from lab.hosts.hostcheck import libvirt_subnet_problems, parse_libvirt_network_xml
from lab.model.config import Image, LabError, validate_lab
from lab.model.labfile import load_lab
from provision import el7
from provision.apply import Applier
from tests.unit.fake_node import FakeNode, World, sets, text

ROOT = Path(__file__).resolve().parents[2]
GUIDE = load_lab(ROOT / "labs" / "guide-centos7.yaml")
WORKER = GUIDE.node("k8s-node1")
K8S = GUIDE.kubernetes
assert K8S is not None


def plan_text(step: el7.AnyStep, facts: object) -> list[str]:
    return [" ".join(c.argv) for c in step.plan(GUIDE, WORKER, facts)]


# --- 1. kubernetes-cni pinned to a release that still ships the flannel plugin -------------


def test_kubernetes_cni_is_pinned_to_a_release_that_ships_flannel() -> None:
    fresh = plan_text(el7.K8S_PACKAGES, el7.PackagesFacts(None, (), False))
    assert (
        "yum install -y kubelet-1.18.1-0 kubeadm-1.18.1-0 kubectl-1.18.1-0 kubernetes-cni-0.8.7-0 "
        "cri-tools-1.13.0-0" in fresh
    )
    # yum already gave kubelet's dependency as the newest kubernetes-cni (no flannel binary)
    cni_1x = ("kubelet 1.18.1", "kubeadm 1.18.1", "kubectl 1.18.1", "kubernetes-cni 1.2.0")
    assert plan_text(el7.K8S_PACKAGES, el7.PackagesFacts(None, cni_1x, True))[1:] == [
        "yum remove -y kubelet kubeadm kubectl kubernetes-cni",
        "yum install -y kubelet-1.18.1-0 kubeadm-1.18.1-0 kubectl-1.18.1-0 kubernetes-cni-0.8.7-0 "
        "cri-tools-1.13.0-0",
    ]
    assert "kubernetes-cni" in el7.RPMS, "the installed version is probed"


def test_a_kubernetes_cni_without_flannel_is_rejected_before_any_vm() -> None:
    lab = dataclasses.replace(
        GUIDE, kubernetes=dataclasses.replace(K8S, cni_package_version="1.2.0-0")
    )
    (problem,) = [p for p in validate_lab(lab) if p.field == "kubernetes.cni_package_version"]
    assert "ships no flannel CNI plugin" in str(problem)
    assert "0.8.7-0" in str(problem)


# --- 3. SELinux: the mode is read through sudo, and an unreadable mode is an error ---------

SBIN = {"getenforce", "setenforce", "sysctl", "modprobe", "swapoff", "ethtool", "ip"}


def centos7_path_fake(name: str, world: World, reads: dict, writes: dict) -> FakeNode:  # type: ignore[type-arg]
    """A CentOS 7 node as a non-login SSH command sees it: /usr/sbin is not on PATH, so an
    sbin tool run without sudo exits 127 (sudo's secure_path has it)."""
    reads = dict(reads)
    for command in list(reads):
        if command.argv[0] in SBIN:
            reads[dataclasses.replace(command, sudo=False)] = lambda w: Output(127, "")
    return FakeNode(name, world, reads, writes)


def test_selinux_is_set_permissive_although_getenforce_is_not_on_the_ssh_path() -> None:
    config = "SELINUX=enforcing\nSELINUXTYPE=targeted\n"
    reads = {
        cmd("getenforce"): lambda w: Output(0, f"{w['mode']}\n"),
        cmd("cat", el7.SELINUX_CONFIG): text("config"),
    }
    writes = {
        cmd("setenforce", "0"): sets(mode="Permissive"),
        el7.write_file(el7.SELINUX_CONFIG, el7.selinux_config_disabled(config)): sets(
            config=el7.selinux_config_disabled(config)
        ),
    }
    node = centos7_path_fake("k8s-node1", {"mode": "Enforcing", "config": config}, reads, writes)
    Applier(GUIDE, WORKER, node, {}).phase((el7.SELINUX,), lambda step, n: None)
    assert node.world["mode"] == "Permissive"
    assert cmd("setenforce", "0") in node.ran


def test_an_unreadable_selinux_mode_is_an_error_not_done() -> None:
    config = "SELINUX=disabled\n"
    for out in (Output(127, ""), Output(0, ""), Output(1, "getenforce: oops\n")):
        with pytest.raises(ValueError, match="cannot read the SELinux mode: `sudo -n getenforce`"):
            el7.SELINUX.read_positional(GUIDE, WORKER, (out, Output(0, config)))


# --- 6. flannel.1 may appear between the offload step's probe and its udev reload ----------

ETHTOOL_ON = "Features for flannel.1:\nrx-checksumming: on\ntx-checksumming: on\n"
ETHTOOL_OFF = "Features for flannel.1:\nrx-checksumming: off\ntx-checksumming: off\n"


def offload_node(world: World) -> FakeNode:
    """udev as it behaves: a device's "add" event runs the rules loaded at that moment; a
    replayed "add" runs the current ones. flanneld creates flannel.1 while we write the rule."""

    def features(w: World) -> Output:
        if not w["device"]:
            return Output(71, "")
        return Output(0, ETHTOOL_ON if w["checksum"] else ETHTOOL_OFF)

    def write_rule(w: World) -> int:
        w["rule"] = el7.OFFLOAD_RULE_CONTENT
        w.update(device=True, checksum=True)  # flanneld wins the race: added without the rule
        return 0

    def replay(w: World) -> int:
        if w["device"] and w["loaded"] == el7.OFFLOAD_RULE_CONTENT:
            w["checksum"] = False  # the rule ran ethtool
        return 0

    reads = {cmd("cat", el7.OFFLOAD_RULE): text("rule"), el7.ETHTOOL_FEATURES: features}
    writes = {
        el7.write_file(el7.OFFLOAD_RULE, el7.OFFLOAD_RULE_CONTENT): write_rule,
        cmd("udevadm", "control", "--reload"): lambda w: w.update(loaded=w["rule"]) or 0,
        el7.OFFLOAD_REPLAY[0]: replay,
        el7.OFFLOAD_REPLAY[1]: sets(),
        cmd("ethtool", "--offload", "flannel.1", "rx", "off", "tx", "off"): sets(checksum=False),
    }
    return FakeNode("k8s-node1", world, reads, writes)


def test_the_offload_step_converges_when_flannel_1_appears_during_it() -> None:
    node = offload_node({"rule": None, "loaded": None, "device": False, "checksum": False})
    changed: list[int] = []
    Applier(GUIDE, WORKER, node, {}).phase((el7.OFFLOAD,), lambda step, n: changed.append(n))
    assert node.world["checksum"] is False
    assert changed == [4]
    assert len(node.round_trips) == 2, "probe, then one re-probe that found it converged"


# --- 7. pins and URLs: containerd.io pinned, the box's own gpg key, repo alternatives -----


def test_containerd_io_is_pinned_not_the_newest_el7_build() -> None:
    fresh = plan_text(el7.DOCKER, el7.DockerFacts(None, (), None, False, False))
    assert "yum install -y docker-ce-19.03.15 docker-ce-cli-19.03.15 containerd.io-1.4.3" in fresh
    newest = ("docker-ce 19.03.15", "docker-ce-cli 19.03.15", "containerd.io 1.6.33")
    plan = plan_text(el7.DOCKER, el7.DockerFacts(None, newest, None, True, True))
    assert "yum remove -y docker-ce docker-ce-cli containerd.io" in plan


def test_the_vault_repos_trust_the_gpg_key_already_on_the_box() -> None:
    repos = el7.render_vault_repos(GUIDE)
    assert repos.count("gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7\n") == 3
    assert "https://" not in "".join(line for line in repos.splitlines() if "gpgkey" in line)
    for bad in ("file:etc/key", "ftp://example.org/key"):
        lab = dataclasses.replace(GUIDE, os=dataclasses.replace(GUIDE.os, gpgkey_url=bad))
        (problem,) = [p for p in validate_lab(lab) if p.field == "os.gpgkey_url"]
        assert "file on the node (file:///path)" in str(problem)


def test_repo_alternatives_are_fields_tried_in_order_after_the_baseurl() -> None:
    alternatives = (
        "https://repo.huaweicloud.com/kubernetes/yum/repos/kubernetes-el7-x86_64/",
        "https://mirrors.cloud.tencent.com/kubernetes/yum/repos/kubernetes-el7-x86_64/",
    )
    repo = dataclasses.replace(K8S.repo, alternatives=alternatives)
    text = el7.render_repo("kubernetes", "Kubernetes", repo)
    assert (
        f"baseurl={K8S.repo.baseurl}\n        {alternatives[0]}\n        {alternatives[1]}\n"
        "failovermethod=priority\n"
    ) in text
    assert "failovermethod" not in el7.render_repo("kubernetes", "Kubernetes", K8S.repo)
    lab = dataclasses.replace(
        GUIDE,
        kubernetes=dataclasses.replace(
            K8S, repo=dataclasses.replace(K8S.repo, alternatives=("mirror.example.org",))
        ),
    )
    fields = [p.field for p in validate_lab(lab)]
    assert fields == ["kubernetes.repo.alternatives[0]"]


# --- 4. images and registry mirrors are lab fields; the suite's images are pre-pulled ------


def test_e2e_images_are_lab_fields_pre_pulled_on_every_node_via_their_mirrors() -> None:
    images = dataclasses.replace(
        K8S.e2e_images,
        echo=Image(
            "registry.k8s.io/e2e-test-images/agnhost:2.21",
            "registry.example.cn/e2e/agnhost:2.21",
        ),
    )
    lab = dataclasses.replace(GUIDE, kubernetes=dataclasses.replace(K8S, e2e_images=images))
    assert all(el7.E2E_IMAGES.applies_to(lab, node) for node in lab.nodes)
    fresh = el7.E2eImagesFacts(busybox=True, nginx=False, echo=False)
    assert [" ".join(c.argv) for c in el7.E2E_IMAGES.plan(lab, WORKER, fresh)] == [
        "docker pull nginx:1.19",
        "docker pull registry.example.cn/e2e/agnhost:2.21",
        "docker tag registry.example.cn/e2e/agnhost:2.21 "
        "registry.k8s.io/e2e-test-images/agnhost:2.21",
    ]
    pulls = [c for c in el7.E2E_IMAGES.plan(lab, WORKER, fresh) if c.argv[1] == "pull"]
    assert all(c.mirror for c in pulls), "pulls are retried (bounded), tags are not"
    probed = [c.argv[-1] for c in el7.E2E_IMAGES.commands(lab, WORKER)]
    assert probed == [
        "busybox:1.28",
        "nginx:1.19",
        "registry.k8s.io/e2e-test-images/agnhost:2.21",
    ]


def test_docker_registry_mirrors_are_a_lab_field_written_to_daemon_json() -> None:
    docker = dataclasses.replace(K8S.docker, registry_mirrors=("https://abc.mirror.aliyuncs.com",))
    lab = dataclasses.replace(GUIDE, kubernetes=dataclasses.replace(K8S, docker=docker))
    conf = json.loads(el7.render_daemon_json(lab))
    assert conf["registry-mirrors"] == ["https://abc.mirror.aliyuncs.com"]
    assert "registry-mirrors" not in json.loads(el7.render_daemon_json(GUIDE))
    bad = dataclasses.replace(K8S.docker, registry_mirrors=("abc.mirror.aliyuncs.com",))
    lab = dataclasses.replace(GUIDE, kubernetes=dataclasses.replace(K8S, docker=bad))
    assert [p.field for p in validate_lab(lab)] == ["kubernetes.docker.registry_mirrors[0]"]


def test_the_guide_lab_documents_every_e2e_image_and_where_it_comes_from() -> None:
    text = (ROOT / "labs" / "guide-centos7.yaml").read_text()
    for item in dataclasses.fields(K8S.e2e_images):
        image = getattr(K8S.e2e_images, item.name)
        assert f"{item.name}:" in text
        assert image.image in text
    assert "none is verified from here" in text
    assert "registry_mirrors: []" in text


# --- 5. two labs, one management subnet: `up` refuses a range libvirt holds by another name -

VAGRANT_LIBVIRT_NET = """<network>
  <name>vagrant-libvirt</name>
  <uuid>2d5e6c0c-6d3c-4c4e-9a59-3b6f1b3e1a10</uuid>
  <forward mode='nat'/>
  <bridge name='virbr1' stp='on' delay='0'/>
  <ip address='192.168.121.1' netmask='255.255.255.0'>
    <dhcp><range start='192.168.121.2' end='192.168.121.254'/></dhcp>
  </ip>
</network>"""
OTHER_LAB_PRIV = """<network>
  <name>netlab-ci-debian12_priv</name>
  <ip address='10.10.10.1' prefix='24'/>
  <ip family='ipv6' address='fd00::1' prefix='64'/>
</network>"""
OWN_MGMT = """<network><name>netlab-guide-centos7_mgmt</name>
  <ip address='192.168.131.1' netmask='255.255.255.0'/></network>"""


class FakeLibvirt:
    """Only what `up`'s check may ask: the networks' XML (anything else is an error)."""

    def __init__(self, *xmls: str) -> None:
        self.xmls = xmls

    def network_xmls(self) -> tuple[str, ...]:
        return self.xmls


class FakeMachines:
    def __init__(self, libvirt: FakeLibvirt) -> None:
        self.libvirt = libvirt
        self.ups = 0

    def up(self, parallel: bool = True) -> float:
        self.ups += 1
        return 0.0


def test_the_two_labs_have_distinct_management_subnets_apart_from_vagrant_libvirts() -> None:
    ci = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    managements = {ci.network.management, GUIDE.network.management}
    assert len(managements) == 2
    assert IPv4Network("192.168.121.0/24") not in managements
    vagrant_default = parse_libvirt_network_xml(VAGRANT_LIBVIRT_NET)
    assert libvirt_subnet_problems(ci, [vagrant_default]) == []
    assert libvirt_subnet_problems(GUIDE, [vagrant_default]) == []


def test_up_refuses_a_range_another_libvirt_network_holds_before_any_vm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = dataclasses.replace(
        GUIDE,
        network=dataclasses.replace(GUIDE.network, management=IPv4Network("192.168.121.0/24")),
    )
    machines = FakeMachines(FakeLibvirt(VAGRANT_LIBVIRT_NET, OTHER_LAB_PRIV, OWN_MGMT))
    monkeypatch.setattr(cli, "machines_for", lambda lab, progress=False, box=False: machines)
    # a host that holds the lab: only the networks may be what stops it (not this machine's RAM)
    monkeypatch.setattr(
        "lab.adapters.host.probe_host_resources", lambda: HostResources(8, 65536, "a test host")
    )
    with pytest.raises(LabError) as info:
        cli.up(old, argparse.Namespace())
    assert machines.ups == 0, "no VM may be created"
    problems: dict[str, str] = {}
    for p in info.value.problems:  # a field may have several (its own network moved, too)
        problems[p.field] = problems.get(p.field, "") + str(p)
    assert (
        "libvirt network 'vagrant-libvirt' already holds 192.168.121.0/24"
        in (problems["network.management"])
    )
    assert "NetworkNameAndAddressMismatch" in problems["network.management"]
    assert "'netlab-ci-debian12_priv' already holds 10.10.10.0/24" in problems["network.private"]


def test_the_labs_own_networks_from_an_earlier_up_are_not_a_conflict() -> None:
    own = parse_libvirt_network_xml(OWN_MGMT)
    assert own.name == "netlab-guide-centos7_mgmt"
    assert libvirt_subnet_problems(GUIDE, [own]) == []
    assert parse_libvirt_network_xml(OTHER_LAB_PRIV).subnets == (IPv4Network("10.10.10.0/24"),)
