"""The strict decoder (pure): untrusted data (a lab file's YAML, kubectl's JSON) to typed values.

One set of rules for every reader of outside data:

- a value has the type asked for, or it is a `Problem` (where, value, what is wrong, the fix):
  no number is taken for text, no text for a number, no `yes` for `true`;
- the primitives (`text`, `integer`, `boolean`, `ipv4_address`, ...) raise `DecodeError`, a
  `ValueError` carrying that Problem, so a parser can let it propagate;
- `decode(tp, value, where, problems)` builds a frozen dataclass from a mapping, collecting
  every problem instead of stopping at the first. A field it could not decode is `BROKEN`, so
  the checks that do not read that field still run on the rest (see `Broken`).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Any, Final, Literal, TypeVar

from lab.model import lookalike
from lab.model.problems import ABSENT, Problem, digits, shorten

T = TypeVar("T")


# fields the program fills, never a lab file: where it was read from, what it is an instance of
NOT_IN_FILES = frozenset({"source", "definition"})


class DecodeError(ValueError):
    """A value that is not what was asked for; `problem` says where, what and the fix."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


# ---------------------------------------------------------------------------------------------
# Values a reader flags: YAML 1.1 resolved them, but not as most readers of the text would


@dataclass(frozen=True)
class Ambiguous:
    """A scalar YAML 1.1 turned into a number, a boolean or a date although it was written in
    a form other readers (YAML 1.2, a person) read differently: `010` (octal 8), `yes` (true),
    `20.10` (20.1), `1:30` (90), `2021-06-14` (a date). `text` is what the file says."""

    text: str
    read_as: object
    why: str
    # a number longer than any a lab file holds (yamldoc.MAX_NUMBER_DIGITS): `read_as` is None
    oversized: bool = False

    def __repr__(self) -> str:
        if len(self.text) <= 60:
            return self.text
        count = sum(ch.isdigit() for ch in self.text)
        if _NUMBER_TEXT.fullmatch(self.text):  # cut with its length said, never mid-number
            return f"{self.text[:20]}… ({count} digits)"
        return shorten(self.text)


_NUMBER_TEXT = re.compile(r"[-+]?[0-9_.,:eE+-]+")


def _ambiguous(value: Ambiguous, where: str, wanted: str) -> DecodeError:
    if value.oversized:  # no field holds such a number: say so, with the limit
        if wanted == "text":
            message, fix = f"was read as {value.why}, not as text", "put it in quotes if it is text"
        else:
            message, fix = f"is {value.why}", "is this the value?"
        return DecodeError(Problem(where, value, message, fix))
    if wanted == "true or false":
        message = f"is read as {value.why} by YAML 1.1, but as text by YAML 1.2 and other tools"
        fix = "write true or false"
    else:
        message = f"was read as {value.why}, not as {wanted} (YAML 1.1 reads it that way)"
        quoted = "put it in quotes" + (f": {value.text!r}" if len(value.text) <= 60 else "")
        fix = (
            quoted
            if wanted == "text"
            else "write it in plain decimal digits (no leading 0, no '_' or ':')"
        )
    return DecodeError(Problem(where, value, message, fix))


# ---------------------------------------------------------------------------------------------
# Primitives: one value, one type, or DecodeError


def kind_of(value: object) -> str:
    """How a decoded value reads to a person: 'a number', 'a list', ..."""
    if value is None:
        return "empty (null)"
    if isinstance(value, Ambiguous):
        return value.why
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return _YAML_KINDS.get(type(value).__name__, "a value of a kind YAML has no name for here")


# what else a YAML file can hold (explicit tags), in YAML's words, never Python's
_YAML_KINDS = {
    "bytes": "binary data (!!binary)",
    "set": "a set (!!set)",
    "frozenset": "a set (!!set)",
    "date": "a date",
    "datetime": "a time",
}


# the characters that are never part of a one-line value: control, format (zero-width, bidi
# overrides), line and paragraph separators, surrogates and private use; and spaces that are no
# plain space (U+00A0 NO-BREAK SPACE, ...), which look like one
_HIDDEN = frozenset(("Cc", "Cf", "Zl", "Zp", "Cs", "Co"))


