"""The strict decoder (lab/model/strict.py) speaks the file's language (issue 30): YAML's
types ("a mapping", "a list", "null"), never Python's (tuple, dict, NoneType); a section set
to null says so and what it must hold, and offers to remove only a key that has a default; a
number too long for any field says the limit and is shown cut with its digit count; an address
written as a number is told it is no address, and what one looks like."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from lab.model.config import Lab
from lab.model.labfile import lab_from_text
from lab.model.yamldoc import MAX_NUMBER_DIGITS
from tests import fuzz

ROOT = Path(__file__).resolve().parents[2]
CI = (ROOT / "labs" / "ci-debian12.yaml").read_text()
GUIDE = (ROOT / "labs" / "guide-centos7.yaml").read_text()
SECTIONS = ("vm", "network", "nodes", "os", "pod_network")
PYTHON_WORDS = re.compile(
    r"\b(tuple|dict|NoneType|list\[|int \||str \||bool\b(?! )|IPv4Network|IPv4Address"
    r"|Literal\[|<class|typing\.|Optional\[|float\b)"
)


def problems(text: str) -> list[str]:
    lab, found = lab_from_text(text)
    assert lab is None
    return [str(p) for p in found]


def section_null(text: str, section: str) -> str:
    """`text` with top-level `section` set to null: its key alone, its block gone."""
    doc = yaml.safe_load(text)
    doc[section] = None
    return yaml.safe_dump(doc, sort_keys=False)


HOLDS = {
    "vm": "a mapping (its keys: box, box_version, box_url, box_build, hypervisor, cpus, "
    "memory_mib, private_nic, boot_timeout_s)",
    "network": "a mapping (its keys: private, management, segments, router)",
    "nodes": "a list, each item a mapping (its keys: name, ip, role, cpus, memory_mib)",
    "os": "a mapping (its keys: family, vault_url, gpgkey_url)",
    "pod_network": "a mapping (its keys: driver, cidr, subnet_len, bridge, mtu, cni_version, "
    "flannel)",
}


@pytest.mark.parametrize("section", SECTIONS)
def test_a_required_section_set_to_null_says_so_and_what_it_holds(section: str) -> None:
    (found,) = [p for p in problems(section_null(CI, section)) if p.startswith(f"{section}:")]
    assert found == (
        f"{section}: is empty (null), but it is required: {HOLDS[section]}; give it a value"
    )
    assert not PYTHON_WORDS.search(found), found


def test_what_a_null_section_must_hold_is_said_in_yaml_words() -> None:
    (nodes,) = [p for p in problems(section_null(CI, "nodes")) if p.startswith("nodes:")]
    assert nodes == (
        "nodes: is empty (null), but it is required: a list, each item a mapping (its keys: "
        "name, ip, role, cpus, memory_mib); give it a value"
    )
    (vm,) = [p for p in problems(section_null(CI, "vm")) if p.startswith("vm:")]
    assert vm == (
        "vm: is empty (null), but it is required: a mapping (its keys: box, box_version, "
        "box_url, box_build, hypervisor, cpus, memory_mib, private_nic, boot_timeout_s); give it "
        "a value"
    )


def test_an_optional_key_set_to_null_may_be_removed_to_take_its_default() -> None:
    (found,) = problems(CI.replace("  cpus: 1\n", "  cpus:\n"))
    assert found == (
        "vm.cpus: is empty (null): it holds an integer; give it a value, or remove the key to "
        "take its default"
    )


def test_a_null_list_item_is_said_as_such() -> None:
    (found,) = problems(CI.replace("  - {name: node2, ip: 10.10.40.242}", "  - null"))
    assert found == (
        "nodes[1]: is empty (null): it holds a mapping (its keys: name, ip, role, cpus, "
        "memory_mib); give it a value, or remove the item"
    )


@pytest.mark.parametrize(
    ("tag", "problem"),
    [
        ("!!binary aGVsbG8=", "name = b'hello': must be text, not binary data (!!binary)"),
        ("!!set {a}", "name = {'a'}: must be text, not a set (!!set)"),
    ],
)
def test_what_only_explicit_tags_make_is_named_by_its_tag(tag: str, problem: str) -> None:
    assert problems(CI.replace("name: ci-debian12", f"name: {tag}")) == [problem]


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [MAX_NUMBER_DIGITS + 1, 4301, 20_000])
def test_a_number_longer_than_any_field_holds_says_the_limit_and_its_digit_count(
    count: int,
) -> None:
    number = "9" * count
    (found,) = problems(CI.replace("  cpus: 1\n", f"  cpus: {number}\n"))
    shown = number if count <= 60 else f"99999999999999999999… ({count} digits)"
    assert found == (
        f"vm.cpus = {shown}: is a number {count} digits long (a lab file's numbers have at most "
        f"{MAX_NUMBER_DIGITS}); is this the value?"
    )


def test_a_float_longer_than_any_field_holds_is_never_converted_and_says_the_limit() -> None:
    number = "1." + "5" * MAX_NUMBER_DIGITS  # one digit over, with a point: a float
    (found,) = problems(CI.replace("  cpus: 1\n", f"  cpus: {number}\n"))
    assert found == (
        f"vm.cpus = {number}: is a number "
        f"{MAX_NUMBER_DIGITS + 1} digits long (a lab file's numbers have at most "
        f"{MAX_NUMBER_DIGITS}); is this the value?"
    )


def test_a_long_number_where_text_is_meant_is_never_cut_mid_number() -> None:
    number = "1" * 3000
    (found,) = problems(CI.replace("name: ci-debian12", f"name: {number}"))
    assert found == (
        "name = 11111111111111111111… (3000 digits): was read as a number 3000 digits long (a "
        f"lab file's numbers have at most {MAX_NUMBER_DIGITS}), not as text; put it in quotes "
        "if it is text"
    )
    assert number[:61] not in found


def test_a_long_number_inside_a_list_is_cut_with_its_digit_count() -> None:
    (found,) = problems(CI.replace("  cpus: 1\n", f"  cpus: [{'7' * 70}]\n"))
    assert found == "vm.cpus = [77777777777777777777… (70 digits)]: must be an integer, not a list"


# --- addresses written as numbers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "shown"),
    [("167772161", "167772161"), ("10", "10"), ("10.10", "10.1"), ("1.5e+3", "1500.0")],
)
def test_an_address_written_as_a_number_is_told_it_is_no_address(written: str, shown: str) -> None:
    (found,) = problems(CI.replace("ip: 10.10.40.242}", f"ip: {written}}}"))
    assert found == (
        f"nodes[1].ip = {written}: is a number ({shown}), not an IPv4 address; an IPv4 address "
        "is four numbers from 0 to 255 joined by dots, like 10.10.10.241; write the address "
        "itself"
    )


def test_a_cidr_written_as_a_number_is_told_what_a_cidr_looks_like() -> None:
    (found,) = problems(CI.replace("  private: 10.10.40.0/24", "  private: 10.10"))
    assert found == (
        "network.private = 10.10: is a number (10.1), not an IPv4 CIDR; an IPv4 CIDR is an "
        "address, '/' and a prefix length, like 10.244.0.0/16; write the address itself"
    )


# --- never a Python type's name --------------------------------------------------------------

yaml_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**25), 10**25)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=4)
    | st.dates(),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=6,
)


@fuzz.fixed(30)
@given(st.sampled_from(sorted(Lab.__dataclass_fields__.keys() - {"source"})), yaml_values)
def test_no_problem_names_a_python_type_whatever_a_section_holds(key: str, value: object) -> None:
    doc = yaml.safe_load(GUIDE)
    doc[key] = value
    _, found = lab_from_text(yaml.safe_dump(doc, sort_keys=False))
    for problem in found:
        assert not PYTHON_WORDS.search(f"{problem.message}; {problem.fix}"), str(problem)
