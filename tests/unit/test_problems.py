"""A problem as a person reads it, each bound on both sides: an echoed value whole up to 120
characters and cut one past, a rendered line whole up to LINE_CHARS and cut one past, the list
of problems whole up to its limit and counted one past; a value whose repr never ends is named
by its type, not a crash."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.model import problems
from lab.model.problems import ABSENT, LINE_CHARS, Problem, echo, render_problems


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (["a" * 56, "b" * 56], "['" + "a" * 56 + "', '" + "b" * 56 + "']"),  # 120 characters
        (["a" * 56, "b" * 57], ("['" + "a" * 56 + "', '" + "b" * 57 + "']")[:120] + "…"),
    ],
    ids=["120-whole", "121-cut"],
)
def test_an_echoed_value_is_whole_up_to_120_characters_and_cut_after(
    value: object, shown: str
) -> None:
    assert echo(value) == shown


def _iterate_forever(self: list[object]) -> Iterator[object]:
    return iter(self)  # calls itself: iter() of this type is this function


# a list-like value whose iteration recurses without end, named `list` so that reprlib shows it
# with its code for lists, which (unlike its code for other objects) lets the error through
Looping = type("list", (list,), {"__iter__": _iterate_forever})


def test_a_value_whose_repr_recurses_without_end_is_shown_by_its_type() -> None:
    assert echo(Looping([1])) == "<list>"
    assert str(Problem("nodes", Looping([1]), "must be a list")) == "nodes = <list>: must be a list"


@pytest.mark.parametrize(
    ("message", "line"),
    [
        ("m" * (LINE_CHARS - 3), "w: " + "m" * (LINE_CHARS - 3)),
        ("m" * (LINE_CHARS - 2), "w: " + "m" * (LINE_CHARS - 3) + "…"),
    ],
    ids=["on-the-bound", "one-past"],
)
def test_a_rendered_problem_is_whole_up_to_line_chars_and_cut_after(
    message: str, line: str
) -> None:
    assert str(Problem("w", message=message)) == line


def test_fifty_problems_are_listed_whole_and_one_more_is_counted() -> None:
    problems = [Problem(f"nodes[{i}]", message="bad") for i in range(51)]
    listed = [f"  - nodes[{i}]: bad" for i in range(50)]
    assert render_problems(problems[:50]) == listed
    assert render_problems(problems) == [*listed, "  ... and 1 more problem(s)"]
    assert render_problems(problems[:2], limit=2) == listed[:2]
    assert render_problems(problems[:5], limit=2) == [*listed[:2], "  ... and 3 more problem(s)"]


def test_absent_reads_as_absent() -> None:
    assert repr(ABSENT) == "<absent>"
    assert str(Problem("nodes", message="a lab needs at least one node")) == (
        "nodes: a lab needs at least one node"
    )


def test_an_echoed_value_keeps_four_items_two_levels_and_24_digits() -> None:
    assert echo([1, 2, 3, 4, 5]) == "[1, 2, 3, 4, ...]"
    assert echo({"a": {"b": {"c": 1}}}) == "{'a': {'b': {...}}}"
    assert echo((1, 2, 3, 4)) == "(1, 2, 3, 4)"
    assert echo(10**24) == "10000000000000000000… (25 digits)"  # never cut mid-number
    assert echo(10**23) == "100000000000000000000000"  # 24 digits
    assert echo(["y" * 70]) == "['" + "y" * 60 + "'… (70 characters)]"


def test_an_echo_built_afresh_keeps_its_bounds() -> None:
    echo = problems._Echo()
    assert echo.repr([1, 2, 3, 4, 5]) == "[1, 2, 3, 4, ...]"
    assert echo.repr({"a": {"b": {"c": 1}}}) == "{'a': {'b': {...}}}"
    assert echo.repr(10**24) == "10000000000000000000… (25 digits)"  # never cut mid-number
    assert echo.repr(["y" * 61]) == "['" + "y" * 60 + "'… (61 characters)]"
    assert echo.repr(object.__new__(type("T", (), {"__repr__": lambda s: "z" * 70}))) == (
        "z" * 28 + "..." + "z" * 29
    )


def test_a_long_integer_is_echoed_by_its_digits_and_a_boolean_by_its_name() -> None:
    assert echo(10**30) == "10000000000000000000… (31 digits)"
    assert echo(True) == "True"
