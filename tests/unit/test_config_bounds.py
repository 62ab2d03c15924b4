"""Every validation bound holds at its edge: the value on the bound is accepted (a bad lab in
tests/data/bad-labs/ shows the value one past it refused, with its exact problem). A check that
is off by one, or a bound moved, fails one side or the other."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.model.config import LabError
from lab.model.labfile import load_lab

LABS = Path(__file__).resolve().parents[2] / "labs"
BASE = (LABS / "ci-debian12.yaml").read_text()
BOX_BUILD = "box_build: debian12           # built by `make box`, cached until its inputs change"
NODE1 = "{name: node1, ip: 10.10.40.241}"
NODE2 = "{name: node2, ip: 10.10.40.242}"

# name: the edits to the shipped ci-debian12 lab that put one field on its bound
EDGES: dict[str, list[tuple[str, str]]] = {
    "the first host address after the host bridge's": [("ip: 10.10.40.241", "ip: 10.10.40.2")],
    "the last host address before the broadcast": [("ip: 10.10.40.242", "ip: 10.10.40.254")],
    "a /29 private network": [
        ("private: 10.10.40.0/24", "private: 10.10.40.0/29"),
        ("ip: 10.10.40.241", "ip: 10.10.40.2"),
        ("ip: 10.10.40.242", "ip: 10.10.40.6"),
    ],
    "/30 node subnets": [("subnet_len: 24", "subnet_len: 30")],
    "node subnets one bit longer than the pod CIDR, exactly one per node": [
        ("subnet_len: 24", "subnet_len: 17")
    ],
    "a /28 pod CIDR cut in /30s for three nodes": [
        ("cidr: 10.244.0.0/16", "cidr: 10.244.0.0/28"),
        ("subnet_len: 24", "subnet_len: 30"),
        (f"  - {NODE2}", f"  - {NODE2}\n  - {{name: node3, ip: 10.10.40.243}}"),
    ],
    "a pod MTU of 576": [("mtu: 1500 ", "mtu: 576 ")],
    # the upper bound is the private NIC's MTU on host routes (a tunnel's is lower):
    # tests/unit/test_podnet_registry.py
    "a pod MTU of 1500 with a routing backend, the private NIC's": [("mtu: 1500 ", "mtu: 1500 ")],
    "CNI 0.3.1": [("cni_version: 0.4.0", "cni_version: 0.3.1")],
    "CNI 1.0.0": [("cni_version: 0.4.0", "cni_version: 1.0.0")],
    "one CPU per node": [(NODE1, NODE1[:-1] + ", cpus: 1}")],
    "256 CPUs": [("cpus: 1", "cpus: 256")],
    "512 MiB": [("memory_mib: 1024", "memory_mib: 512")],
    "1 TiB on a node": [(NODE2, NODE2[:-1] + ", memory_mib: 1048576}")],
    "a 30 s boot wait": [("boot_timeout_s: 600", "boot_timeout_s: 30")],
    "a 24 h boot wait": [("boot_timeout_s: 600", "boot_timeout_s: 86400")],
    "a 40-character lab name": [("name: ci-debian12\n", "name: " + "a" * 40 + "\n")],
    "a 63-character hostname": [("name: node2,", "name: " + "n" * 63 + ",")],
    "a box URL on port 65535": [
        (BOX_BUILD, "box_version: '1'\n  box_url: http://mirror.example:65535/box.json")
    ],
    "a box URL on port 1": [
        (BOX_BUILD, "box_version: '1'\n  box_url: http://mirror.example:1/box.json")
    ],
}


GUIDE = (LABS / "guide-centos7.yaml").read_text()
# the same for the guide's Kubernetes lab
GUIDE_EDGES: dict[str, list[tuple[str, str]]] = {
    "a control plane with exactly kubeadm's 2 CPUs and 1700 MiB": [
        ("memory_mib: 2048", "memory_mib: 1700")
    ],
    "flannel's host-gw backend with pods at 1500 (no tunnel)": [
        ("backend: vxlan", "backend: host-gw"),
        ("  subnet_len: 24\n", "  subnet_len: 24\n  mtu: 1500\n"),
    ],
    "flannel's vxlan backend with pods at 1450": [
        ("  subnet_len: 24\n", "  subnet_len: 24\n  mtu: 1450\n")
    ],
    "no CentOS key URL (it is optional)": [
        ("  gpgkey_url: file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7\n", "")
    ],
    "an '@' after a second '://' in a URL's query, not its authority": [
        ("centos-vault/7.9.2009/", "centos-vault/7.9.2009/?from=ftp://user@mirror")
    ],
    "an '@' in a URL's path, not its authority": [
        ("centos-vault/7.9.2009/", "centos-vault/7.9.2009/@latest/")
    ],
    "Docker's repository without keys (only the Kubernetes repo needs them)": [
        ("gpgkeys: [https://mirrors.aliyun.com/docker-ce/linux/centos/gpg]", "gpgkeys: []")
    ],
}


def edited(edits: list[tuple[str, str]], base: str = BASE) -> str:
    text = base
    for old, new in edits:
        assert old in text, f"the shipped lab has no {old!r} any more"
        text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_a_value_on_its_bound_is_accepted(edge: str, tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(edited(EDGES[edge]))
    try:
        load_lab(path)
    except LabError as e:
        pytest.fail(f"{edge}: refused: {[str(p) for p in e.problems]}")


@pytest.mark.parametrize("edge", sorted(GUIDE_EDGES))
def test_a_kubernetes_value_on_its_bound_is_accepted(edge: str, tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(edited(GUIDE_EDGES[edge], GUIDE))
    try:
        load_lab(path)
    except LabError as e:
        pytest.fail(f"{edge}: refused: {[str(p) for p in e.problems]}")


def test_a_vxlan_lab_may_give_its_pods_exactly_what_the_tunnel_carries() -> None:
    lab = load_lab(LABS / "ci-debian12-vxlan.yaml")
    assert lab.pod_network.mtu == 1450


def test_a_lab_network_on_a_host_interface_is_refused_with_the_interfaces_network() -> None:
    from ipaddress import IPv4Network

    with pytest.raises(LabError) as e:
        load_lab(LABS / "ci-debian12.yaml", host_networks=[IPv4Network("10.10.0.0/16")])
    assert [str(p) for p in e.value.problems] == [
        "network.private = '10.10.40.0/24': overlaps host network 10.10.0.0/16 (a host "
        "interface); pick a range no host interface uses"
    ]
