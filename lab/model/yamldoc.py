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
  opens, not the end of the file where the parser gave up, nor the later line whose quote
  closed it), with that line's text and a fix;
- a number longer than any a lab file holds (MAX_NUMBER_DIGITS) is said so, with the limit;
- a tab that separates a comment or a line's end from a value is read as YAML 1.2 reads it
  (PyYAML refuses it), and a space that is no plain space or a character that shows nothing
  where YAML needs a space (after a key's ':', in the indentation) is named by code point.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lab.model import lookalike, strict
from lab.model.problems import ABSENT, Problem

MAX_CHARS: Final = 2 * 1024 * 1024  # a lab file is a few kB; a long value still fits
MAX_DEPTH: Final = 32
MAX_VALUES: Final = 20_000
# no number of a lab file is longer (a 64-bit integer has 20 digits; memory_mib up to 1 TiB, 7)
MAX_NUMBER_DIGITS: Final = 20

_INT_PLAIN = re.compile(r"[-+]?(0|[1-9][0-9]{0,999})\Z")
_BOOL_PLAIN = frozenset(("true", "True", "TRUE", "false", "False", "FALSE"))
# what PyYAML's scalar constructors raise on the text of an explicit tag they cannot read
# (`!!int ` with nothing after it raises IndexError)
_UNREADABLE = (ValueError, TypeError, IndexError, KeyError, AttributeError, OverflowError)


def _oversized(text: str) -> strict.Ambiguous | None:
    """A number written with more digits than any a lab file holds (thousands of digits cost
    Python seconds to convert, and beyond 4300 it refuses): never converted, said with the
    limit."""
    count = sum(ch.isdigit() for ch in text)
    if count <= MAX_NUMBER_DIGITS:
        return None
    why = f"a number {count} digits long (a lab file's numbers have at most {MAX_NUMBER_DIGITS})"
    return strict.Ambiguous(text, None, why, oversized=True)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader whose numbers, booleans and dates written in a surprising form come out as
    `strict.Ambiguous`, and whose scalar constructors never raise anything but YAMLError. Its
    scanner takes a tab before a comment or at a line's end (YAML 1.2 does; PyYAML does not)."""

    def scan_to_next_token(self) -> None:
        """PyYAML's, but a run of blanks with a tab in it is skipped when only a comment or
        the line's end follows it (`key: value<TAB># note`); a tab anywhere else (indentation,
        between a key and its value) is still the error PyYAML reports."""
        if self.index == 0 and self.peek() == "\ufeff":
            self.forward()
        found = False
        while not found:
            while self.peek() == " " or (self.peek() == "\t" and self._blanks_end_the_line()):
                self.forward()
            if self.peek() == "#":
                while self.peek() not in "\0\r\n\x85\u2028\u2029":
                    self.forward()
            if self.scan_line_break():  # type: ignore[no-untyped-call]
                if not self.flow_level:
                    self.allow_simple_key = True
            else:
                found = True

    def _blanks_end_the_line(self) -> bool:
        k = 0
        while self.peek(k) in " \t":
            k += 1
        return self.peek(k) in "#\0\r\n\x85\u2028\u2029"

    def construct_yaml_int(self, node: ScalarNode) -> object:  # type: ignore[override]
        text = str(self.construct_scalar(node))
        too_long = _oversized(text)
        if too_long is not None:
            return too_long
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
        too_long = _oversized(text)
        if too_long is not None:
            return too_long
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
    quoted = _quote_closed_late(text, exc.problem_mark or mark)
    if quoted is not None:
        return quoted
    source = _line_of(text, mark.line)
    if "'\\t'" in problem and source[: mark.column].strip():
        fix = "replace the tab with a space (a tab is read only before a comment or a line's end)"
    return Problem(
        f"line {mark.line + 1}, column {mark.column + 1}",
        source.strip() if source.strip() else ABSENT,
        f"is not valid YAML: {message}",
        fix,
    )


def _quote_closed_late(text: str, failed: yaml.Mark) -> Problem | None:
    """A quoted value that opened on an earlier line and closed on the line where the parser
    failed: its closing quote was really the opening quote of a later value (`name: "node1`
    and then `ip: "10.10.10.241"`). The fault is where it opened."""
    opened: yaml.ScalarToken | None = None
    try:
        for token in yaml.scan(text, Loader=StrictLoader):
            if (
                isinstance(token, yaml.ScalarToken)
                and token.style in ("'", '"')
                and token.start_mark.line < token.end_mark.line
            ):
                opened = token
    except yaml.YAMLError:
        pass
    if opened is None or opened.end_mark.line != failed.line:
        return None
    start, end = opened.start_mark, opened.end_mark
    quote = "a double" if opened.style == '"' else "a single"
    source = _line_of(text, start.line).strip()
    return Problem(
        f"line {start.line + 1}, column {start.column + 1}",
        source if source else ABSENT,
        f"is not valid YAML: {quote} quote opens a value here that runs on to line "
        f"{end.line + 1}, column {end.column} (the quote there closes it), and the parser stops "
        f"at line {failed.line + 1}, column {failed.column + 1}",
        "close the quote on this line",
    )


# ---------------------------------------------------------------------------------------------
# Look-alikes where YAML needs a plain space


def _structural_lookalikes(text: str) -> list[Problem]:
    """A space that is no plain space, or a character that shows nothing, where YAML needs a
    plain space: right after a key's ':' or a list's '-', or in a line's indentation. YAML
    reads `name:<NO-BREAK SPACE>node1` as the text 'name: node1', not as a key; the error it
    reports (if any) is on a later line and names nothing."""
    if text.isascii():
        return []
    found = []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.isascii():
            continue
        for suspect in lookalike.suspects(_outside_quotes(line)):
            if suspect.kind not in ("space", "invisible"):
                continue
            at = suspect.position
            before = line[:at]
            if before.strip(" ") == "" or lookalike.skeleton(before).strip() == "":
                where = "in the indentation"
            elif before.endswith(":"):
                where = "right after the key's ':'"
            elif before.strip() == "-":
                where = "right after the list's '-'"
            else:
                continue
            what = "no plain space" if suspect.kind == "space" else "it shows nothing"
            found.append(
                Problem(
                    f"line {number}, column {at + 1}",
                    line.strip() or ABSENT,
                    f"has {suspect.code_point} ({what}) {where}, where YAML needs a plain space: "
                    "YAML does not read the line as the key and value it looks like",
                    "type a plain space there",
                )
            )
            break  # one per line
    return found


def _outside_quotes(line: str) -> str:
    """`line` with what is inside quotes (and a comment) blanked, so only its structure is
    looked at."""
    out, quote = [], ""
    for i, ch in enumerate(line):
        if quote:
            out.append(" ")
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(" ")
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            out.extend(" " * (len(line) - i))
            break
        else:
            out.append(ch)
    return "".join(out)


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
    a problem when it refers to itself or is too big or too deep. Aliases are blamed only when
    the document has some (a node reached twice): else the size is the file's own."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    shared = False
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
            shared = True
            continue
        if key in on_path:
            return Problem(
                f"line {node.start_mark.line + 1}",
                message="is an alias that contains itself: the value would be infinite",
                fix="refer to the anchor from outside its own value",
            )
        on_path.add(key)
        stack.append((node, True))
        for kid in _children(node):
            if id(kid) in size:
                shared = True
            else:
                stack.append((kid, False))
    if size[id(root)] > MAX_VALUES:
        if not shared:
            return Problem(
                "<file>",
                message=f"has more than {MAX_VALUES} values",
                fix="a lab file has a few hundred: is this the right file?",
            )
        return Problem(
            "<file>",
            message=f"expands to more than {MAX_VALUES} values through its aliases (*name)",
            fix="a lab file needs a few hundred: write the values out, or alias less",
        )
    if depth[id(root)] > MAX_DEPTH:
        through = " through its aliases" if shared else ""
        return Problem(
            "<file>",
            message=f"is nested more than {MAX_DEPTH} levels deep{through}",
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
    spaces = _structural_lookalikes(text)
    try:
        deep = _depth_problem(text)
        if deep is not None:
            return None, [*spaces, deep]
        data, problems = _compose_and_build(text)
        return data, [*spaces, *problems]
    except yaml.YAMLError as exc:
        return None, [*spaces, yaml_problem(exc, text)]


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
