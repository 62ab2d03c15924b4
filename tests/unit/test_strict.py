"""The strict decoder's problems to the letter: each primitive's refusal with its fix (or none),
the one-line text bound on both sides, how a value of any type is named, and `decode` over a
dataclass: a required field said with its type, a Literal, a tuple, an unknown key that is no
text, and the text rules a caller gives reaching every field and item."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import pytest

from lab.model.problems import Problem
from lab.model.strict import (
    ANY_TEXT,
    ONE_LINE,
    Ambiguous,
    DecodeError,
    TextRules,
    any_address,
    any_network,
    decode,
    integer,
    ipv4_network,
    kind_of,
    mapping,
    text,
)


def refusal(decoder: Callable[..., object], value: object, *args: object) -> Problem:
    with pytest.raises(DecodeError) as e:
        decoder(value, "vm.x", *args)
    return e.value.problem


# --- primitives ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message", "fix"),
    [
        (True, "was read as true or false, not as text", "quote it"),
        (1.5, "was read as a number, not as text", "put it in quotes: '1.5'"),
        (None, "must be text, not empty (null)", ""),
    ],
    ids=["bool", "number", "null"],
)
def test_text_refuses_a_value_read_as_another_type(value: object, message: str, fix: str) -> None:
    assert refusal(text, value) == Problem("vm.x", value, message, fix)


@pytest.mark.parametrize(
    ("value", "message", "fix"),
    [
        ("\x00", "contains the control character U+0000 NUL at position 0", ""),
        ("a\x00", "contains the control character U+0000 NUL at position 1", "remove it: 'a'"),
        ("  ", "has whitespace around it", "give a value"),
        (" a ", "has whitespace around it", "write 'a'"),
    ],
    ids=["control-alone", "control", "blank", "padded"],
)
def test_one_line_text_says_what_to_write_instead_or_nothing_when_nothing_is_left(
    value: str, message: str, fix: str
) -> None:
    assert refusal(text, value, ONE_LINE) == Problem("vm.x", value, message, fix)


def test_one_line_text_is_at_most_2048_characters() -> None:
    assert text("a" * 2048, "vm.x", ONE_LINE) == "a" * 2048
    assert refusal(text, "a" * 2049, ONE_LINE) == Problem(
        "vm.x", "a" * 2049, "is longer than 2048 characters; is it the value?"
    )


@pytest.mark.parametrize(
    ("value", "message", "fix"),
    [
        ("42", "must be an integer, not text", "remove the quotes"),
        (" 42 ", "must be an integer, not text", "remove the quotes"),
        ("4x", "must be an integer, not text", ""),
        (True, "must be an integer, not true or false", ""),
        (1.0, "must be an integer, not a number", ""),
    ],
    ids=["quoted", "quoted-padded", "text", "bool", "float"],
)
def test_integer_asks_to_remove_the_quotes_only_around_digits(
    value: object, message: str, fix: str
) -> None:
    assert refusal(integer, value) == Problem("vm.x", value, message, fix)


@pytest.mark.parametrize(
    ("value", "message", "fix"),
    [
        (
            5,  # issue 30: a number is no address, quoted or not
            "is a number (5), not an IPv4 CIDR; an IPv4 CIDR is an address, '/' and a prefix "
            "length, like 10.244.0.0/16",
            "write the address itself",
        ),
        (
            "10.0.0.0/33",
            "is not an IPv4 CIDR like 10.244.0.0/16 ('33' is not a valid netmask)",
            "",
        ),
        (
            "10.0.0.1/8",
            "is not an IPv4 CIDR like 10.244.0.0/16 (10.0.0.1/8 has host bits set)",
            "did you mean 10.0.0.0/8?",
        ),
    ],
    ids=["number", "netmask", "host-bits"],
)
def test_ipv4_network_suggests_a_network_only_for_host_bits(
    value: object, message: str, fix: str
) -> None:
    assert refusal(ipv4_network, value) == Problem("vm.x", value, message, fix)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, "empty (null)"),
        (Ambiguous("010", 8, "the number 8"), "the number 8"),
        (False, "true or false"),
        (3, "a number"),
        (3.5, "a number"),
        ("x", "text"),
        ({}, "a mapping"),
        ([], "a list"),
        ((), "a list"),
        (datetime.date(2021, 6, 14), "a date"),
        ({1}, "a set (!!set)"),
    ],
    ids=["null", "ambiguous", "bool", "int", "float", "str", "map", "list", "tuple", "date", "set"],
)
def test_kind_of_names_a_value_as_a_person_reads_it(value: object, kind: str) -> None:
    assert kind_of(value) == kind


# --- decode ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disk:
    size: int


@dataclass(frozen=True)
class Vm:
    name: str
    disk: Disk
    firmware: Literal["bios", "uefi"] = "bios"
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spare:
    cpus: int | None  # no default: required, though it may be null
    tags: tuple[str, ...]
    disk: Disk


def problems_of(tp: type, value: object, rules: TextRules = ONE_LINE) -> list[str]:
    problems: list[Problem] = []
    decode(tp, value, "vm", problems, rules)
    return [str(p) for p in problems]


DISK = {"size": 1}


@pytest.mark.parametrize(
    ("tp", "value", "problems"),
    [
        (Vm, {"name": "a"}, ["vm.disk: is required"]),
        (
            Spare,
            {},
            [
                "vm.cpus: is required (an integer, or null)",
                "vm.tags: is required (a list, each item text)",
                "vm.disk: is required",
            ],
        ),
        (
            Vm,
            {"name": "a", "disk": None},
            [
                "vm.disk: is empty (null), but it is required: a mapping (its keys: size); give it "
                "a value"
            ],
        ),
        (
            Spare,
            {"cpus": 1, "disk": DISK, "tags": None},
            [
                "vm.tags: is empty (null), but it is required: a list, each item text; give it a "
                "value"
            ],
        ),
        (
            Vm,
            {"name": "a", "disk": DISK, "tags": None},
            [
                "vm.tags: is empty (null): it holds a list, each item text; give it a value, or "
                "remove the key to take its default"
            ],
        ),
        (
            Vm,
            {"name": "a", "disk": DISK, "firmware": 5},
            ["vm.firmware = 5: was read as a number, not as text; put it in quotes: '5'"],
        ),
        (
            Vm,
            {"name": "a", "disk": DISK, "firmware": "uefi\n"},
            [
                "vm.firmware = 'uefi\\n': contains the control character U+000A line feed at "
                "position 4; remove it: 'uefi'"
            ],
        ),
        (
            Vm,
            {"name": "a", "disk": DISK, "firmware": "efi"},
            ["vm.firmware = 'efi': unknown value; use one of 'bios', 'uefi'"],
        ),
        (Vm, {"name": "a", "disk": DISK, "tags": "t"}, ["vm.tags = 't': must be a list, not text"]),
        (
            Vm,
            {"name": "a", "disk": DISK, 1: "x"},
            ["vm['1'] = 'x': unknown key; known keys: name, disk, firmware, tags"],
        ),
    ],
    ids=[
        *("nested-required", "required-typed", "nested-null", "tuple-null", "optional-null"),
        "literal-number",
        *("literal-one-line", "literal-unknown", "tuple-not-list", "non-text-key"),
    ],
)
def test_decode_says_each_problem_at_its_field(
    tp: type, value: object, problems: list[str]
) -> None:
    assert problems_of(tp, value) == problems


def test_the_text_rules_given_reach_every_field_and_item() -> None:
    raw = {"name": " a\tb", "disk": DISK, "tags": ["x\n"]}
    problems: list[Problem] = []
    assert decode(Vm, raw, "vm", problems, ANY_TEXT) == Vm(" a\tb", Disk(1), "bios", ("x\n",))
    assert problems == []
    short = TextRules(max_chars=3)
    assert problems_of(Vm, {"name": "abcd", "disk": DISK, "tags": ["abc", "abcd"]}, short) == [
        "vm.name = 'abcd': is longer than 3 characters; is it the value?",
        "vm.tags[1] = 'abcd': is longer than 3 characters; is it the value?",
    ]


def test_a_required_field_that_may_be_null_is_null_when_given_so() -> None:
    problems: list[Problem] = []
    got = decode(Spare, {"cpus": None, "tags": [], "disk": DISK}, "vm", problems)
    assert (got, problems) == (Spare(None, (), Disk(1)), [])


def test_a_type_the_decoder_has_no_rule_for_is_a_bug_named_with_the_type() -> None:
    with pytest.raises(TypeError) as e:
        decode(float, 1.5, "vm.x", [])
    assert str(e.value) == "the strict decoder has no rule for <class 'float'>"


def test_control_characters_are_named_with_their_code_point() -> None:
    cases = {"\r": "U+000D carriage return", "\x00": "U+0000 NUL", "\x85": "U+0085 unnamed"}
    for ch, name in cases.items():
        with pytest.raises(DecodeError) as e:
            text(f"ab{ch}c", "f", ONE_LINE)
        assert f"contains the control character {name} at position 2" in str(e.value)


def test_an_ambiguous_scalar_echoes_as_written_cut_after_60_characters() -> None:
    assert repr(Ambiguous("0" * 60, 0, "a number")) == "0" * 60
    # issue 30: a long number is cut with its digit count, never silently mid-number
    assert repr(Ambiguous("0" * 61, 0, "a number")) == "0" * 20 + "… (61 digits)"
    assert repr(Ambiguous("x" * 61, 0, "a date")) == "'" + "x" * 60 + "'… (61 characters)"


def test_an_ambiguous_scalar_where_a_number_is_meant_asks_for_plain_digits() -> None:
    with pytest.raises(DecodeError) as e:
        integer(Ambiguous("010", 8, "octal 8"), "vm.cpus")
    assert e.value.problem == Problem(
        "vm.cpus",
        Ambiguous("010", 8, "octal 8"),
        "was read as octal 8, not as an integer (YAML 1.1 reads it that way)",
        "write it in plain decimal digits (no leading 0, no '_' or ':')",
    )


def test_an_ambiguous_text_asks_for_quotes_showing_it_whole_or_not_at_all() -> None:
    with pytest.raises(DecodeError) as e:
        text(Ambiguous("1" * 60, 1, "a number"), "name")
    assert e.value.problem.fix == f"put it in quotes: {'1' * 60!r}"
    # issue 30: never the first 60 characters of a longer value (a number cut mid-number)
    with pytest.raises(DecodeError) as e:
        text(Ambiguous("1" * 61, 1, "a number"), "name")
    assert e.value.problem.fix == "put it in quotes"


def test_a_non_mapping_is_refused_where_it_is() -> None:
    assert mapping({"a": 1}, "x") == {"a": 1}
    with pytest.raises(DecodeError) as e:
        mapping([1], "vm")
    assert e.value.problem == Problem("vm", [1], "must be a mapping, not a list")


@pytest.mark.parametrize("decode", [any_address, any_network])
def test_an_address_that_is_no_text_is_refused_at_its_field(decode: object) -> None:
    with pytest.raises(DecodeError) as e:
        decode(5, "status.podIP")  # type: ignore[operator]
    assert e.value.problem.where == "status.podIP"


def test_a_list_where_one_cidr_is_meant_is_refused_at_its_field() -> None:
    # spec.podCIDRs is a list; spec.podCIDR holds one: a list there is not unwrapped
    assert refusal(any_network, ["10.244.1.0/24"]) == Problem(
        "vm.x", ["10.244.1.0/24"], "must be text, not a list"
    )
    assert refusal(any_network, True) == Problem(
        "vm.x", True, "was read as true or false, not as text", "quote it"
    )
