"""The value after a secret-naming key, masked exactly: where it starts and ends (quotes, escaped
quotes, trailing blanks, the end of the text, block scalars, nested structures), and what is
left alone (plain values like null, an empty value)."""

from __future__ import annotations

import pytest

from lab.redact import redact


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("password: hunter2", "password: <redacted>"),
        ("password: hunter2  \t", "password: <redacted>  \t"),
        ("password: hunter2 \r\nnext: 1", "password: <redacted> \r\nnext: 1"),
        ('password: "hunter2" tail\nx', 'password: "<redacted>" tail\nx'),
        ('password: "hunter2', 'password: "<redacted>'),
        ("pw_token: 'a'\npassword: 'b'", "pw_token: '<redacted>'\npassword: '<redacted>'"),
        ('"password": "p\\"q", "token": "t"', '"password": "<redacted>", "token": "<redacted>"'),
        ("password: {\n  token: abc\n}", "password: {\n  token: <redacted>\n}"),
        ("password: null", "password: null"),
        ("password: |\n  line1\n  line2\nnext: 1", "password: |\n<redacted>\nnext: 1"),
        ("password: \nnext: 1", "password: \nnext: 1"),
        ("token: x password: y", "token: <redacted>"),
    ],
    ids=[
        "end-of-text", "trailing-blanks", "crlf", "double-quoted", "unclosed-quote",
        "two-lines", "escaped-quote", "nested-mapping", "null", "block-scalar", "empty",
        "to-the-line-end",
    ],
)  # fmt: skip
def test_the_value_of_a_secret_key_is_masked_exactly(text: str, masked: str) -> None:
    assert redact(text) == masked
