"""Look-alike and invisible characters (pure): what makes `nodes` written with a Cyrillic o
(U+043E) read as `nodes`, `node1` with a zero-width space in it read as `node1`, and `name: x`
with a no-break space after the colon read as a key and a value, when they are none of these.

A suspect is a character that passes for an ASCII one (UTS #39's confusables: Cyrillic and
Greek letters, fullwidth and mathematical forms, dashes, quotes, slashes), another script's
digit, a space that is no plain space (U+00A0 NO-BREAK SPACE, ...), or one that shows nothing
(format characters: zero width spaces and joiners, byte-order marks, bidirectional controls;
Hangul fillers). Messages
name each by its code point and Unicode name, `U+0430 CYRILLIC SMALL LETTER A`, and the ASCII
character it passes for, so a person can find it and retype it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

# UTS #39 confusables of ASCII letters, digits and the punctuation lab files are made of, for
# the characters NFKC does not already fold to ASCII (fullwidth and mathematical forms do)
_CONFUSABLES: Final = {
    # Cyrillic
    "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y",
    "\u0445": "x", "\u0455": "s", "\u0456": "i", "\u0458": "j", "\u0501": "d", "\u051b": "q",
    "\u051d": "w", "\u04bb": "h", "\u04cf": "l", "\u0475": "v", "\u04af": "y", "\u04bd": "e",
    "\u0261": "g", "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K", "\u041c": "M",
    "\u041d": "H", "\u041e": "O", "\u0420": "P", "\u0421": "C", "\u0422": "T", "\u0425": "X",
    "\u0423": "Y", "\u0406": "I", "\u0408": "J", "\u0405": "S", "\u051a": "Q", "\u051c": "W",
    "\u04ae": "Y", "\u04c0": "I", "\u0417": "3", "\u0431": "6",
    # Greek
    "\u03b1": "a", "\u03bf": "o", "\u03bd": "v", "\u03c1": "p", "\u03b9": "i", "\u03ba": "k",
    "\u03c5": "u", "\u03c7": "x", "\u03f2": "c", "\u03b3": "y", "\u03f3": "j", "\u0391": "A",
    "\u0392": "B", "\u0395": "E", "\u0396": "Z", "\u0397": "H", "\u0399": "I", "\u039a": "K",
    "\u039c": "M", "\u039d": "N", "\u039f": "O", "\u03a1": "P", "\u03a4": "T", "\u03a5": "Y",
    "\u03a7": "X", "\u03f9": "C",
    # Latin letters that pass for others
    "\u0131": "i", "\u0237": "j", "\u0251": "a", "\u2113": "l", "\u0269": "i", "\u029f": "L",
    "\u1d20": "v", "\ua4f2": "I",
    # Armenian
    "\u0578": "n", "\u057d": "u", "\u0585": "o", "\u0570": "h", "\u0566": "q",
    # punctuation
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\u2043": "-", "\u02d7": "-", "\u2027": ".", "\u2024": ".", "\u00b7": ".",
    "\u0589": ":", "\u02f8": ":", "\u2236": ":", "\u02d0": ":", "\u2215": "/", "\u2044": "/",
    "\u29f8": "/", "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'", "\u201c": '"',
    "\u201d": '"', "\u201e": '"', "\u2033": '"', "\u01c0": "l", "\u2223": "|",
}  # fmt: skip
# letters that show nothing although Unicode counts them as letters
_BLANK_LETTERS: Final = frozenset("\u115f\u1160\u3164\uffa0")

Kind = Literal["look-alike", "digit", "space", "invisible", "control"]
_KIND_WORDS: Final = {
    "look-alike": "which looks like {like!r}",
    "digit": "a digit but not an ASCII one ({like})",
    "space": "a space that is no plain space",
    "invisible": "which shows nothing",
    "control": "a control character",
}


@dataclass(frozen=True)
class Suspect:
    """A character at `position` of a text that is not what it looks like: `looks_like` is
    the ASCII text it passes for ("" for one that shows nothing)."""

    position: int
    char: str
    looks_like: str
    kind: Kind

    @property
    def code_point(self) -> str:
        return code_point(self.char)

    def describe(self, text: str) -> str:
        """`U+043E CYRILLIC SMALL LETTER O, which looks like 'o', at position 1 (after 'n')`."""
        what = _KIND_WORDS[self.kind].format(like=self.looks_like)
        before = text[max(0, self.position - 12) : self.position]
        where = f"after {before!r}" if before else "at the start"
        return f"{self.code_point}, {what}, at position {self.position} ({where})"


def code_point(ch: str) -> str:
    """`U+0430 CYRILLIC SMALL LETTER A`; a character Unicode gives no name: its category."""
    names = {"\t": "CHARACTER TABULATION", "\n": "LINE FEED", "\r": "CARRIAGE RETURN"}
    name = names.get(ch) or unicodedata.name(ch, "") or f"(unnamed, {unicodedata.category(ch)})"
    return f"U+{ord(ch):04X} {name}"


def _classify(ch: str) -> tuple[Kind, str] | None:
    if ch.isascii():
        return ("control", "") if unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" else None
    category = unicodedata.category(ch)
    if category == "Zs":
        return "space", " "
    if category in ("Cf", "Zl", "Zp") or ch in _BLANK_LETTERS:
        return "invisible", ""
    if category == "Cc":
        return "control", ""
    if ch in _CONFUSABLES:
        return "look-alike", _CONFUSABLES[ch]
    if category == "Nd":  # another script's digit: int() reads it, no address or port does
        return "digit", str(unicodedata.digit(ch))
    folded = unicodedata.normalize("NFKC", ch)
    if folded != ch and folded.isascii() and folded.isprintable() and folded.strip():
        return "look-alike", folded
    return None


def suspects(text: str) -> tuple[Suspect, ...]:
    """Every look-alike, non-plain space, invisible or control character of `text` (tab,
    line feed and carriage return are not suspects: a check of its own names them). A letter
    is a look-alike only in a word that mixes it with ASCII letters (nodes with a Cyrillic o)
    or whose every letter passes for ASCII (exo written in Cyrillic): a word of Russian or
    Greek text is just that."""
    if text.isascii() and text.isprintable():
        return ()
    found = []
    for i, ch in enumerate(text):
        if (ch.isascii() and ch >= " ") or ch in "\t\n\r":
            continue
        classified = _classify(ch)
        if classified is None:
            continue
        kind, like = classified
        if kind == "look-alike" and ch.isalpha() and not _faking_word(text, i):
            continue
        found.append(Suspect(i, ch, like, kind))
    return tuple(found)


def _faking_word(text: str, at: int) -> bool:
    """Whether the word around `at` passes for an ASCII word: it has ASCII letters, or all
    its letters are ASCII or look-alikes."""
    start, end = at, at + 1
    while start > 0 and _in_word(text[start - 1]):
        start -= 1
    while end < len(text) and _in_word(text[end]):
        end += 1
    letters = [c for c in text[start:end] if c.isalpha()]
    if any(c.isascii() for c in letters):
        return True
    return all(_classify(c) is not None for c in letters)


def _in_word(ch: str) -> bool:
    return ch.isalnum() or ch in "-_." or unicodedata.category(ch) in ("Cf", "Mn")


def skeleton(text: str) -> str:
    """What `text` reads as: each look-alike replaced by the ASCII it passes for, each space
    by a plain space, what shows nothing dropped."""
    marks = {s.position: s for s in suspects(text)}
    return "".join(marks[i].looks_like if i in marks else ch for i, ch in enumerate(text))


def explain(text: str, limit: int = 2) -> str:
    """Which characters of `text` are suspects, the first `limit` of them named ("" when there
    is none): `U+043E CYRILLIC SMALL LETTER O, which looks like 'o', at position 1 (after
    'n')`."""
    found = suspects(text)
    named = "; ".join(s.describe(text) for s in found[:limit])
    more = f"; and {len(found) - limit} more" if len(found) > limit else ""
    return named + more


def retype_fix(text: str) -> str:
    """How to fix a text with suspects, without offering what the person already typed."""
    kinds = {s.kind for s in suspects(text)}
    if kinds <= {"invisible", "control"}:
        return "delete the character(s) that show nothing (retype the text by hand)"
    return "retype it in plain ASCII (a look-alike comes from a copy and paste or a keyboard)"
