"""The strict YAML reader (lab/model/yamldoc.py) to the letter: a key given twice is named
once, with its full path and both lines, wherever it is (under another key, in an anchored mapping
that an alias refers to again, after an alias, after a merge `<<`, inside what a merge brings in,
after a key that is not a scalar); a scalar YAML 1.1 reads in a surprising form, or cannot read
under its explicit tag, kept as `Ambiguous` with its text and what it was read as; a syntax error
that has no place still gets its fix."""

from __future__ import annotations

import pytest
import yaml

from lab.model import yamldoc
from lab.model.strict import Ambiguous
from lab.model.yamldoc import read_yaml, yaml_problem

TWICE = (
    "is given twice (lines {}): YAML keeps only the last one and silently drops the other; "
    "keep one, or merge them"
)
UNHASHABLE = "is not valid YAML: found unhashable key"


@pytest.mark.parametrize(
    ("text", "data", "problems"),
    [
        ("a:\n  b: 1\n  b: 2\n", {"a": {"b": 2}}, ["a.b: " + TWICE.format("2 and 3")]),
        (
            "a: &a {x: 1, x: 2}\nb: *a\n",
            {"a": {"x": 2}, "b": {"x": 2}},
            ["a.x: " + TWICE.format("1 and 1")],
        ),
        (
            "a: &a {k: 1}\nb: *a\nc: {x: 1, x: 2}\n",
            {"a": {"k": 1}, "b": {"k": 1}, "c": {"x": 2}},
            ["c.x: " + TWICE.format("3 and 3")],
        ),
        (
            "base: &b {x: 1}\nc:\n  <<: *b\n  <<: {y: 2}\n  z: 1\n  z: 2\n",
            {"base": {"x": 1}, "c": {"x": 1, "y": 2, "z": 2}},
            ["c.z: " + TWICE.format("5 and 6")],
        ),
        (
            "c:\n  <<: {name: 1, name: 2}\n",
            {"c": {"name": 2}},
            ["c['<<'].name: " + TWICE.format("2 and 2")],
        ),
        (
            "? !!merge [k]\n: {x: 1}\nb: 1\nb: 2\n",
            {"x": 1, "b": 2},
            ["b: " + TWICE.format("3 and 4")],
        ),
        ("? [k]\n: 1\n", None, [f"line 1, column 3 = '? [k]': {UNHASHABLE}"]),
    ],
    ids=[
        "nested", "in-an-anchor-once", "after-an-alias", "after-two-merges", "inside-a-merge",
        "after-a-sequence-key", "a-sequence-key",
    ],
)  # fmt: skip
def test_a_key_given_twice_is_named_once_with_its_path_and_both_lines(
    text: str, data: object, problems: list[str]
) -> None:
    read, found = read_yaml(text)
    assert (read, [str(p) for p in found]) == (data, problems)


@pytest.mark.parametrize(
    ("scalar", "value"),
    [
        ("010", Ambiguous("010", 8, "the number 8 (a leading 0 means octal)")),
        ("1:30", Ambiguous("1:30", 90, "the number 90 (base 60)")),
        ("!!int abc", Ambiguous("abc", None, "a number it cannot read")),
        ("!!bool maybe", Ambiguous("maybe", None, "a boolean it cannot read")),
    ],
)
def test_a_scalar_read_in_a_surprising_form_keeps_its_text_and_what_it_was_read_as(
    scalar: str, value: Ambiguous
) -> None:
    assert read_yaml(f"a: {scalar}\n") == ({"a": value}, [])


def test_a_yaml_error_that_has_no_place_still_gets_its_fix() -> None:
    problem = yaml_problem(yaml.MarkedYAMLError(problem="found undefined alias 'x'"), "a: *x\n")
    assert str(problem) == (
        "<file>: is not valid YAML: found undefined alias 'x'; define the anchor (&name) before "
        "its alias (*name)"
    )


