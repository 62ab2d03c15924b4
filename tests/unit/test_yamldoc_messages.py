"""The YAML reader (lab/model/yamldoc.py) points at the real fault (issue 30): an unterminated
quote where it opens, not on the later line whose quote closed it; a size limit blamed on
aliases only when the file has aliases; a tab that only separates a comment (or a line's end)
from a value is accepted, as YAML 1.2 does; a tab elsewhere is told apart from indentation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.model import yamldoc
from lab.model.labfile import lab_from_text
from lab.model.yamldoc import MAX_VALUES, read_yaml

ROOT = Path(__file__).resolve().parents[2]
CI = (ROOT / "labs" / "ci-debian12.yaml").read_text()


def only_problem(text: str) -> str:
    data, problems = read_yaml(text)
    assert data is None
    (problem,) = problems
    return str(problem)


# --- an unterminated quote --------------------------------------------------------------------


def opens(where: str, line: str, quote: str, closed_at: tuple[int, int]) -> str:
    """The problem an unterminated quote gives: where it opens, and where its run ends."""
    row, column = closed_at
    return (
        f"{where} = {line!r}: is not valid YAML: {quote} quote opens a value here that runs on "
        f"to line {row}, column {column} (the quote there closes it), and the parser stops at "
        f"line {row}, column {column + 1}; close the quote on this line"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            'name: "abc\ndescription: "x"\nvm: 1\n',
            opens("line 1, column 7", 'name: "abc', "a double", (2, 14)),
        ),
        (
            "name: 'abc\ndescription: 'x'\nvm: 1\n",
            opens("line 1, column 7", "name: 'abc", "a single", (2, 14)),
        ),
        (
            'nodes:\n  - {name: "node1, ip: 10.10.10.241}\n  - {name: node2, ip: "10.10.10.242"}\n',
            opens("line 2, column 12", '- {name: "node1, ip: 10.10.10.241}', "a double", (3, 23)),
        ),
        (
            'nodes:\n  - name: "node1\n    ip: 10.10.10.241\n  - name: "node2"\n',
            opens("line 2, column 11", '- name: "node1', "a double", (4, 11)),
        ),
    ],
    ids=["double", "single", "flow-mapping", "block-list"],
)
def test_an_unterminated_quote_is_reported_where_it_opens(text: str, problem: str) -> None:
    assert only_problem(text) == problem


def test_an_unterminated_quote_in_a_real_lab_is_placed_on_its_line() -> None:
    text = CI.replace("  box: netlab/debian12\n", '  box: "netlab/debian12\n')
    lab, problems = lab_from_text(text)
    assert lab is None
    line = CI.splitlines().index("  box: netlab/debian12") + 1
    assert [p.where for p in problems] == [f"line {line}, column 8"]


def test_a_quote_left_open_to_the_end_still_points_at_its_opening() -> None:
    assert only_problem('a: 1\nname: "abc\nvm: 2\n') == (
        "line 2, column 7 = 'name: \"abc': is not valid YAML: while scanning a quoted scalar: "
        "found unexpected end of stream (at line 4, column 1); close the quote"
    )


def test_a_value_quoted_over_two_lines_is_valid_yaml() -> None:
    assert read_yaml('description: "two\n  lines"\n') == ({"description": "two lines"}, [])


# --- size limits -------------------------------------------------------------------------------


def test_a_file_too_big_without_aliases_is_told_its_real_size_limit() -> None:
    text = "".join(f"- {i}\n" for i in range(MAX_VALUES + 5))
    problem = only_problem(text)
    assert problem == (
        f"<file>: has more than {MAX_VALUES} values; a lab file has a few hundred: is this the "
        "right file?"
    )
    assert "alias" not in problem


def test_a_file_too_big_through_its_aliases_blames_them() -> None:
    half = MAX_VALUES // 2 + 10
    text = "a: &x [" + ", ".join(["1"] * half) + "]\nb: *x\n"
    assert only_problem(text) == (
        f"<file>: expands to more than {MAX_VALUES} values through its aliases (*name); a lab "
        "file needs a few hundred: write the values out, or alias less"
    )


# --- tabs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["a: b\t# a note\n", "a: b \t # a note\n", "a: b\t\n", "a:\n  - b\t# note\n  - c\n"],
    ids=["tab-comment", "blanks-comment", "trailing-tab", "list-item"],
)
def test_a_tab_before_a_comment_or_the_lines_end_is_read_as_yaml_1_2_reads_it(text: str) -> None:
    data, problems = read_yaml(text)
    assert problems == []
    assert data in ({"a": "b"}, {"a": ["b", "c"]})


def test_a_shipped_lab_with_tabs_before_its_comments_is_the_same_lab() -> None:
    tabbed = "\n".join(
        line.replace("  #", "\t#", 1) if "  #" in line and not line.lstrip().startswith("#")
        else line
        for line in CI.splitlines()
    )  # fmt: skip
    assert "\t#" in tabbed
    assert lab_from_text(tabbed) == lab_from_text(CI)


def test_a_tab_between_a_key_and_its_value_is_not_called_indentation() -> None:
    problem = only_problem("a:\tb\n")
    assert problem.endswith("replace the tab with a space (a tab is read only before a comment "
                            "or a line's end)")  # fmt: skip


def test_a_tab_in_the_indentation_is_still_refused_as_indentation() -> None:
    assert only_problem("a:\n\tb: 1\n").endswith("indent with spaces, not tabs")


def test_pyyamls_own_loader_is_left_as_it_is() -> None:
    with pytest.raises(yaml.YAMLError, match="found character"):
        yaml.safe_load("a: b\t# c")
    assert yamldoc.read_yaml("a: b\t# c")[1] == []
