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
