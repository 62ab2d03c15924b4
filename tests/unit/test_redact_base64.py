"""What a base64 run encodes (`_decoded_base64`): text of 12 characters or more, in either
alphabet, wrapped or not, with a neighbour's characters or bytes left out; anything else None."""

from __future__ import annotations

import base64

from lab.common.redact import _decoded_base64

JOIN = "kubeadm join 10.10.10.241:6443"


def b64(data: bytes, *, urlsafe: bool = False) -> str:
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()


def test_a_run_decodes_to_its_text_padded_or_not() -> None:
    assert _decoded_base64(b64(JOIN.encode())) == JOIN
    assert _decoded_base64(b64(JOIN.encode()).rstrip("=")) == JOIN
    for text, padding in (
        ("a secret is13", "=="),
        ("a secret is 14", "="),
        ("a secret is 15!", ""),
    ):
        run = b64(text.encode())
        assert run.endswith(padding)
        assert run[len(run) - 3 :].count("=") == len(padding)
        assert _decoded_base64(run) == text
        assert _decoded_base64(run.rstrip("=")) == text  # 18, 19 and 20 characters


def test_a_run_wrapped_by_line_breaks_or_their_escapes_decodes_whole() -> None:
    run = b64(JOIN.encode())
    assert _decoded_base64(run[:16] + "\n" + run[16:]) == JOIN
    assert _decoded_base64(run[:16] + "\\n" + run[16:24] + "\\r" + run[24:]) == JOIN
    assert _decoded_base64(run[:8] + " \t" + run[8:]) == JOIN


def test_the_url_safe_alphabet_is_read_when_the_run_uses_it() -> None:
    data = b"??>>~~ a secret ~~>>??"  # its standard base64 holds '+' and '/'
    standard, safe = b64(data), b64(data, urlsafe=True)
    assert "/" in standard
    assert "_" in safe
    assert "-" in safe
    assert _decoded_base64(safe) == data.decode()
    assert _decoded_base64(standard) == data.decode()


def test_a_neighbours_character_after_the_last_group_is_left_out() -> None:
    run = b64(JOIN.encode())
    assert len(run) % 4 == 0
    assert _decoded_base64(run + "Q") == JOIN  # 4n + 1 characters: the last is dropped
    short = b64(b"eighteen bytes, 18")  # 24 characters, 25 with the neighbour's
    assert _decoded_base64(short + "Q") == "eighteen bytes, 18"


def test_a_run_that_ends_in_x_keeps_it() -> None:
    run = b64(b"a secret is 15W")  # 15 bytes, no padding; the last 6 bits of 'W' are 'X'
    assert run.endswith("X")
    assert _decoded_base64(run) == "a secret is 15W"


def test_a_neighbours_bytes_up_to_three_are_cut_four_are_not_text() -> None:
    assert _decoded_base64(b64(JOIN.encode() + b"\xff")) == JOIN
    assert _decoded_base64(b64(JOIN.encode() + b"\xff\xff\xff")) == JOIN
    assert _decoded_base64(b64(JOIN.encode() + b"\xff\xff\xff\xff")) is None


def test_only_printable_text_of_twelve_characters_or_more_counts() -> None:
    assert _decoded_base64(b64(b"twelve chars")) == "twelve chars"
    assert _decoded_base64(b64(b"eleven char")) is None
    assert _decoded_base64(b64(b"line one\nline two")) == "line one\nline two"
    assert _decoded_base64(b64(b"a bell \x07 inside it")) is None
    assert _decoded_base64("not base64 at all!") is None
