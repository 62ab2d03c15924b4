"""Lab files: the shipped ones are valid; every bad one names the field, the value and the fix."""

from __future__ import annotations

import copy
import dataclasses
import re
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml

from lab.model.config import (
    Lab,
    LabError,
    Services,
    check_lab,
    parse_lab,
    suggest_dns1123,
    validate_cni_package,
    validate_lab,
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
    assert [str(p) for p in info.value.problems] == [
        "network.private = '10.10.40.0/24': overlaps host network 10.10.0.0/16 (a host "
        "interface); pick a range no host interface uses"
    ]


def test_unreadable_and_non_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="cannot be read") as info:
        load_lab(tmp_path / "missing.yaml")
    assert [(p.where, p.value, p.message, p.fix) for p in info.value.problems] == [
        ("<file>", str(tmp_path / "missing.yaml"), "cannot be read (No such file or directory)", "")
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [\n")
    with pytest.raises(LabError, match="not valid YAML") as info:
        load_lab(bad)
    assert str(info.value) == (
        f"{bad}: 1 problem(s)\n  - line 2, column 1: is not valid YAML: while parsing a flow "
        "node: expected the node content, but found '<stream end>'"
    )


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


ROOT = Path(__file__).resolve().parents[2]


def test_an_unknown_node_is_named_with_the_labs_nodes() -> None:
    lab = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    with pytest.raises(KeyError) as e:
        lab.node("node9")
    assert e.value.args == ("lab 'ci-debian12' has no node 'node9'; nodes: ('node1', 'node2')",)


def test_a_lab_read_without_a_file_name_comes_from_lab() -> None:
    lab, _ = parse_lab(yaml.safe_load((ROOT / "labs" / "ci-debian12.yaml").read_text()))
    assert lab is not None
    assert lab.source == "<lab>"


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("-Node_1-", "node-1"),
        ("_" * 200 + "x", "node"),  # only the first 200 characters are looked at
        ("a" * 62 + "_b", "a" * 62),  # cut at 63, no '-' left at the end
    ],
)
def test_a_hostname_suggestion_at_its_cuts(name: str, suggested: str) -> None:
    assert suggest_dns1123(name) == suggested


def test_a_lab_error_lists_one_problem_a_line() -> None:
    from lab.model.config import LabError
    from lab.model.problems import Problem

    err = LabError("lab.yaml", [Problem("a", message="x"), Problem("b", 1, "y", "z")])
    assert str(err) == "lab.yaml: 2 problem(s)\n  - a: x\n  - b = 1: y; z"


def test_parse_lab_takes_a_document_already_read() -> None:
    raw = yaml.safe_load((ROOT / "labs" / "ci-debian12.yaml").read_text())
    lab, problems = parse_lab(raw, "ci.yaml")
    assert isinstance(lab, Lab)
    assert (lab.name, lab.source, problems) == ("ci-debian12", "ci.yaml", [])
    raw["vm"]["cpus"] = "two"
    lab, problems = parse_lab(raw, "ci.yaml")
    assert lab is None
    assert [str(p) for p in problems] == ["vm.cpus = 'two': must be an integer, not text"]
    lab, problems = parse_lab([1], "list.yaml")
    assert lab is None
    assert [str(p) for p in problems] == [
        "<file> = [1]: must be a mapping of keys to values, not a list; its keys: name, vm, "
        "network, nodes, os, pod_network, description, kubernetes, runtime, oci_runtime, services"
    ]


CI = yaml.safe_load((ROOT / "labs" / "ci-debian12.yaml").read_text())

GUIDE = yaml.safe_load((ROOT / "labs" / "guide-centos7.yaml").read_text())


def test_a_lab_says_which_file_it_came_from() -> None:
    lab, problems = check_lab(CI, "labs/ci-debian12.yaml")
    assert lab is not None
    assert (lab.source, problems) == ("labs/ci-debian12.yaml", [])
    lab, problems = check_lab(CI)
    assert lab is not None
    assert (lab.source, problems) == ("<lab>", [])


def test_an_odd_top_level_key_is_named_by_itself() -> None:
    raw = copy.deepcopy(CI)
    raw["bad key"] = 1
    assert [str(p) for p in check_lab(raw, "x.yaml")[1]] == [
        "['bad key'] = 1: unknown key; known keys: name, vm, network, nodes, os, pod_network, "
        "description, kubernetes, runtime, oci_runtime, services"
    ]


def test_a_field_left_broken_stops_only_the_check_that_reads_it() -> None:
    # cni_package_version 7 is no text: the structure leaves it broken, and the check that
    # matches it against a pattern stops there, while every other section is still checked
    raw = copy.deepcopy(GUIDE)
    raw["kubernetes"]["version"] = "1.18"
    raw["kubernetes"]["cni_package_version"] = 7
    raw["vm"]["private_nic"] = "eth 1"
    assert [str(p) for p in check_lab(raw, "x.yaml")[1]] == [
        "kubernetes.cni_package_version = 7: was read as a number, not as text; put it in "
        "quotes: '7'",
        "vm.private_nic = 'eth 1': is not an interface name; Vagrant's private network is eth1 "
        "on these boxes",
        "kubernetes.version = '1.18': must be MAJOR.MINOR.PATCH; e.g. 1.18.1 (the guide's)",
    ]


def test_a_check_failing_on_a_complete_lab_is_a_bug_to_see_not_a_silence() -> None:
    # a lab built in code with a value no file can give: validate_lab does not swallow the
    # failure and answer with a shorter list of problems
    lab, _ = check_lab(GUIDE)
    assert lab is not None
    assert lab.kubernetes is not None
    odd = dataclasses.replace(
        lab, kubernetes=dataclasses.replace(lab.kubernetes, cni_package_version=None)
    )
    with pytest.raises(TypeError, match="expected string or bytes-like object"):
        validate_lab(odd)


def test_a_node_address_check_failing_on_a_complete_lab_is_not_silenced_either() -> None:
    # the address check is guarded apart from the node's other checks, as strictly: an
    # address no file can give (unhashable) fails loudly, not as a node left unchecked
    lab, _ = check_lab(GUIDE)
    assert lab is not None
    node = dataclasses.replace(lab.nodes[1], ip=[])
    odd = dataclasses.replace(lab, nodes=(lab.nodes[0], node, *lab.nodes[2:]))
    with pytest.raises(TypeError, match=r"^unhashable type: 'list'$"):
        validate_lab(odd)
