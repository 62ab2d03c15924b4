"""How each character is told (kind, and the ASCII it passes for) and named, one branch of
`_classify` and `code_point` at a time, with exact answers."""

from __future__ import annotations

import pytest

from lab.model.lookalike import _classify, code_point, suspects


@pytest.mark.parametrize(
    ("ch", "told"),
    [
        ("a", None),  # plain ASCII
        ("\t", None),  # tab, line feed and carriage return: a check of their own
        ("\n", None),
        ("\r", None),
        ("\x01", ("control", "")),
        ("\x1b", ("control", "")),
        ("\x7f", ("control", "")),
        ("\u00a0", ("space", " ")),  # NO-BREAK SPACE (Zs)
        ("\u3000", ("space", " ")),  # IDEOGRAPHIC SPACE (Zs)
        ("\u200b", ("invisible", "")),  # ZERO WIDTH SPACE (Cf)
        ("\u2028", ("invisible", "")),  # LINE SEPARATOR (Zl)
        ("\u2029", ("invisible", "")),  # PARAGRAPH SEPARATOR (Zp)
        ("\u0085", ("control", "")),  # NEXT LINE: a C1 control (Cc), not ASCII
        ("\u043e", ("look-alike", "o")),  # CYRILLIC SMALL LETTER O
        ("\u0663", ("digit", "3")),  # ARABIC-INDIC DIGIT THREE (Nd)
        ("\uff53", ("look-alike", "s")),  # FULLWIDTH LATIN SMALL LETTER S: NFKC folds it
        ("\ufb01", ("look-alike", "fi")),  # LATIN SMALL LIGATURE FI
        ("\u00e9", None),  # LATIN SMALL LETTER E WITH ACUTE: NFKC keeps it
        ("\u00bd", None),  # VULGAR FRACTION ONE HALF: folds to a fraction slash, not ASCII
        ("\u0436", None),  # CYRILLIC SMALL LETTER ZHE: no Latin twin
        ("\u3164", ("invisible", "")),  # HANGUL FILLER: a letter that shows nothing
    ],
)
def test_each_character_is_told_its_kind_and_what_it_passes_for(
    ch: str, told: tuple[str, str] | None
) -> None:
    assert _classify(ch) == told


def test_a_character_is_named_by_unicode_or_by_its_category() -> None:
    assert code_point("\t") == "U+0009 CHARACTER TABULATION"
    assert code_point("\n") == "U+000A LINE FEED"
    assert code_point("\r") == "U+000D CARRIAGE RETURN"
    assert code_point("\x01") == "U+0001 (unnamed, Cc)"
    assert code_point("\u0085") == "U+0085 (unnamed, Cc)"
    assert code_point("\u0430") == "U+0430 CYRILLIC SMALL LETTER A"
    assert code_point("\U0001f600") == "U+1F600 GRINNING FACE"


def test_a_control_character_in_a_name_is_a_suspect_that_shows_nothing() -> None:
    (found,) = suspects("node\x011")
    assert (found.position, found.kind, found.looks_like) == (4, "control", "")
    assert found.code_point == "U+0001 (unnamed, Cc)"


def test_no_printable_ascii_character_is_a_suspect_of_any_kind() -> None:
    # suspects() skips these before asking _classify: the answer would be the same
    from lab.model.lookalike import _classify

    assert [c for c in map(chr, range(0x20, 0x7F)) if _classify(c) is not None] == []