@dataclass(frozen=True)
class TextRules:
    """What a text value may hold. `one_line`: no control characters, no whitespace around
    it (a lab file's every string: `name: "node2\\n"` would end up in a hostname command)."""

    one_line: bool = False
    max_chars: int | None = None


ANY_TEXT: Final = TextRules()
ONE_LINE: Final = TextRules(one_line=True, max_chars=2048)


def _is_hidden(ch: str) -> bool:
    category = unicodedata.category(ch)
    blank_letter = ch in "\u115f\u1160\u3164\uffa0"  # Hangul fillers: letters that show nothing
    return category in _HIDDEN or (category == "Zs" and ch != " ") or blank_letter


def _hidden_char(value: str) -> tuple[int, str] | None:
    for i, ch in enumerate(value):
        if _is_hidden(ch):
            return i, ch
    return None


def _char_name(ch: str) -> str:
    names = {"\n": "line feed", "\r": "carriage return", "\t": "tab", "\x00": "NUL"}
    name = names.get(ch) or unicodedata.name(ch, "").lower() or "unnamed"
    return f"U+{ord(ch):04X} {name}"


def _hidden_problem(value: str, at: int, ch: str) -> str:
    """What a hidden character is, in words: a control character by its old name, any other
    by its code point and Unicode name, what it looks like and where it is."""
    if unicodedata.category(ch) == "Cc":
        return f"contains the control character {_char_name(ch)} at position {at}"
    found = [s for s in lookalike.suspects(value) if s.position == at]
    if not found:  # a surrogate or a private-use character
        return f"contains {lookalike.code_point(ch)} at position {at}"
    return f"contains {found[0].describe(value)}"


def _hidden_fix(ch: str, cleaned: str) -> str:
    if not cleaned:
        return ""
    if unicodedata.category(ch) == "Zs":
        return f"write a plain space, or none: {shorten(cleaned)}"
    return f"remove it: {shorten(cleaned)}"


def _cleaned(value: str) -> str:
    """`value` with what shows nothing dropped and other spaces made plain, stripped."""
    out = []
    for ch in value:
        if not _is_hidden(ch):
            out.append(ch)
        elif unicodedata.category(ch) in ("Zs", "Zl", "Zp", "Cc"):
            out.append(" ")
    return "".join(out).strip()


def text(value: object, where: str, rules: TextRules = ANY_TEXT) -> str:
    if isinstance(value, Ambiguous):
        raise _ambiguous(value, where, "text")
    if isinstance(value, bool | int | float):
        raise DecodeError(
            Problem(
                where,
                value,
                f"was read as {kind_of(value)}, not as text",
                f"put it in quotes: '{value}'" if not isinstance(value, bool) else "quote it",
            )
        )
    if not isinstance(value, str):
        raise DecodeError(Problem(where, value, f"must be text, not {kind_of(value)}"))
    if rules.max_chars is not None and len(value) > rules.max_chars:
        raise DecodeError(
            Problem(where, value, f"is longer than {rules.max_chars} characters; is it the value?")
        )
    if rules.one_line:
        hidden = _hidden_char(value)
        cleaned = _cleaned(value)
        if hidden is not None:
            at, ch = hidden
            raise DecodeError(
                Problem(
                    where,
                    value,
                    _hidden_problem(value, at, ch),
                    _hidden_fix(ch, cleaned),
                )
            )
        if value != value.strip():
            raise DecodeError(
                Problem(
                    where,
                    value,
                    "has whitespace around it",
                    f"write {shorten(cleaned)}" if cleaned else "give a value",
                )
            )
    return value


def integer(value: object, where: str) -> int:
    if isinstance(value, Ambiguous) and (value.oversized or isinstance(value.read_as, int | float)):
        raise _ambiguous(value, where, "an integer")
    if not isinstance(value, int) or isinstance(value, bool):
        fix = "remove the quotes" if isinstance(value, str) and value.strip().isdigit() else ""
        raise DecodeError(Problem(where, value, f"must be an integer, not {kind_of(value)}", fix))
    return value


