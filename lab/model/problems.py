"""One problem, one typed value (pure): where it is, what value was found there, what is wrong
and how to fix it. Lab validation, the strict decoder and the cluster checks all return these;
`str()` renders the one line a person reads, with the value cut to a readable length (a long
number with its digit count), every secret redacted (before the cut, too), and any look-alike or
invisible character of a text value named by its code point (lab.model.lookalike).
"""

from __future__ import annotations

import reprlib
import sys
from dataclasses import dataclass
from typing import Any, Final

from lab.common.redact import redact
from lab.model import lookalike

# an echoed value longer than this is cut, with its real length said
ECHO_CHARS: Final = 60
# no rendered problem is longer than this, whatever a check put in its message
LINE_CHARS: Final = 1000
# an echoed integer longer than this is shown cut, with its number of digits
ECHO_DIGITS: Final = 24
# how much of a long value is redacted before it is cut (a secret that starts in what is shown
# is masked whole even when it ends after the cut)
REDACT_WINDOW: Final = 4096


class _Absent:
    """No value to show (a missing key, a cluster object described in the message)."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT: Final = _Absent()


class _Echo(reprlib.Repr):
    """A repr bounded in items, depth and string length, whatever the value's size."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 2
        self.maxlist = self.maxtuple = self.maxset = self.maxdict = 4
        self.maxstring = ECHO_CHARS
        self.maxother = ECHO_CHARS
        self.maxlong = 24

    def repr_str(self, x: str, level: int) -> str:
        return shorten(x)

    def repr_int(self, x: int, level: int) -> str:
        return digits(x)


_ECHO = _Echo()


def shorten(text: str, limit: int = ECHO_CHARS) -> str:
    """`text` as a repr, cut after `limit` characters: 'aaaa…' (1048576 characters). What is
    shown of a long text is redacted before the cut, so a secret cut in two is still masked."""
    if len(text) <= limit:
        return repr(text)
    shown = redact(text[:REDACT_WINDOW])[:limit]
    return f"{shown!r}… ({len(text)} characters)"


def digits(number: int) -> str:
    """An integer as a problem shows it: whole up to ECHO_DIGITS digits, else its first digits,
    an ellipsis and how many digits it has (never cut silently in the middle)."""
    try:
        text = str(number)
    except ValueError:  # longer than Python converts (sys.get_int_max_str_digits())
        return f"<a number of more than {sys.get_int_max_str_digits()} digits>"
    count = len(text.lstrip("-"))
    if count <= ECHO_DIGITS:
        return text
    return f"{text[: ECHO_DIGITS - 4]}… ({count} digits)"


def echo(value: object) -> str:
    """A value as a problem shows it: a bounded repr, never the whole of a huge value."""
    if isinstance(value, str):
        return shorten(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return digits(value)
    try:
        text = _ECHO.repr(value)
    except RecursionError:  # a self-referencing value
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 2 * ECHO_CHARS else text[: 2 * ECHO_CHARS] + "…"


@dataclass(frozen=True)
class Problem:
    """One thing wrong: `where` (a lab field path like `nodes[0].name`, a position like
    `line 3, column 5`, or a cluster object like `node k8s-node1`), the `value` found there
    (ABSENT when there is none to show), what is wrong, and how to fix it."""

    where: str
    value: Any = ABSENT
    message: str = ""
    fix: str = ""

    @property
    def field(self) -> str:
        """The lab field path (`where`), under its older name."""
        return self.where

    def __str__(self) -> str:
        shown = "" if self.value is ABSENT else f" = {echo(self.value)}"
        fix = f"; {self.fix}" if self.fix else ""
        line = redact(f"{self.where}{shown}: {self.message}{self._lookalikes()}{fix}")
        return line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + "…"

    def _lookalikes(self) -> str:
        """The look-alike or invisible characters of an echoed text value, named by code
        point, unless the message names them already: the value reads as something else."""
        if not isinstance(self.value, str) or "U+" in self.message:
            return ""
        named = lookalike.explain(self.value[:REDACT_WINDOW])
        return f" (it contains {named})" if named else ""


def render_problems(problems: list[Problem] | tuple[Problem, ...], limit: int = 50) -> list[str]:
    """Each problem as one `  - ...` line, at most `limit` of them and a count of the rest."""
    lines = [f"  - {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more problem(s)")
    return lines
