"""Exact cases for what makes a word in lab/model/lookalike.py: a word of Russian next to an
ASCII name is Russian, one that mixes in a Latin letter (across '-', a zero-width space or a
combining accent) fakes ASCII; and which fix a text's suspects call for."""

from __future__ import annotations

import pytest

from lab.model import lookalike
from lab.model.lookalike import Suspect

ZWSP = "\u200b"


@pytest.mark.parametrize(
    "text",
    [
        "сервер по node1",  # "server on node1": a space ends each word
        "мое node1",  # "my node1"
        "узел мое, node-1",
    ],
)
def test_a_russian_word_next_to_an_ascii_name_has_no_suspects(text: str) -> None:
    assert lookalike.suspects(text) == ()


def test_a_latin_letter_at_a_words_start_makes_it_a_faking_word() -> None:
    # "Мир" ("world") typed with a Latin M: its Cyrillic er (U+0440) passes for p
    assert lookalike.suspects("Mи\u0440") == (Suspect(2, "\u0440", "p", "look-alike"),)


@pytest.mark.parametrize(
    ("text", "positions"),
    [
        ("k8s-мастер", (5, 6, 8, 9)),  # '-' joins the word
        ("k8s_мастер", (5, 6, 8, 9)),  # '_' too
        (f"k8s{ZWSP}мастер", (3, 5, 6, 8, 9)),  # a zero-width space hides inside the word
        ("cafe\u0301-меню", (7,)),  # a combining accent (NFD é) is part of the word
    ],
)
def test_a_word_joined_to_ascii_letters_fakes_ascii(text: str, positions: tuple[int, ...]) -> None:
    assert tuple(s.position for s in lookalike.suspects(text)) == positions


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("node1\x07", "delete the character(s) that show nothing (retype the text by hand)"),
        (f"node{ZWSP}1\x07", "delete the character(s) that show nothing (retype the text by hand)"),
        (
            f"n\u043ede{ZWSP}1",
            "retype it in plain ASCII (a look-alike comes from a copy and paste or a keyboard)",
        ),
    ],
)
def test_the_fix_says_delete_only_when_nothing_is_a_look_alike(text: str, fix: str) -> None:
    assert lookalike.retype_fix(text) == fix


def test_explain_names_the_first_two_suspects_and_counts_the_rest() -> None:
    co, ce, ca = "\u043e", "\u0435", "\u0430"  # Cyrillic o, ie, a
    o = "U+043E CYRILLIC SMALL LETTER O, which looks like 'o', at position 1 (after 'n')"
    e = f"U+0435 CYRILLIC SMALL LETTER IE, which looks like 'e', at position 3 (after 'n{co}d')"
    assert lookalike.explain(f"n{co}d{ce}s") == f"{o}; {e}"  # two: no count
    assert lookalike.explain(f"n{co}d{ce}s n{ca}me") == f"{o}; {e}; and 1 more"
    assert lookalike.explain(f"n{co}d{ce}s n{ca}m{ce}") == f"{o}; {e}; and 2 more"
    assert lookalike.explain(f"n{co}d{ce}s", limit=1) == f"{o}; and 1 more"
    assert lookalike.explain("nodes") == ""


def test_a_letter_that_is_no_suspect_does_not_end_the_search() -> None:
    # 'é' is a letter of its own (no look-alike): the no-break space after it is still found
    assert lookalike.suspects("café\u00a0x") == (Suspect(4, "\u00a0", " ", "space"),)


def test_a_look_alike_in_a_plain_foreign_word_does_not_end_the_search() -> None:
    # Russian "privet": its look-alike letters are no suspects in a Russian word, and the
    # no-break space after the word still is
    word = "\u043f\u0440\u0438\u0432\u0435\u0442"
    assert lookalike.suspects(f"{word}\u00a0x") == (Suspect(6, "\u00a0", " ", "space"),)
