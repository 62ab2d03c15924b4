"""The semantic checks issue 30 found missing (lab/model/config.py), each on both sides of its
edge: the service CIDR kubeadm and the API server take, a management network with a DHCP lease
per node, a routed lab's pod MTU within the node NIC's, no file:// or climbing '..' in URL
fields, the private NIC not Vagrant's, node names no hosts file or libvirt object already holds,
and image references pinned by digest accepted in every image field."""

from __future__ import annotations

import copy
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.model.config import (
    MANAGEMENT_NIC,
    RESERVED_HOSTNAMES,
    check_lab,
    check_service_cidr,
)
from lab.podnet.base import NIC_MTU as NODE_NIC_MTU

ROOT = Path(__file__).resolve().parents[2]
CI = yaml.safe_load((ROOT / "labs" / "ci-debian12.yaml").read_text())
GUIDE = yaml.safe_load((ROOT / "labs" / "guide-centos7.yaml").read_text())
DIGEST = "sha256:" + "0123456789abcdef" * 4


def problems_with(base: dict[str, Any], **edits: object) -> list[str]:
    """check_lab's problems for `base` with each path (`a__b` for a.b) set to its value."""
    raw = copy.deepcopy(base)
    for path, value in edits.items():
        *parents, key = path.split("__")
        where = raw
        for part in parents:
            where = where[int(part)] if part.isdigit() else where[part]
        where[int(key) if key.isdigit() else key] = value
    lab, problems = check_lab(raw, "x.yaml")
    assert (lab is None) == bool(problems)
    return [str(p) for p in problems]


# --- the service CIDR --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "problem"),
    [
        ("10.96.0.0/12", ""),
        ("10.1.0.0/28", ""),
        (
            "10.96.0.0/11",
            "kubernetes.service_cidr = '10.96.0.0/11': is larger than a /12: the API server "
            'refuses a service range of more than 2^20 addresses ("--service-cluster-ip-range is '
            "too large\"); use a /12 or smaller, e.g. 10.96.0.0/12 (kubeadm's default) or "
            "10.1.0.0/16",
        ),
        (
            "10.1.0.0/29",
            "kubernetes.service_cidr = '10.1.0.0/29': holds 8 addresses: kubeadm gives cluster "
            "DNS the 10th address of the service range, which 10.1.0.0/29 does not have; use a "
            "/28 or larger, e.g. 10.96.0.0/12 (kubeadm's default) or 10.1.0.0/16",
        ),
    ],
    ids=["a-slash-12", "a-slash-28", "a-slash-11", "a-slash-29"],
)
def test_the_service_cidr_holds_the_dns_address_and_no_more_than_the_api_server_takes(
    cidr: str, problem: str
) -> None:
    assert problems_with(GUIDE, kubernetes__service_cidr=cidr) == ([problem] if problem else [])


@pytest.mark.parametrize(
    ("cidr", "refused"),
    [
        ("10.0.0.0/8", True),
        ("172.16.0.0/12", False),
        ("192.168.0.0/28", False),
        ("192.168.0.0/29", True),
        ("192.168.0.0/32", True),
        ("fd00:10:96::/107", True),
        ("fd00:10:96::/108", False),
        ("fd00:10:96::/124", False),
        ("fd00:10:96::/125", True),
    ],
)
def test_check_service_cidr_is_reusable_for_either_family(cidr: str, refused: bool) -> None:
    net = ip_network(cidr)
    assert isinstance(net, IPv4Network | IPv6Network)
    found = list(check_service_cidr("services.cidr", net))
    assert bool(found) == refused
    assert all(p.where == "services.cidr" and p.value == cidr for p in found)


# --- the management network ------------------------------------------------------------------


def nodes(count: int) -> list[dict[str, str]]:
    return [{"name": f"node{i + 1}", "ip": f"10.10.10.{i + 2}"} for i in range(count)]


@pytest.mark.parametrize(
    ("management", "count", "problem"),
    [
        ("192.168.130.0/29", 5, ""),
        (
            "192.168.130.0/29",
            6,
            "network.management = '192.168.130.0/29': has room for 5 DHCP lease(s) and the lab "
            "has 6 node(s): vagrant-libvirt's management network gives each VM a lease, after the "
            "network address and the host's gateway, before the broadcast address; use a /28 or "
            "larger, e.g. 192.168.121.0/24 (vagrant-libvirt's default)",
        ),
        ("192.168.130.0/30", 1, ""),
        ("192.168.130.0/30", 2, "has room for 1 DHCP lease(s) and the lab has 2 node(s)"),
        ("192.168.130.0/31", 1, "has room for 0 DHCP lease(s) and the lab has 1 node(s)"),
    ],
    ids=["5-in-a-29", "6-in-a-29", "1-in-a-30", "2-in-a-30", "1-in-a-31"],
)
def test_the_management_network_has_a_lease_for_every_node(
    management: str, count: int, problem: str
) -> None:
    found = problems_with(CI, network__management=management, nodes=nodes(count))
    assert [p for p in found if p.startswith("network.management")] == (
        [] if not problem else [p for p in found if problem in p]
    )
    if problem:
        assert len([p for p in found if p.startswith("network.management")]) == 1