def boolean(value: object, where: str) -> bool:
    if isinstance(value, Ambiguous) and isinstance(value.read_as, bool):
        raise _ambiguous(value, where, "true or false")
    if not isinstance(value, bool):
        raise DecodeError(Problem(where, value, f"must be true or false, not {kind_of(value)}"))
    return value


def mapping(value: object, where: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise DecodeError(Problem(where, value, f"must be a mapping, not {kind_of(value)}"))
    return value


def sequence(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise DecodeError(Problem(where, value, f"must be a list, not {kind_of(value)}"))
    return value


ADDRESS_SHAPE = "four numbers from 0 to 255 joined by dots, like 10.10.10.241"
ANY_ADDRESS_SHAPE = "like 10.10.10.241 (IPv4) or fd00:10:244::2 (IPv6)"
CIDR_SHAPE = "an address, '/' and a prefix length, like 10.244.0.0/16"
ANY_CIDR_SHAPE = "an address, '/' and a prefix length, like 10.244.0.0/16 or fd00:10:244::/56"


def _not_a_number(value: object, where: str, what: str, shape: str) -> None:
    """A number where an address or a CIDR is meant (`ip: 167772161`, `cidr: 10.244`): no
    quotes make it one; say what one looks like."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        shown = digits(value) if isinstance(value, int) else repr(value)
    elif isinstance(value, Ambiguous) and (
        value.oversized or isinstance(value.read_as, int | float)
    ):
        shown = repr(value) if value.oversized else repr(value.read_as)
    else:
        return
    raise DecodeError(
        Problem(
            where,
            value,
            f"is a number ({shown}), not {what}; {what} is {shape}",
            "write the address itself",
        )
    )


def any_address(value: object, where: str) -> IPv4Address | IPv6Address:
    """An IPv4 or IPv6 address (a dual-stack cluster lists both)."""
    _not_a_number(value, where, "an IP address", ANY_ADDRESS_SHAPE)
    raw = text(value, where)
    try:
        return ip_address(raw)
    except ValueError:
        raise DecodeError(Problem(where, value, "is not an IP address")) from None


def any_network(value: object, where: str) -> IPv4Network | IPv6Network:
    """An IPv4 or IPv6 CIDR, without host bits."""
    _not_a_number(value, where, "a CIDR", ANY_CIDR_SHAPE)
    raw = text(value, where)
    try:
        return ip_network(raw)
    except ValueError as exc:
        raise DecodeError(Problem(where, value, f"is not a CIDR ({exc})")) from None


def ipv4_address(value: object, where: str) -> IPv4Address:
    _not_a_number(value, where, "an IPv4 address", ADDRESS_SHAPE)
    raw = text(value, where)
    try:
        return IPv4Address(raw)
    except ValueError as exc:
        raise DecodeError(
            Problem(where, value, f"is not an IPv4 address like 10.10.10.241 ({exc})")
        ) from None


def ipv4_network(value: object, where: str) -> IPv4Network:
    _not_a_number(value, where, "an IPv4 CIDR", CIDR_SHAPE)
    raw = text(value, where)
    try:
        return IPv4Network(raw)
    except ValueError as exc:
        fix = ""
        if "host bits set" in str(exc):
            fix = f"did you mean {IPv4Network(raw, strict=False)}?"
        raise DecodeError(
            Problem(where, value, f"is not an IPv4 CIDR like 10.244.0.0/16 ({exc})", fix)
        ) from None


# ---------------------------------------------------------------------------------------------
# Partial values: a field that could not be decoded


class BrokenField(Exception):
    """A check touched a field that could not be decoded: the check does not apply yet."""


class Broken:
    """Stands in a decoded dataclass for a field that could not be decoded (its problem is
    already reported). Any use of it (comparison, hashing, formatting, attribute access,
    arithmetic, iteration) raises BrokenField, so a check that reads it stops, while checks
    that never read it run: a file's structural and semantic problems come in one pass."""

    __slots__ = ()

    def _refuse(self, *args: object, **kwargs: object) -> typing.NoReturn:
        raise BrokenField

    def __getattr__(self, name: str) -> typing.NoReturn:
        raise BrokenField


_REFUSED = (
    *("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__hash__", "__bool__"),
    *("__len__", "__iter__", "__contains__", "__getitem__", "__str__", "__repr__", "__format__"),
    *("__int__", "__index__", "__float__", "__neg__", "__call__", "__lshift__", "__rshift__"),
    *("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__"),
    *("__and__", "__rand__", "__or__", "__ror__"),
)
for _name in _REFUSED:
    setattr(Broken, _name, Broken._refuse)

BROKEN: Final = Broken()


def guarded(check: Iterable[T], partial: bool) -> Iterator[T]:
    """The results of `check` until it touches a BROKEN field. On a partial value (one with
    structural problems) a TypeError is taken for the same thing: a BROKEN value handed to a C
    function (a regex, str.join) that checks types without calling any method of it. On a
    complete value nothing is caught: a check that fails there is a bug to see."""
    stops: tuple[type[Exception], ...] = (BrokenField, TypeError) if partial else (BrokenField,)
    try:
        for item in check:
            if isinstance(item, Problem) and contains_broken(item.value):
                continue  # it would show a value that is not there
            yield item
    except stops:
        return


# ---------------------------------------------------------------------------------------------
# Type-directed decoding of frozen dataclasses, every problem collected


def key_path(where: str, key: object) -> str:
    """`where.key` for a plain key, `where[<repr>]` for anything else (cut when long)."""
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", key):
        return f"{where}.{key}" if where else key
    shown = shorten(key, 30) if isinstance(key, str) else shorten(repr(key), 30)
    return f"{where}[{shown}]"


def closest(key: str, known: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(key[:100], list(known), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _describe_type(tp: Any) -> str:
    """What a field holds, in the words of a YAML file: 'text', 'a list of mappings (keys:
    name, ip, ...)', 'one of ...'; never a Python type's name."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return f"{_describe_type(inner[0])}, or null" if len(inner) == 1 else "a value"
    if origin is tuple:
        return f"a list, each item {_describe_type(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        keys = [f.name for f in dataclasses.fields(tp) if f.init and f.name != "source"]
        return f"a mapping (its keys: {', '.join(keys)})"
    names = {
        str: "text",
        int: "an integer",
        bool: "true or false",
        IPv4Address: "an IPv4 address",
        IPv4Network: "an IPv4 CIDR",
    }
    return names.get(tp, "a value")


# decoders for the leaf types of a dataclass: value, where, text rules -> typed value
_LEAVES: dict[Any, Callable[[object, str, TextRules], Any]] = {
    str: text,
    int: lambda v, w, r: integer(v, w),
    bool: lambda v, w, r: boolean(v, w),
    IPv4Address: lambda v, w, r: ipv4_address(v, w),
    IPv4Network: lambda v, w, r: ipv4_network(v, w),
}


def decode(
    tp: Any, value: object, where: str, problems: list[Problem], rules: TextRules = ONE_LINE
) -> Any:
    """`value` as `tp` (a frozen dataclass, tuple[X, ...], X | None, Literal[...] or a leaf
    type); every problem is appended to `problems` and the undecodable part is BROKEN."""
    try:
        return _decode(tp, value, where, problems, rules)
    except DecodeError as exc:
        problems.append(exc.problem)
        return BROKEN


def _decode(tp: Any, value: object, where: str, problems: list[Problem], rules: TextRules) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(inner, value, where, problems, rules)
    if value is None:
        # a list item, or a key whose absence is no better (required keys say so before this)
        fix = "give it a value, or remove the item" if where.endswith("]") else "give it a value"
        raise DecodeError(
            Problem(where, ABSENT, f"is empty (null): it holds {_describe_type(tp)}", fix)
        )
    if origin is Literal:
        allowed = typing.get_args(tp)
        word = text(value, where, rules)
        if word in allowed:
            return word
        fix = f"use one of {', '.join(map(repr, allowed))}"
        raise DecodeError(Problem(where, value, "unknown value", fix))
    if origin is tuple:
        item_tp, _ellipsis = typing.get_args(tp)
        items = sequence(value, where)
        return tuple(
            decode(item_tp, v, f"{where}[{i}]", problems, rules) for i, v in enumerate(items)
        )
    if dataclasses.is_dataclass(tp):
        return _decode_dataclass(typing.cast(type, tp), value, where, problems, rules)
    leaf = _LEAVES.get(tp)
    if leaf is None:
        raise TypeError(f"the strict decoder has no rule for {tp!r}")
    return leaf(value, where, rules)


def _decode_dataclass(
    cls: type, value: object, where: str, problems: list[Problem], rules: TextRules
) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in NOT_IN_FILES}
    if not isinstance(value, Mapping):
        raise DecodeError(
            Problem(
                where or "<file>",
                value,
                f"must be a mapping of keys to values, not {kind_of(value)}",
                f"its keys: {', '.join(fields)}",
            )
        )
    hints = typing.get_type_hints(cls)
    for key in value:
        if key not in fields:
            problems.append(_unknown_key(where, key, value[key], fields))
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        path = key_path(where, name)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        tp = hints[name]
        if name not in value:
            if required:
                what = "" if dataclasses.is_dataclass(tp) else f" ({_describe_type(tp)})"
                posing = [k for k in value if isinstance(k, str) and _poses_as(k, name)]
                if posing:
                    what += f"; the key {shorten(posing[0], 30)} only looks like it"
                problems.append(Problem(path, ABSENT, f"is required{what}"))
                kwargs[name] = BROKEN
            continue
        if value[name] is None and not _nullable(tp):
            # a key set to null (`nodes:` with nothing after it): say what it must hold; only
            # a key with a default may go
            what = _describe_type(tp)
            if required:
                message, fix = f"is empty (null), but it is required: {what}", "give it a value"
            else:
                message = f"is empty (null): it holds {what}"
                fix = "give it a value, or remove the key to take its default"
            problems.append(Problem(path, ABSENT, message, fix))
            kwargs[name] = BROKEN
            continue
        kwargs[name] = decode(tp, value[name], path, problems, rules)
    return cls(**kwargs)


def _poses_as(key: str, name: str) -> bool:
    """`key` reads as `name` but is not it (a look-alike or invisible character in it)."""
    return key != name and lookalike.skeleton(key).strip() == name


def _nullable(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in (
        typing.get_args(tp)
    )


def _unknown_key(where: str, key: object, value: object, fields: Iterable[str]) -> Problem:
    """An unknown key, and the key meant: never offered when it is what the key reads as (a
    look-alike or invisible character in it); that character is named instead."""
    known = list(fields)
    path = key_path(where, key)
    if not isinstance(key, str):
        return Problem(path, value, "unknown key", f"known keys: {', '.join(known)}")
    if lookalike.suspects(key):
        reads = lookalike.skeleton(key).strip()
        named = lookalike.explain(key)
        if reads in known:
            return Problem(
                path,
                value,
                f"is not the key {reads!r} it looks like: it contains {named}",
                lookalike.retype_fix(key),
            )
        close = closest(reads, known)
        fix = f"did you mean {close!r}?" if close else f"known keys: {', '.join(known)}"
        return Problem(path, value, f"unknown key (it contains {named})", fix)
    close = closest(key, known)
    fix = f"did you mean {close!r}?" if close else f"known keys: {', '.join(known)}"
    return Problem(path, value, "unknown key", fix)


def contains_broken(value: object) -> bool:
    """Whether a decoded value has a BROKEN part anywhere (a partial value)."""
    if isinstance(value, Broken):
        return True
    if isinstance(value, tuple | list):
        return any(contains_broken(v) for v in value)
    if isinstance(value, Mapping):
        return any(contains_broken(v) for v in value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(contains_broken(getattr(value, f.name)) for f in dataclasses.fields(value))
    return False
