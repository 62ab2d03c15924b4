"""The value after a secret-naming key, masked exactly: where it starts and ends (quotes, escaped
quotes, trailing blanks, the end of the text, block scalars, nested structures), and what is
left alone (plain values like null, an empty value). A quote opened and not closed on its line
masks to the line's end, never into the next line; a key inside a masked value does not stop
the keys after it."""

from __future__ import annotations

import pytest

from lab.common.redact import redact


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
        ("token: x password: y\nsecret: z", "token: <redacted>\nsecret: <redacted>"),
        ('password: "abc\nx: "y"', 'password: "<redacted>\nx: "y"'),
        ('password: "a\\"b\nx: "y"', 'password: "<redacted>\nx: "y"'),
        ('password: "a\\"" tail', 'password: "<redacted>" tail'),
        ("password: [\n  token: abc\n]", "password: [\n  token: <redacted>\n]"),
        ("password: |\nnext: 1\ntoken: abc", "password: |\nnext: 1\ntoken: <redacted>"),
        ("password: hunter2X", "password: <redacted>"),
        ("<redacted>\npassword: hunter2", "<redacted>\npassword: <redacted>"),
    ],
    ids=[
        "end-of-text", "trailing-blanks", "crlf", "double-quoted", "unclosed-quote",
        "two-lines", "escaped-quote", "nested-mapping", "null", "block-scalar", "empty",
        "to-the-line-end", "after-a-masked-line", "unclosed-quote-then-a-quote-below",
        "escaped-quote-then-a-quote-below", "escaped-quote-then-closing",
        "nested-list", "empty-block-scalar",
        "ends-in-x", "text-begins-with-a-mask",
    ],
)  # fmt: skip
def test_the_value_of_a_secret_key_is_masked_exactly(text: str, masked: str) -> None:
    assert redact(text) == masked