# --- the pod MTU with a routing backend ----------------------------------------------------------


def test_a_routed_labs_pod_mtu_is_at_most_the_node_nics() -> None:
    assert problems_with(CI, pod_network__mtu=NODE_NIC_MTU) == []
    assert problems_with(CI, pod_network__mtu=NODE_NIC_MTU + 1) == [
        "pod_network.mtu = 1501: is more than the 1500 bytes the nodes' private NIC (eth1) "
        "carries: pod packets cross nodes unencapsulated with a routing backend, and larger "
        "ones are dropped or fragmented on the way; set pod_network.mtu: 1500, or remove it"
    ]


def test_flannel_host_gw_is_routed_too_and_vxlan_keeps_its_own_limit() -> None:
    host_gw = problems_with(GUIDE, pod_network__flannel__backend="host-gw", pod_network__mtu=1600)
    assert [p[:40] for p in host_gw] == ["pod_network.mtu = 1600: is more than the"]
    (vxlan,) = problems_with(GUIDE, pod_network__mtu=1600)
    assert "a VXLAN tunnel takes 50 bytes" in vxlan


# --- URL fields --------------------------------------------------------------------------------

HTTP_FIELDS = {
    "os__vault_url": "os.vault_url",
    "kubernetes__repo__baseurl": "kubernetes.repo.baseurl",
    "pod_network__flannel__manifest_url": "pod_network.flannel.manifest_url",
    "vm__box_url": "vm.box_url",
}


@pytest.mark.parametrize("field", sorted(HTTP_FIELDS))
def test_a_file_url_in_a_field_fetched_over_http_is_refused(field: str) -> None:
    found = problems_with(GUIDE, **{field: "file:///etc/passwd"})
    assert found == [
        f"{HTTP_FIELDS[field]} = 'file:///etc/passwd': is a file:// URL: this field is fetched "
        "over http(s) (only a gpg key may be a file already on the node); give the http(s) URL "
        "of a mirror, e.g. https://mirrors.example.org/"
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/centos-vault/../../etc/",
        "/centos-vault/%2e%2e/etc/",
        "/centos-vault/%2E%2e/etc/",
        "/centos-vault/.%2e/etc/",
        "/centos-vault/%252e%252e/etc/",
        "/centos-vault/..%2f..%2fetc/",
        "/centos-vault/..",
    ],
)
def test_a_url_path_that_climbs_out_is_refused_however_it_is_encoded(path: str) -> None:
    url = f"https://mirrors.example.org{path}"
    (found,) = problems_with(GUIDE, os__vault_url=url)
    assert found.startswith("os.vault_url = ")
    assert "has a '..' path segment (or one percent-encoded, %2e%2e)" in found


def test_a_url_that_climbs_out_is_told_in_full_with_its_fix() -> None:
    url = "https://mirrors.example.org/centos-vault/../../etc/"
    assert problems_with(GUIDE, os__vault_url=url) == [
        f"os.vault_url = {url!r}: has a '..' path segment (or one percent-encoded, %2e%2e): it "
        "climbs out of the directory it names, to what the lab file does not say; write the "
        "path it means without '..'"
    ]


def test_dots_that_do_not_climb_stay() -> None:
    for url in ("https://m.example/a..b/", "https://m.example/.../", "https://m.example/v1.2/"):
        assert problems_with(GUIDE, os__vault_url=url) == []


def test_a_gpg_key_file_may_not_climb_out_of_its_directory() -> None:
    assert problems_with(GUIDE, os__gpgkey_url="file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7") == []
    (found,) = problems_with(GUIDE, os__gpgkey_url="file:///etc/pki/rpm-gpg/../../../root/.ssh/k")
    assert found.startswith(
        "os.gpgkey_url = 'file:///etc/pki/rpm-gpg/../../../root/.ssh/k': has a '..' path segment"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://bob:pa55w0rd@mirror.example/KEY", "'https://<redacted>@mirror.example/KEY'"),
        ("https://bob@mirror.example/KEY", "'https://<redacted>@mirror.example/KEY'"),
    ],
)
def test_a_gpg_key_url_with_credentials_is_told_so_with_them_masked(url: str, shown: str) -> None:
    assert problems_with(GUIDE, os__gpgkey_url=url) == [
        f"os.gpgkey_url = {shown}: carries credentials (user:password@host): a lab file is "
        "shared, logged and copied into every node's repo files; remove them from the URL"
    ]


