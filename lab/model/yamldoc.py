"""A bounded, strict YAML reader (pure): text in, data or problems out, never an exception.

Before anything is built the document is measured: nesting at most MAX_DEPTH levels, at most
MAX_VALUES values once aliases are expanded (an alias bomb of a few hundred bytes expands to
millions), no alias that contains itself. Then:

- a key given twice in one mapping is a problem (YAML would keep the last one silently);
- YAML 1.1's surprises are kept visible: a scalar it reads as a number, a boolean or a date in
  a form other readers read differently (`010` is 8, `yes` is true, `20.10` is 20.1, `1:30` is
  90, `2021-06-14` a date) becomes `strict.Ambiguous` with the text as written, and the strict
  decoder refuses it wherever it lands;
- a syntax error names the line where the fault is (an unclosed quote or bracket: where it
  opens, not the end of the file where the parser gave up), with that line's text and a fix.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lab.model import strict
from lab.model.problems import ABSENT, Problem

MAX_CHARS: Final = 2 * 1024 * 1024  # a lab file is a few kB; a long value still fits
MAX_DEPTH: Final = 32
MAX_VALUES: Final = 20_000

_INT_PLAIN = re.compile(r"[-+]?(0|[1-9][0-9]{0,999})\Z")
_BOOL_PLAIN = frozenset(("true", "True", "TRUE", "false", "False", "FALSE"))
# what PyYAML's scalar constructors raise on the text of an explicit tag they cannot read
# (`!!int ` with nothing after it raises IndexError)
_UNREADABLE = (ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader whose numbers, booleans and dates written in a surprising form come out as
    `strict.Ambiguous`, and whose scalar constructors never raise anything but YAMLError."""

    def construct_yaml_int(self, node: ScalarNode) -> object:  # type: ignore[override]
        text = str(self.construct_scalar(node))
        try:
            value = super().construct_yaml_int(node)
        except _UNREADABLE:
            return strict.Ambiguous(text, None, "a number it cannot read")
        if _INT_PLAIN.match(text):
            return value
        why = f"the number {value}"
        if re.fullmatch(r"[-+]?0[0-7_]+", text):
            why += " (a leading 0 means octal)"
        elif ":" in text:
            why += " (base 60)"
        return strict.Ambiguous(text, value, why)

    def construct_yaml_float(self, node: ScalarNode) -> object:  # type: ignore[override]
        text = str(self.construct_scalar(node))
        try:
            value = super().construct_yaml_float(node)
        except _UNREADABLE:
            return strict.Ambiguous(text, None, "a number it cannot read")
        if repr(value) == text.lstrip("+"):
            return value
        return strict.Ambiguous(text, value, f"the number {value!r}")

    def construct_yaml_bool(self, node: ScalarNode) -> object:  # type: ignore[override]
        text = str(self.construct_scalar(node))
        value = self.bool_values.get(text.lower())
        if value is None:
            return strict.Ambiguous(text, None, "a boolean it cannot read")
        if text in _BOOL_PLAIN:
            return value
        return strict.Ambiguous(text, value, "true" if value else "false")

    def construct_yaml_timestamp(self, node: ScalarNode) -> object:  # type: ignore[override]
        text = str(self.construct_scalar(node))
        try:
            value = super().construct_yaml_timestamp(node)
        except _UNREADABLE:
            return strict.Ambiguous(text, None, "a date it cannot read")
        kind = "a time" if isinstance(value, datetime.datetime) else "a date"
        return strict.Ambiguous(text, value, kind)


for _tag, _method in (
    ("int", StrictLoader.construct_yaml_int),
    ("float", StrictLoader.construct_yaml_float),
    ("bool", StrictLoader.construct_yaml_bool),
    ("timestamp", StrictLoader.construct_yaml_timestamp),
):
    StrictLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _method)


# ---------------------------------------------------------------------------------------------
# Syntax errors: the real line, its text and a fix

# (phrase of the parser, fix); the first that matches a problem or context wins
_FIXES = (
    ("simple key", "a key needs ':' after it (or the line is indented wrongly)"),
    ("quoted scalar", "close the quote"),
    ("flow sequence", "close the '[' with ']'"),
    ("flow mapping", "close the '{' with '}'"),
    ("'\\t'", "indent with spaces, not tabs"),
    ("mapping values are not allowed", "quote a value that contains ': ', or fix the indentation"),
    ("another document", "a lab file is one document: remove the '---' line"),
    ("undefined alias", "define the anchor (&name) before its alias (*name)"),
    ("block end", "check the indentation of this line and the one before"),
)
# contexts whose own line is where the fault is (the parser only notices it later)
_OPENERS = ("while scanning a simple key", "while scanning a quoted scalar", "while parsing a flow")


def _line_of(text: str, line: int) -> str:
    lines = text.splitlines()
    return lines[line] if 0 <= line < len(lines) else ""


