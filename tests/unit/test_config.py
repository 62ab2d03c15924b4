"""Lab files: the shipped ones are valid; every bad one names the field, the value and the fix."""

from __future__ import annotations

import dataclasses
import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from lab.model.config import (
    LabError,
    Services,
    check_service_cidr,
    suggest_dns1123,
    validate_cni_package,
)
from lab.model.labfile import load_lab
from lab.model.problems import Problem

LABS = Path(__file__).resolve().parents[2] / "labs"
BAD = Path(__file__).resolve().parents[1] / "data" / "bad-labs"
BAD_FILES = sorted(BAD.glob("*.yaml"))


def header(path: Path) -> list[str]:
    """The comment lines of a bad lab file, whatever the encoding of the rest (some files are
    Latin-1, UTF-16 or binary on purpose)."""
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        lines = data.decode("utf-16").splitlines()
    else:
        lines = [raw.decode("utf-8", errors="replace") for raw in data.splitlines()]
    return [line for line in lines if line.startswith("# ")]


def expectations(path: Path) -> list[tuple[str, list[str]]]:
    """`# expect: FIELD :: FRAGMENT :: ...`: a problem names FIELD and says each FRAGMENT."""
    out = []
    for line in header(path):
        m = re.match(r"# expect: (\S+) :: (.*)$", line)
        if m:
            out.append((m[1], m[2].split(" :: ")))
    return out


def exact_problems(path: Path) -> list[str]:
    """`# problem: ...`: the file's problems are exactly these lines, in this order."""
    return [
        line.removeprefix("# problem: ") for line in header(path) if line.startswith("# problem: ")
    ]


@pytest.mark.parametrize("name", ["guide-centos7", "ci-debian12"])
def test_shipped_labs_are_valid(name: str) -> None:
    lab = load_lab(LABS / f"{name}.yaml")
    assert lab.name == name


def test_at_least_twenty_distinct_bad_lab_files() -> None:
    assert len(BAD_FILES) >= 20
    assert all(expectations(p) or exact_problems(p) for p in BAD_FILES), (
        "every bad lab states what it expects"
    )


EXACT_FILES = [p for p in BAD_FILES if exact_problems(p)]


@pytest.mark.parametrize("path", EXACT_FILES, ids=[p.stem for p in EXACT_FILES])
def test_bad_lab_gives_exactly_its_problems(path: Path) -> None:
    with pytest.raises(LabError) as info:
        load_lab(path)
    assert [str(p) for p in info.value.problems] == exact_problems(path)


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_lab_is_rejected_naming_field_and_problem(path: Path) -> None:
    with pytest.raises(LabError) as info:
        load_lab(path)
    problems = info.value.problems
    for field, fragments in expectations(path):
        matching = [p for p in problems if p.field == field]
        assert matching, f"no problem names {field}; got: {[str(p) for p in problems]}"
        text = " ".join(str(p) for p in matching)
        for fragment in fragments:
            assert fragment in text, f"{field}: {fragment!r} not in {text!r}"


def test_one_file_with_several_problems_reports_all_of_them() -> None:
    with pytest.raises(LabError) as info:
        load_lab(BAD / "many-problems.yaml")
    fields = {p.field for p in info.value.problems}
    assert {
        "nodes[0].name",
        "nodes[1].ip",
        "nodes[2].ip",
        "kubernetes.service_cidr",
        "pod_network.flannel.version",
        "nodes[0].cpus",
    } <= fields
    message = str(info.value)
    assert "k8s_master" in message
    assert "try 'k8s-master'" in message


def test_guide_hostname_error_reads_like_the_fix() -> None:
    with pytest.raises(LabError) as info:
        load_lab(BAD / "underscore-hostname.yaml")
    (problem,) = [p for p in info.value.problems if p.field == "nodes[0].name"]
    assert str(problem).startswith("nodes[0].name = 'k8s_master': hostname must be a DNS-1123")
    assert str(problem).endswith("try 'k8s-master'")