@pytest.mark.parametrize("password", ["pa/ss", "p@ss", "p:ss", "p?ss", "p#ss", "p%2Fss", "a/b@c"])
def test_a_url_password_with_any_reserved_character_is_found_and_never_shown(
    password: str,
) -> None:
    found = problems_with(GUIDE, os__vault_url=f"https://mirror-user:{password}@m.example/v/")
    assert len(found) == 1
    assert "carries credentials (user:password@host)" in found[0]
    assert password not in found[0]
    assert "mirror-user" not in found[0]


def test_a_user_in_a_url_inside_the_query_is_no_credential_but_a_password_is() -> None:
    plain = "https://m.example/v/?from=ftp://user@mirror"
    assert problems_with(GUIDE, os__vault_url=plain) == []
    secret = "https://m.example/v/?from=ftp://user:S3cr3t@mirror"
    (found,) = problems_with(GUIDE, os__vault_url=secret)
    assert "carries credentials" in found
    assert "S3cr3t" not in found


def test_a_box_is_a_name_not_a_url_or_a_path() -> None:
    for box in ("https://boxes.example/debian12.box", "../boxes/debian12", "/srv/boxes/x.box"):
        (found,) = problems_with(CI, vm__box=box)
        assert "is a box's name (like netlab/debian12 or centos/7), not a URL or a path" in found


# --- NICs ------------------------------------------------------------------------------------


def test_the_private_nic_is_not_the_one_vagrant_manages_the_vms_through() -> None:
    assert problems_with(CI, vm__private_nic=MANAGEMENT_NIC) == [
        "vm.private_nic = 'eth0': is the NIC Vagrant manages the VMs through (eth0, on "
        "vagrant-libvirt's management network): pod routes and the node IPs would go on the "
        "wrong network; the lab's private network is the second NIC: eth1 on these boxes"
    ]
    assert problems_with(CI, vm__private_nic="lo") == [
        "vm.private_nic = 'lo': is the loopback interface; use eth1"
    ]
    assert problems_with(CI, vm__private_nic="eth2") == []


@pytest.mark.parametrize(("bridge", "which"), [("eth1", "private NIC"), ("eth0", "management NIC")])
def test_the_pod_bridge_is_no_interface_the_node_has(bridge: str, which: str) -> None:
    (found,) = problems_with(CI, pod_network__bridge=bridge)
    assert f"is the name of the node's {which}: the CNI bridge plugin would take" in found


# --- node names --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(n for n in RESERVED_HOSTNAMES if "." not in n))
def test_a_name_the_hosts_file_already_holds_is_refused(name: str) -> None:
    (found,) = problems_with(CI, nodes__1__name=name)
    assert found.startswith(f"nodes[1].name = '{name}': is a name every host's /etc/hosts")


def test_a_dotted_reserved_name_is_refused_for_both_reasons() -> None:
    found = problems_with(CI, nodes__1__name="localhost.localdomain")
    assert len(found) == 2
    assert "DNS-1123 label" in found[0]
    assert "/etc/hosts" in found[1]


@pytest.mark.parametrize("name", ["mgmt", "priv"])
def test_a_name_of_the_labs_own_libvirt_networks_is_refused(name: str) -> None:
    (found,) = problems_with(CI, nodes__1__name=name)
    assert f"would name the node's VM netlab-ci-debian12_{name}" in found


def test_names_that_only_start_like_reserved_ones_stay() -> None:
    for name in ("localhost2", "my-localhost", "mgmt1", "private"):
        assert problems_with(CI, nodes__1__name=name) == []


# --- images pinned by digest -----------------------------------------------------------------

IMAGE_FIELDS = [
    "pod_network__flannel__image",
    "pod_network__flannel__mirror_image",
    "kubernetes__e2e_images__busybox__image",
    "kubernetes__e2e_images__echo__mirror",
]


