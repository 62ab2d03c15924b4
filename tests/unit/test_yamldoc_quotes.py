"""The YAML reader's edges (lab/model/yamldoc.py), to the letter: a tab is read as a blank only
when nothing but blanks follow it to a comment or the line's end; an unterminated quote is told
only from a quoted value that spans lines, found with the strict scanner; and the structure of
a line is what is left outside its quotes and its comment."""

from __future__ import annotations

from lab.model import yamldoc
from lab.model.yamldoc import read_yaml

TAB_PROBLEM = (
    "line 1, column 3 = {line!r}: is not valid YAML: found character '\\t' that cannot start "
    "any token; replace the tab with a space (a tab is read only before a comment or a line's "
    "end)"
)


def test_a_tab_before_a_value_is_refused_whatever_the_value_starts_with() -> None:
    for line in ("a:\tX", "a:\tXX # c", "a:\t1"):
        data, problems = read_yaml(line + "\n")
        assert data is None, line
        assert [str(p) for p in problems] == [TAB_PROBLEM.format(line=line)]


def test_tabs_and_spaces_up_to_a_comment_or_the_end_are_blanks() -> None:
    assert read_yaml("a: 1\t \t# c\nb: 2\t\n") == ({"a": 1, "b": 2}, [])


def test_an_unterminated_quote_is_found_after_a_line_with_a_trailing_tab() -> None:
    # PyYAML's own scanner stops at the trailing tab; the strict one reads on to the quote
    data, problems = read_yaml('a: 1\t\nname: "node1\nip: "10.10.10.241"\n')
    assert data is None
    assert [str(p) for p in problems] == [
        "line 2, column 7 = 'name: \"node1': is not valid YAML: a double quote opens a value "
        "here that runs on to line 3, column 5 (the quote there closes it), and the parser "
        "stops at line 3, column 6; close the quote on this line"
    ]


def test_a_quoted_value_on_one_line_is_not_taken_for_an_unterminated_one() -> None:
    data, problems = read_yaml('key: "value" extra\n')
    assert data is None
    assert [str(p) for p in problems] == [
        "line 1, column 14 = 'key: \"value\" extra': is not valid YAML: expected <block end>, "
        "but found '<scalar>'; check the indentation of this line and the one before"
    ]


def test_what_is_inside_quotes_and_a_comment_is_blanked_column_for_column() -> None:
    outside = yamldoc._outside_quotes
    assert outside("name: 'node 1' # the first") == "name:" + " " * 21
    assert outside('ip: "10.10.10.241" role: x') == "ip:" + " " * 15 + " role: x"
    assert outside("a: 'x' b 'y' c") == "a:     b     c"
    assert outside("# a whole-line comment") == " " * 22
    assert outside("Xa: XbX") == "Xa: XbX"  # an X is no quote
    # a '#' is a comment only at the line's start or after a blank
    assert outside("url: http://x/#frag") == "url: http://x/#frag"
    assert outside("a: b\t#c") == "a: b\t  "
    assert outside("a #b") == "a   "
    assert outside("a: x#") == "a: x#"
    assert outside("name: nodeX#1") == "name: nodeX#1"  # after an X too