def yaml_problem(exc: yaml.YAMLError, text: str) -> Problem:
    """One problem for a YAML error, at the line where the fault is."""
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - before.rfind("\n")
        ch = chr(exc.character) if isinstance(exc.character, int) else str(exc.character)
        return Problem(
            f"line {line}, column {column}",
            message=f"contains the control character U+{ord(ch[:1] or ' '):04X}, which YAML "
            "does not allow",
            fix="remove it (is this a text file?)",
        )
    if not isinstance(exc, yaml.MarkedYAMLError):
        return Problem("<file>", message=f"is not valid YAML ({exc})")
    context, problem = exc.context or "", exc.problem or ""
    opener = exc.context_mark is not None and context.startswith(_OPENERS)
    mark = exc.context_mark if opener or exc.problem_mark is None else exc.problem_mark
    other = exc.problem_mark if opener else exc.context_mark
    message = f"{context}: {problem}" if opener else problem or context
    if other is not None and mark is not None and other.line != mark.line:
        where_other = f"line {other.line + 1}, column {other.column + 1}"
        message += f" (at {where_other})" if opener else f" ({context} at {where_other})"
    fix = next((f for phrase, f in _FIXES if phrase in problem or phrase in context), "")
    if mark is None:
        return Problem("<file>", message=f"is not valid YAML: {message}", fix=fix)
    source = _line_of(text, mark.line)
    return Problem(
        f"line {mark.line + 1}, column {mark.column + 1}",
        source.strip() if source.strip() else ABSENT,
        f"is not valid YAML: {message}",
        fix,
    )


# ---------------------------------------------------------------------------------------------
# Measuring the node graph before building anything


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _measure(root: Node) -> Problem | None:
    """Expanded size and depth of the document (aliases followed), iteratively, each node once;
    a problem when it refers to itself or is too big or too deep."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = _children(node)
            size[key] = min(1 + sum(size[id(k)] for k in kids), MAX_VALUES + 1)
            depth[key] = min(1 + max((depth[id(k)] for k in kids), default=0), MAX_DEPTH + 1)
            on_path.discard(key)
            continue
        if key in size:
            continue
        if key in on_path:
            return Problem(
                f"line {node.start_mark.line + 1}",
                message="is an alias that contains itself: the value would be infinite",
                fix="refer to the anchor from outside its own value",
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node) if id(kid) not in size)
    if size[id(root)] > MAX_VALUES:
        return Problem(
            "<file>",
            message=f"expands to more than {MAX_VALUES} values through its aliases (*name)",
            fix="a lab file needs a few hundred: write the values out, or alias less",
        )
    if depth[id(root)] > MAX_DEPTH:
        return Problem(
            "<file>",
            message=f"is nested more than {MAX_DEPTH} levels deep through its aliases",
            fix="a lab file is about 5 levels deep",
        )
    return None


def _duplicate_keys(root: Node) -> Iterator[Problem]:
    """Every key given twice in one mapping, with its path and both lines."""
    seen_nodes: set[int] = set()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, where = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend((kid, f"{where}[{i}]") for i, kid in reversed(list(enumerate(node.value))))
        elif isinstance(node, MappingNode):
            first: dict[tuple[str, str], int] = {}
            kids = []
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    kids.append((value_node, f"{where}[...]"))
                    continue
                if key_node.tag == "tag:yaml.org,2002:merge":  # `<<` may come more than once
                    kids.append((value_node, strict.key_path(where, key_node.value)))
                    continue
                path = strict.key_path(where, key_node.value)
                line = key_node.start_mark.line + 1
                ident = (key_node.tag, key_node.value)
                if ident in first:
                    yield Problem(
                        path,
                        message=f"is given twice (lines {first[ident]} and {line}): YAML keeps "
                        "only the last one and silently drops the other",
                        fix="keep one, or merge them",
                    )
                else:
                    first[ident] = line
                kids.append((value_node, path))
            stack.extend(reversed(kids))


def _depth_problem(text: str) -> Problem | None:
    """Nesting and size as written, from the event stream (no recursion), before composing:
    reading stops at the first bound crossed, so a big dense file costs little."""
    depth = 0
    for count, event in enumerate(yaml.parse(text, Loader=StrictLoader)):
        if count > 2 * MAX_VALUES:
            return Problem(
                f"line {event.start_mark.line + 1 if event.start_mark else 0}",
                message=f"has more than {MAX_VALUES} values (stopped reading here)",
                fix="a lab file has a few hundred: is this the right file?",
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 0
                return Problem(
                    f"line {line}",
                    message=f"is nested more than {MAX_DEPTH} levels deep",
                    fix="a lab file is about 5 levels deep: is this the right file?",
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def read_yaml(text: str) -> tuple[object, list[Problem]]:
    """The one document of `text` (None when it has none), or the problems that stop it from
    being read; duplicate keys are reported alongside the data. Never raises."""
    if len(text) > MAX_CHARS:
        return None, [
            Problem(
                "<file>",
                message=f"is longer than {MAX_CHARS} characters ({len(text)}): a lab file is a "
                "few thousand",
                fix="is this the right file?",
            )
        ]
    try:
        deep = _depth_problem(text)
        if deep is not None:
            return None, [deep]
        return _compose_and_build(text)
    except yaml.YAMLError as exc:
        return None, [yaml_problem(exc, text)]


def _compose_and_build(text: str) -> tuple[object, list[Problem]]:
    loader = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        measured = _measure(node)
        if measured is not None:
            return None, [measured]
        problems = list(_duplicate_keys(node))
        return loader.construct_document(node), problems
    finally:
        loader.dispose()
