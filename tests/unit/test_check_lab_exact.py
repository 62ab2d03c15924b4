"""`check_lab` and `validate_lab`, the entry points: where a lab says it came from, how a
top-level key is named, and what a check does when it meets a field the structure left broken
(it stops alone) or a value no file could give (it fails loudly)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import yaml

from lab.model.config import check_lab, validate_lab

ROOT = Path(__file__).resolve().parents[2]
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
