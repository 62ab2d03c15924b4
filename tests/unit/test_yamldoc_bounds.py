"""The YAML reader's bounds, each on both sides and each problem to the letter: size as written,
nesting as written, a self-containing alias, and size and depth once aliases are expanded."""

from __future__ import annotations

import pytest

from lab.model.yamldoc import MAX_CHARS, MAX_DEPTH, MAX_VALUES, read_yaml


def problems(text: str) -> list[str]:
    data, found = read_yaml(text)
    if found:
        assert data is None, "a bound crossed stops the reading: no data comes with it"
    return [str(p) for p in found]


def alias_chain(links: int) -> str:
    """k0 is [1]; each next key is a list holding the previous one: nesting grows by aliases."""
    lines = ["k0: &a0 [1]"] + [f"k{i}: &a{i} [*a{i - 1}]" for i in range(1, links)]
    return "\n".join(lines) + "\n"


def shared_list(values: int, tail: int) -> str:
    """A list of one list of `values` scalars, written once and referred to twice, then `tail`
    scalars: 1 + 2 * (1 + values) + tail values once expanded."""
    return "[&a [" + ",".join(["1"] * values) + "], *a" + ", 1" * tail + "]\n"


def test_a_file_longer_than_the_bound_is_refused_by_its_length() -> None:
    assert problems("x" * (MAX_CHARS + 1)) == [
        f"<file>: is longer than {MAX_CHARS} characters ({MAX_CHARS + 1}): a lab file is a few "
        "thousand; is this the right file?"
    ]
    assert problems("#" * MAX_CHARS) == []


@pytest.mark.parametrize("prefix", ["", "\n\n\nk: "], ids=["line-1", "line-4"])
def test_nesting_as_written_is_bounded_and_named_at_its_line(prefix: str) -> None:
    line = prefix.count("\n") + 1
    deep = MAX_DEPTH + 1
    assert problems(prefix + "[" * deep + "]" * deep) == [
        f"line {line}: is nested more than {MAX_DEPTH} levels deep; a lab file is about 5 "
        "levels deep: is this the right file?"
    ]
    assert problems(prefix + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)) == []


def test_a_closed_collection_gives_back_only_its_own_level() -> None:
    # `[[[],`: the inner list closed leaves two open, so the 30th opening after it is level 32
    def after_a_closed_list(opens: int) -> str:
        return "[[[]," + "[" * opens + "]" * opens + "]]"

    assert problems(after_a_closed_list(MAX_DEPTH - 2)) == []
    assert problems(after_a_closed_list(MAX_DEPTH - 1)) == [
        f"line 1: is nested more than {MAX_DEPTH} levels deep; a lab file is about 5 levels "
        "deep: is this the right file?"
    ]


def test_a_file_of_too_many_values_stops_being_read_where_it_crosses_the_bound() -> None:
    assert problems("- 1\n" * (2 * MAX_VALUES)) == [
        f"line {2 * MAX_VALUES - 1}: has more than {MAX_VALUES} values (stopped reading here); "
        "a lab file has a few hundred: is this the right file?"
    ]


def test_an_alias_that_contains_itself_is_named() -> None:
    assert problems("a: 1\nb: &x [*x]\n") == [
        "line 2: is an alias that contains itself: the value would be infinite; refer to the "
        "anchor from outside its own value"
    ]


def test_nesting_through_aliases_is_bounded() -> None:
    assert problems(alias_chain(MAX_DEPTH - 2)) == []  # root + 30 lists + the scalar: 32
    assert problems(alias_chain(MAX_DEPTH - 1)) == [
        f"<file>: is nested more than {MAX_DEPTH} levels deep through its aliases; a lab file "
        "is about 5 levels deep"
    ]


def test_values_counted_through_aliases_are_bounded() -> None:
    values = (MAX_VALUES - 4) // 2  # 9998: the root, the list twice and one scalar are 20000
    assert problems(shared_list(values, 1)) == []
    assert problems(shared_list(values, 2)) == [
        f"<file>: expands to more than {MAX_VALUES} values through its aliases (*name); a lab "
        "file needs a few hundred: write the values out, or alias less"
    ]


def test_a_number_of_exactly_the_most_digits_is_read_and_one_more_is_not() -> None:
    from lab.model.yamldoc import MAX_NUMBER_DIGITS, _oversized

    assert _oversized("1" * MAX_NUMBER_DIGITS) is None
    too_long = _oversized("1" * (MAX_NUMBER_DIGITS + 1))
    assert too_long is not None
    assert too_long.oversized
