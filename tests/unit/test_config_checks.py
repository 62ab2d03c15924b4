"""The top-level, vm, os and runtime checks of a lab, each problem pinned to the letter
(field, value, message and fix): a changed word in any of them is a changed answer to a user."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab.model.config import check_lab
from lab.model.lookalike import explain

ROOT = Path(__file__).resolve().parents[2]
CI = yaml.safe_load((ROOT / "labs" / "ci-debian12.yaml").read_text())
GUIDE = yaml.safe_load((ROOT / "labs" / "guide-centos7.yaml").read_text())


def problems_with(base: dict[str, Any], edits: dict[str, object]) -> list[str]:
    """check_lab's problems for `base` with each dotted path of `edits` set to its value."""
    raw = copy.deepcopy(base)
    for path, value in edits.items():
        *parents, key = path.split(".")
        where = raw
        for part in parents:
            where = where[part]
        where[key] = value
    lab, problems = check_lab(raw, "x.yaml")
    assert (lab is None) == bool(problems)
    return [str(p) for p in problems]


def problems_of(base: dict[str, Any], path: str, value: object) -> list[str]:
    return problems_with(base, {path: value})


NAME = "must be lowercase letters, digits and '-' (<= 40)"


@pytest.mark.parametrize(
    ("name", "problems"),
    [
        (
            "lab-name-" + "x" * 32,
            [f"name = 'lab-name-{'x' * 32}': {NAME}; try 'lab-name-{'x' * 31}'"],
        ),
        ("lab_" * 10 + "more", [f"name = '{'lab_' * 10}more': {NAME}; try '{'lab-' * 9}lab'"]),
        ("-ab-", [f"name = '-ab-': {NAME}; try 'ab'"]),
        ("lab-name-" + "x" * 31, []),
    ],
    ids=["41-chars", "cut-at-a-dash", "dashes-outside", "40-chars"],
)
def test_the_lab_name_and_its_suggestion(name: str, problems: list[str]) -> None:
    assert problems_of(CI, "name", name) == problems


@pytest.mark.parametrize(
    ("path", "value", "problems"),
    [
        ("vm.box_version", "v1.0", ["vm.box_version = 'v1.0': must be a version like 2004.01"]),
        (
            "vm.box_build",
            "",
            [
                "vm.box_version = '': pin the box: a reproducible lab needs a version; set "
                "vm.box_version, or vm.box_build for a locally built box"
            ],
        ),
        (
            "vm.private_nic",
            "eth 1",
            [
                "vm.private_nic = 'eth 1': is not an interface name; Vagrant's private network "
                "is eth1 on these boxes"
            ],
        ),
        (
            "vm.boot_timeout_s",
            29,
            ["vm.boot_timeout_s = 29: must be between 30 and 86400 (24 hours)"],
        ),
        ("vm.boot_timeout_s", 30, []),
        ("vm.boot_timeout_s", 86400, []),
        (
            "vm.boot_timeout_s",
            86401,
            ["vm.boot_timeout_s = 86401: must be between 30 and 86400 (24 hours)"],
        ),
    ],
)
def test_the_vm_checks(path: str, value: object, problems: list[str]) -> None:
    assert problems_of(CI, path, value) == problems


def test_a_debian_lab_with_a_pod_network_it_cannot_wire() -> None:
    assert problems_of(CI, "pod_network.driver", "flannel") == [
        "pod_network.driver = 'flannel': the debian12 path has no Kubernetes: it wires pods "
        "itself; use driver: bgp or driver: host-routes or driver: vxlan",
        "pod_network.driver = 'flannel': flannel runs on Kubernetes: it needs a kubernetes "
        "section; add kubernetes, or use driver bgp or driver host-routes or driver vxlan",
        "pod_network.flannel: is required when driver is flannel; copy the flannel section of "
        "labs/guide-centos7.yaml",
    ]


def test_the_guide_lab_keeps_dockers_runtime_and_may_leave_its_gpg_key_to_the_box() -> None:
    assert problems_of(GUIDE, "runtime", "containerd") == [
        "runtime = 'containerd': the el7 path does not install containerd; it keeps the "
        "guide's Docker (kubernetes.docker); remove runtime (or set runtime: none), or use "
        "os.family debian12"
    ]
    assert problems_of(GUIDE, "os.gpgkey_url", "") == []


# U+0660-U+0669: digits to Python's \d (and int()), not to yum, apt or an http client
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x660 + d) for d in range(10)))


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        ("kubernetes.version", "1.18.1", "must be MAJOR.MINOR.PATCH; e.g. 1.18.1 (the guide's)"),
        ("vm.box_version", "2004.01", "must be a version like 2004.01"),
        ("kubernetes.docker.version", "19.03.15", "must look like 19.03.15"),
        (
            "kubernetes.docker.containerd_version",
            "1.4.3",
            "must be a version like 1.4.3 (unpinned, yum takes the newest el7 build)",
        ),
        (
            "kubernetes.cni_package_version",
            "0.8.7-0",
            "must be an rpm version-release like 0.8.7-0",
        ),
        ("pod_network.flannel.version", "v0.14.0", "must look like v0.14.0"),
    ],
    ids=["kubernetes", "box", "docker", "containerd", "cni-package", "flannel"],
)
def test_a_version_is_written_in_ascii_digits(path: str, value: str, problem: str) -> None:
    assert problems_of(GUIDE, path, value) == []
    other = value.translate(ARABIC_INDIC)
    # issue 30: the characters that are not what they look like are named by code point
    message, _, fix = problem.partition("; ")
    named = f"{message} (it contains {explain(other)})" + (f"; {fix}" if fix else "")
    assert problems_of(GUIDE, path, other) == [f"{path} = {other!r}: {named}"]


def test_a_registry_port_is_written_in_ascii_digits() -> None:
    port = "5000".translate(ARABIC_INDIC)
    path = "kubernetes.image_repository"
    assert problems_of(GUIDE, path, "registry.example:5000/google_containers") == []
    value = f"registry.example:{port}/google_containers"
    assert problems_of(GUIDE, path, value) == [
        f"{path} = '{value}': is not a registry path (it contains {explain(value)}); e.g. "
        "registry.aliyuncs.com/google_containers"
    ]
    image = "pod_network.flannel.image"
    assert problems_of(GUIDE, image, "registry.example:5000/coreos/flannel:v0.14.0") == []
    value = f"registry.example:{port}/coreos/flannel:v0.14.0"
    assert problems_of(GUIDE, image, value) == [
        f"{image} = '{value}': is not a container image reference (it contains "
        f"{explain(value)}); use registry/repository:tag, e.g. quay.io/coreos/flannel:v0.14.0"
    ]