def test_opting_out_of_kubeadm_minimums_is_explicit(tmp_path: Path) -> None:
    text = (BAD / "control-plane-one-cpu.yaml").read_text()
    opted = tmp_path / "lab.yaml"
    opted.write_text(
        text.replace(
            "vxlan_offload_workaround: true",
            "vxlan_offload_workaround: true\n  ignore_preflight_resources: true",
        )
    )
    assert load_lab(opted).kubernetes.ignore_preflight_resources  # type: ignore[union-attr]


def test_host_interface_overlap_is_reported() -> None:
    with pytest.raises(LabError) as info:
        load_lab(LABS / "ci-debian12.yaml", host_networks=[IPv4Network("10.10.0.0/16")])
    assert [p.field for p in info.value.problems] == ["network.private"]
    assert "host network 10.10.0.0/16" in str(info.value)


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="cannot be read"):
        load_lab(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [\n")
    with pytest.raises(LabError, match="not valid YAML"):
        load_lab(bad)


@pytest.mark.parametrize(
    ("given", "suggested"),
    [
        ("k8s_master", "k8s-master"),
        ("Node.One", "node-one"),
        ("__", "node"),
    ],
)
def test_dns1123_suggestion(given: str, suggested: str) -> None:
    assert suggest_dns1123(given) == suggested


def test_a_pod_cidr_that_differs_but_overlaps_is_one_problem_with_one_fix(tmp_path: Path) -> None:
    text = (BAD / "flannel-network-differs.yaml").read_text()
    path = tmp_path / "flannel-network-overlaps.yaml"
    path.write_text(text.replace("cidr: 10.245.0.0/16", "cidr: 10.244.0.0/17"))
    with pytest.raises(LabError) as info:
        load_lab(path)
    assert [str(p) for p in info.value.problems] == [
        "pod_network.cidr = '10.244.0.0/17': (flannel's net-conf Network) differs from "
        "kubernetes.pod_network_cidr 10.244.0.0/16: flannel would masquerade cross-node pod "
        "traffic; set both to 10.244.0.0/16"
    ]


def test_a_services_section_has_kubeadms_dns_address_and_the_whole_node_port_range() -> None:
    services = load_lab(LABS / "ci-debian12-vxlan.yaml").services
    assert services is not None
    assert services.dns_ip == IPv4Address("10.96.0.10")  # kubeadm's clusterDNS
    assert Services(IPv4Network("10.100.8.0/22")).dns_ip == IPv4Address("10.100.8.10")
    ports = services.node_ports
    assert (ports.start, ports[-1], len(ports)) == (30000, 32767, 2768)
    assert Services(node_port_range="80-80").node_ports == range(80, 81)


def test_an_unpinned_cri_tools_version_is_named_with_the_form_it_must_take() -> None:
    guide = load_lab(LABS / "guide-centos7.yaml")
    assert guide.kubernetes is not None
    k8s = dataclasses.replace(guide.kubernetes, cri_tools_version="1.13")
    assert list(validate_cni_package(guide, k8s)) == [
        Problem(
            "kubernetes.cri_tools_version",
            "1.13",
            "must be an rpm version-release like 1.13.0-0 (unpinned, yum takes the newest)",
        )
    ]


@pytest.mark.parametrize(
    ("cidr", "problem"),
    [
        (
            "10.96.0.0/11",
            (
                "is larger than the API server allows (a /12 at most: --service-cluster-ip-range)",
                "use a /12 or smaller, e.g. 10.96.0.0/12 (kubeadm's default)",
            ),
        ),
        ("10.96.0.0/12", None),
        ("10.96.0.0/28", None),
        (
            "10.96.0.0/29",
            (
                "has no 10th address for the cluster DNS (kubeadm puts it there): a /28 at least",
                "use e.g. 10.96.0.0/12 (kubeadm's default)",
            ),
        ),
    ],
)
def test_a_service_cidr_must_fit_the_api_server_and_hold_the_dns_address(
    cidr: str, problem: tuple[str, str] | None
) -> None:
    found = list(check_service_cidr("services.cidr", IPv4Network(cidr)))
    assert found == ([Problem("services.cidr", cidr, *problem)] if problem else [])
