"""The strict decoder's small helpers, each answer pinned: where a key is shown, which known key
an unknown one is taken for, whether a partly decoded value still holds a BROKEN part anywhere
(so no check reads it), and what stops a check run on such a value."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Optional, Union

import pytest

from lab.model.problems import Problem
from lab.model.strict import (
    BROKEN,
    BrokenField,
    _describe_type,
    _nullable,
    _unknown_key,
    closest,
    contains_broken,
    guarded,
    key_path,
    kind_of,
)


@pytest.mark.parametrize(
    ("where", "key", "shown"),
    [
        ("vm", "cpus", "vm.cpus"),
        ("", "nodes", "nodes"),
        ("a.b", "x-y_z.1", "a.b.x-y_z.1"),
        ("vm", "CPUs", "vm.CPUs"),
        ("vm", "has space", "vm['has space']"),
        ("vm", "", "vm['']"),
        ("vm", 7, "vm['7']"),
        ("vm", None, "vm['None']"),
        ("vm", "k" * 64, f"vm.{'k' * 64}"),
        ("vm", "k" * 65, f"vm[{'k' * 30!r}… (65 characters)]"),
        ("vm", ("t",) * 20, f"vm[{repr(('t',) * 20)[:30]!r}… (100 characters)]"),
    ],
    ids=["plain", "top", "dotted", "upper", "space", "empty", "int", "none", "64", "65", "repr"],
)
def test_key_path(where: str, key: object, shown: str) -> None:
    assert key_path(where, key) == shown


@dataclass(frozen=True)
class Inner:
    value: object


@dataclass(frozen=True)
class Outer:
    name: str
    inner: object


@pytest.mark.parametrize(
    ("value", "broken"),
    [
        (BROKEN, True),
        ("text", False),
        (None, False),
        ((1, BROKEN), True),
        ([1, 2], False),
        ([[BROKEN]], True),
        ({"a": 1}, False),
        ({"a": BROKEN}, True),
        (Outer("x", Inner(1)), False),
        (Outer("x", Inner(BROKEN)), True),
        (Outer("x", [Inner(2), {"k": (BROKEN,)}]), True),
        (Inner, False),  # a dataclass type, not a value
    ],
    ids=[  # named by hand: BROKEN refuses pytest's own probing for an id
        "broken",
        "text",
        "none",
        "tuple",
        "list",
        "nested-list",
        "mapping",
        "mapping-value",
        "dataclass",
        "dataclass-field",
        "deep",
        "dataclass-type",
    ],
)
def test_contains_broken_looks_everywhere_in_a_decoded_value(value: object, broken: bool) -> None:
    assert contains_broken(value) is broken


@pytest.mark.parametrize(
    ("key", "known", "taken_for"),
    [
        ("nmae", ["name", "nodes", "vm"], "name"),
        ("k" * 100, ["k" * 43], "k" * 43),  # 2 * 43 / 143 = 0.601: close enough
        ("k" * 100, ["k" * 42], None),  # 2 * 42 / 142 = 0.592: not
        ("k" * 100 + "z" * 5000, ["k" * 43], "k" * 43),  # only the first 100 characters count
        ("name", [], None),
    ],
    ids=["typo", "cutoff-in", "cutoff-out", "first-100", "none-known"],
)
def test_an_unknown_key_is_taken_for_the_closest_known_one(
    key: str, known: list[str], taken_for: str | None
) -> None:
    assert closest(key, known) == taken_for


FIRST = Problem("nodes[0].name", "n1", "is taken")
LAST = Problem("nodes[1].name", "n1", "is taken")


def check(*problems: Problem, then: Exception | None = None) -> Iterator[Problem]:
    yield from problems
    if then is not None:
        raise then


@pytest.mark.parametrize("partial", [True, False])
def test_a_check_that_touches_a_broken_field_stops_there_with_what_it_found(partial: bool) -> None:
    assert list(guarded(check(FIRST, then=BrokenField()), partial)) == [FIRST]


def test_on_a_partial_value_a_type_error_stops_the_check_too() -> None:
    assert list(guarded(check(FIRST, then=TypeError("expected str")), partial=True)) == [FIRST]


def test_on_a_complete_value_a_type_error_is_a_bug_and_is_raised() -> None:
    seen = guarded(check(FIRST, then=TypeError("expected str")), partial=False)
    assert next(seen) == FIRST
    with pytest.raises(TypeError, match=r"^expected str$"):
        next(seen)


def test_a_problem_showing_a_broken_value_is_left_out_and_the_check_goes_on() -> None:
    hidden = Problem("nodes", (BROKEN,), "is empty")
    # (compared by where: a BROKEN value refuses to be compared or shown)
    assert [p.where for p in guarded(check(hidden, LAST), partial=True)] == ["nodes[1].name"]


@pytest.mark.parametrize(
    ("tp", "nullable"),
    [
        (int | None, True),
        (Optional[str], True),  # noqa: UP045 (the typing spelling is a Union too)
        (Union[int, str, None], True),  # noqa: UP007
        (int | str, False),  # a union without None: null is no value of it
        (int, False),
        (tuple[None, int], False),  # None among the arguments of no union
        (list[str], False),
    ],
)
def test_a_key_may_be_null_only_when_its_type_is_a_union_with_none(
    tp: object, nullable: bool
) -> None:
    assert _nullable(tp) is nullable


def test_an_unknown_key_with_a_look_alike_and_no_close_key_lists_the_known_ones() -> None:
    found = _unknown_key("vm", "zzz\u043e", 1, ["cpus", "memory"])
    assert found.message == (
        "unknown key (it contains U+043E CYRILLIC SMALL LETTER O, which looks like 'o', at "
        "position 3 (after 'zzz'))"
    )
    assert found.fix == "known keys: cpus, memory"


@dataclass(frozen=True)
class _Shape:
    name: str
    ip: str
    source: str = ""  # where it was read: never a key of the file
    seen: int = field(default=0, init=False)


def test_a_fields_type_is_told_in_the_words_of_a_yaml_file() -> None:
    assert _describe_type(Optional[int]) == "an integer, or null"  # noqa: UP045
    assert _describe_type(int | str) == "a value"  # a union of two kinds
    assert _describe_type(Union[int, str, None]) == "a value"  # noqa: UP007
    assert _describe_type(_Shape) == "a mapping (its keys: name, ip)"
    assert _describe_type(float) == "a value"  # no field holds one
    assert _describe_type(tuple[_Shape, ...]) == "a list, each item a mapping (its keys: name, ip)"


def test_a_value_of_a_kind_yaml_has_no_name_for_says_so() -> None:
    assert kind_of(complex(1, 2)) == "a value of a kind YAML has no name for here"
    assert kind_of(frozenset()) == "a set (!!set)"


def test_what_shows_nothing_is_dropped_and_other_spaces_made_plain() -> None:
    from lab.model.strict import _cleaned

    # line and paragraph separators are spaces; a Hangul filler is a letter that shows nothing
    assert _cleaned("a\u2028b\u2029c") == "a b c"
    assert _cleaned(" a\u3164b\u200bc ") == "abc"
    assert _cleaned("a\u00a0b\tc") == "a b c"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (10**30, "10000000000000000000… (31 digits)"),  # as the problem echoes it
        (1.5, "1.5"),
    ],
)
def test_a_number_for_an_address_is_shown_as_written(value: object, shown: str) -> None:
    from lab.model.strict import DecodeError, ipv4_address

    with pytest.raises(DecodeError) as err:
        ipv4_address(value, "nodes[0].ip")
    assert str(err.value).startswith(f"nodes[0].ip = {shown}: is a number ({shown}), not an IPv4")


def test_an_oversized_number_for_an_address_is_shown_by_its_text() -> None:
    from lab.model.strict import DecodeError, ipv4_network
    from lab.model.yamldoc import _oversized

    digits = "1" * 25
    with pytest.raises(DecodeError) as err:
        ipv4_network(_oversized(digits), "pod_network.cidr")
    assert f": is a number ({digits}), not an IPv4 CIDR" in str(err.value)


def test_a_boolean_for_an_address_is_told_at_its_field() -> None:
    from lab.model.strict import DecodeError, ipv4_address, ipv4_network

    for decode in (ipv4_address, ipv4_network):
        with pytest.raises(DecodeError) as err:
            decode(True, "nodes[0].ip")
        assert (
            str(err.value) == "nodes[0].ip = True: was read as true or false, not as text; quote it"
        )