@pytest.mark.parametrize("field", IMAGE_FIELDS)
@pytest.mark.parametrize(
    "reference",
    [f"quay.io/coreos/flannel:v0.14.0@{DIGEST}", f"quay.io/coreos/flannel@{DIGEST}"],
    ids=["tag-and-digest", "digest"],
)
def test_an_image_pinned_by_digest_is_accepted_in_every_image_field(
    field: str, reference: str
) -> None:
    edits: dict[str, object] = {field: reference}
    if field == "pod_network__flannel__image":
        edits["pod_network__flannel__mirror_image"] = ""  # a mirror is re-tagged as the image
    assert problems_with(GUIDE, **edits) == []


@pytest.mark.parametrize(
    "reference",
    [
        "quay.io/coreos/flannel@sha256:" + "0" * 63,
        "quay.io/coreos/flannel@sha256:" + "G" * 64,
        "quay.io/coreos/flannel@md5:" + "0" * 32,
        "quay.io/coreos/flannel@",
    ],
    ids=["63-hex", "not-hex", "md5", "empty"],
)
def test_a_malformed_digest_is_refused(reference: str) -> None:
    (found,) = problems_with(GUIDE, pod_network__flannel__mirror_image=reference)
    assert "is not a container image reference" in found


def test_an_image_pinned_by_digest_cannot_be_what_a_mirror_is_retagged_as() -> None:
    (found,) = problems_with(GUIDE, pod_network__flannel__image=f"quay.io/coreos/flannel@{DIGEST}")
    assert found.startswith("pod_network.flannel.image = 'quay.io/coreos/flannel@sha256:")
    assert "`docker tag` cannot create a name with a digest" in found


# --- the services section (labs without Kubernetes) ---------------------------------------------

RANGE_FIX = "e.g. 30000-32767 (the API server's default)"


@pytest.mark.parametrize(
    ("ports", "problem"),
    [
        ("30000-32767", None),
        ("1-16", None),  # 15 apart: 16 ports
        ("65520-65535", None),
        ("30000-30014", "leaves fewer than 16 ports for the suite's NodePorts"),
        ("0-16", "must be LOW-HIGH, two ports with 0 < LOW < HIGH <= 65535"),
        ("16-1", "must be LOW-HIGH, two ports with 0 < LOW < HIGH <= 65535"),
        ("30000-30000", "must be LOW-HIGH, two ports with 0 < LOW < HIGH <= 65535"),
        ("65521-65536", "must be LOW-HIGH, two ports with 0 < LOW < HIGH <= 65535"),
        ("30000", "must be LOW-HIGH, two ports with 0 < LOW < HIGH <= 65535"),
        ("a-b", "must be LOW-HIGH, two ports with 0 < LOW < HIGH <= 65535"),
        ("30000-", "must be LOW-HIGH, two ports with 0 < LOW < HIGH <= 65535"),
        ("30000-32767x", "must be LOW-HIGH, two ports with 0 < LOW < HIGH <= 65535"),
    ],
)
def test_the_node_port_range_is_two_ports_in_order_with_room_for_the_suite(
    ports: str, problem: str | None
) -> None:
    found = problems_with(CI, services__node_port_range=ports)
    assert found == (
        [] if problem is None else [f"services.node_port_range = {ports!r}: {problem}; {RANGE_FIX}"]
    )


@pytest.mark.parametrize(
    ("domain", "ok"),
    [
        ("cluster.local", True),
        ("netlab", True),
        ("a." * 126 + "b", True),  # 253 characters
        ("a." * 126 + "bc", False),  # 254
        ("Cluster.Local", False),
        ("cluster..local", False),
    ],
)
def test_the_cluster_domain_is_a_dns_domain(domain: str, ok: bool) -> None:
    found = problems_with(CI, services__cluster_domain=domain)
    shown = repr(domain) if len(domain) <= 60 else f"{domain[:60]!r}… ({len(domain)} characters)"
    problem = (
        f"services.cluster_domain = {shown}: is not a DNS domain (lowercase labels separated by "
        "dots); e.g. cluster.local (kubelet's default)"
    )
    assert found == ([] if ok else [problem])


def test_a_bad_services_section_names_every_field_at_once() -> None:
    found = problems_with(
        CI,
        services__cidr="10.96.0.0/30",
        services__node_port_range="9-1",
        services__cluster_domain="A_B",
    )
    assert [f.split(" = ")[0] for f in found] == [
        "services.cidr",
        "services.node_port_range",
        "services.cluster_domain",
    ]


def test_a_kubernetes_lab_has_no_services_section() -> None:
    found = problems_with(GUIDE, services={"cidr": "10.96.0.0/12"})
    assert found == [
        "services: is for labs without Kubernetes: a Kubernetes lab's Services are its own "
        "(kubernetes.service_cidr, kube-proxy, CoreDNS); remove services"
    ]
