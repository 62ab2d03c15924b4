"""The strict decoder's small helpers, each answer pinned: where a key is shown, and whether a
partly decoded value still holds a BROKEN part anywhere (so no check reads it)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from lab.strict import BROKEN, contains_broken, key_path


@pytest.mark.parametrize(
    ("where", "key", "shown"),
    [
        ("vm", "cpus", "vm.cpus"),
        ("", "nodes", "nodes"),
        ("a.b", "x-y_z.1", "a.b.x-y_z.1"),
        ("vm", "has space", "vm['has space']"),
        ("vm", "", "vm['']"),
        ("vm", 7, "vm['7']"),
        ("vm", None, "vm['None']"),
        ("vm", "k" * 64, f"vm.{'k' * 64}"),
        ("vm", "k" * 65, f"vm[{'k' * 30!r}… (65 characters)]"),
        ("vm", ("t",) * 20, f"vm[{repr(('t',) * 20)[:30]!r}… (100 characters)]"),
    ],
    ids=["plain", "top", "dotted", "space", "empty", "int", "none", "64", "65", "long-repr"],
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
