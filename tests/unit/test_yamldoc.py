"""The strict YAML reader (lab/model/yamldoc.py) to the letter: a key given twice is named
once, with its full path and both lines, wherever it is (under another key, in an anchored mapping
that an alias refers to again, after an alias, after a merge `<<`, inside what a merge brings in,
after a key that is not a scalar); a scalar YAML 1.1 reads in a surprising form, or cannot read
under its explicit tag, kept as `Ambiguous` with its text and what it was read as; a syntax error
that has no place still gets its fix."""

from __future__ import annotations

import pytest
import yaml

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