@pytest.mark.parametrize(
    ("scalar", "text", "read_as", "why"),
    [
        ("2021-06-14", "2021-06-14", "date", "a date"),
        ("2021-06-14 10:00:00", "2021-06-14 10:00:00", "datetime", "a time"),
        ("!!timestamp 2021-99-99x", "2021-99-99x", None, "a date it cannot read"),
        ("20.10", "20.10", 20.1, "the number 20.1"),
        ("!!float abc", "abc", None, "a number it cannot read"),
    ],
)
def test_yaml_11_dates_and_numbers_are_kept_with_what_they_were_read_as(
    scalar: str, text: str, read_as: object, why: str
) -> None:
    value = yamldoc.read_yaml(f"a: {scalar}")[0]["a"]  # type: ignore[index]
    assert isinstance(value, Ambiguous)
    assert (value.text, value.why) == (text, why)
    if isinstance(read_as, str):
        assert type(value.read_as).__name__ == read_as
    else:
        assert value.read_as == read_as


def test_a_float_written_as_python_would_print_it_is_a_float() -> None:
    assert yamldoc.read_yaml("a: +1.5\nb: 2.25") == ({"a": 1.5, "b": 2.25}, [])


def test_a_yaml_error_without_a_problem_or_context_says_only_where() -> None:
    mark = yaml.error.Mark("<lab>", 0, 0, 0, None, None)
    assert str(yamldoc.yaml_problem(yaml.MarkedYAMLError(problem_mark=mark), "x: 1\n")) == (
        "line 1, column 1 = 'x: 1': is not valid YAML: "
    )


def test_a_control_character_on_a_later_line_is_placed_on_that_line() -> None:
    text = "a: 1\nb: 2\nc: x\x07\n"
    with pytest.raises(yaml.YAMLError) as e:
        yaml.safe_load(text)
    assert str(yamldoc.yaml_problem(e.value, text)).startswith("line 3, column 5: ")


def test_a_yaml_problem_without_a_known_fix_has_an_empty_one() -> None:
    mark = yaml.error.Mark("<lab>", 0, 0, 0, None, None)
    assert (
        yamldoc.yaml_problem(yaml.MarkedYAMLError(problem="odd", problem_mark=mark), "x").fix == ""
    )
    assert yamldoc.yaml_problem(yaml.MarkedYAMLError(problem="odd"), "x").fix == ""


def problem_of(text: str) -> str:
    with pytest.raises(yaml.YAMLError) as e:
        yaml.safe_load(text)
    return str(yaml_problem(e.value, text))


def test_a_control_character_is_placed_at_its_line_and_column() -> None:
    assert problem_of("a: 1\nb: x\x07y\n") == (
        "line 2, column 5: contains the control character U+0007, which YAML does not allow; "
        "remove it (is this a text file?)"
    )


def test_yaml_errors_with_and_without_a_position() -> None:
    mark = yaml.error.Mark("<lab>", 0, 5, 0, None, None)
    first = yaml.error.Mark("<lab>", 0, 0, 0, None, None)
    tab = "found character '\\t' that cannot start any token"
    cases = [
        (yaml.YAMLError("boom"), "", "<file>: is not valid YAML (boom)"),
        (yaml.MarkedYAMLError(context="ctx", problem="bad"), "x", "<file>: is not valid YAML: bad"),
        (
            yaml.MarkedYAMLError(problem=tab, problem_mark=mark),
            "a\nb\nc\nd\ne\n\tf\n",
            f"line 6, column 1 = 'f': is not valid YAML: {tab}; indent with spaces, not tabs",
        ),
        (
            yaml.MarkedYAMLError(problem="p", problem_mark=first),
            "  \nx",
            "line 1, column 1: is not valid YAML: p",
        ),
        (
            yaml.MarkedYAMLError(problem="p", problem_mark=mark),
            "a\n",
            "line 6, column 1: is not valid YAML: p",
        ),
        (
            yaml.MarkedYAMLError(context="c only", problem_mark=first),
            "abc\n",
            "line 1, column 1 = 'abc': is not valid YAML: c only",
        ),
    ]  # fmt: skip
    for exc, text, want in cases:
        assert str(yaml_problem(exc, text)) == want
