"""Each rule of the redaction policy (lab/common/redact.py) has a case only it masks. A secret that
two rules both catch proves neither: breaking one would go unnoticed. So every case here is
masked with the whole policy, and shown again (the secret readable) when its own rule alone
is switched off."""

from __future__ import annotations

import logging
import re
import sys

import pytest

from lab.common import redact as policy
from lab.common.redact import MASK, redact

NEVER = re.compile(r"(?!)")  # a pattern that matches nothing
TOKEN = "7x3kq9.vb2n8m4p6r1t5w0z"
CERT_KEY = "ba2ac48cfec6e9884d7da9412c63c662e27c8787288993d68ccfa4d1765d9c13"

# (the rule, a text only it masks, the secret in that text, the text as the policy prints it)
CASES = [
    (
        "_BOOTSTRAP_TOKEN",
        f"then run with {TOKEN} on the node",
        TOKEN,
        f"then run with {MASK} on the node",
    ),
    (
        "_BOOTSTRAP_TOKEN",
        "7x3kq9.vb2n8m4p\\\n    6r1t5w0z wrapped",
        "6r1t5w0z",
        f"{MASK} wrapped",
    ),
    ("_SECRET_KEY", '{"token": "s3cr3t-Value!"}', "s3cr3t-Value!", f'{{"token": "{MASK}"}}'),
    (
        "_SECRET_KEY",
        "db_password = hunter2-Hunter2\nuser = x",
        "hunter2-Hunter2",
        f"db_password = {MASK}\nuser = x",
    ),
    (
        "_SECRET_FLAG",
        "mysql --password hunter2-Hunter2 --user x",
        "hunter2-Hunter2",
        f"mysql --password {MASK} --user x",
    ),
    (
        "_SECRET_FLAG",
        "kubeadm join --discovery-token=Not-A-Token-Shape x",
        "Not-A-Token-Shape",
        f"kubeadm join --discovery-token={MASK} x",
    ),
    (
        "_CERT_KEY_LINE",
        f"[upload-certs] Using certificate key:\n{CERT_KEY}\n",
        CERT_KEY,
        f"[upload-certs] Using certificate key:\n{MASK}\n",
    ),
    (
        "_PEM_PRIVATE_KEY",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----",
        "MIIEow",
        f"-----BEGIN RSA PRIVATE KEY-----\n{MASK}\n-----END RSA PRIVATE KEY-----",
    ),
    (
        "_AUTHORIZATION",
        "Authorization: Basic dXNlcjpwYXNz, next",
        "dXNlcjpwYXNz",
        f"Authorization: Basic {MASK}, next",
    ),
    ("_BEARER", "X-Auth: Bearer abcdEFGH1234.xyz", "abcdEFGH1234.xyz", f"X-Auth: Bearer {MASK}"),
    (
        "_USERINFO",
        "git clone https://bob:pa55w0rd@git.example/r.git",
        "pa55w0rd",
        f"git clone https://{MASK}@git.example/r.git",
    ),
]


@pytest.mark.parametrize(
    ("rule", "text", "secret", "masked"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_each_rule_has_a_case_only_it_masks(
    rule: str, text: str, secret: str, masked: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert redact(text) == masked
    monkeypatch.setattr(policy, rule, NEVER)
    assert secret in redact(text), f"another rule than {rule} masks {text!r}"


def test_a_cert_key_line_keeps_its_words_and_only_64_hex_digits_go() -> None:
    assert redact(f"Using certificate key: {CERT_KEY}") == f"Using certificate key: {MASK}"
    assert redact(f"Using certificate key: {CERT_KEY[:63]}") == (
        f"Using certificate key: {CERT_KEY[:63]}"
    )


def test_a_word_that_only_looks_like_a_token_around_letters_stays() -> None:
    assert redact(f"x{TOKEN}") == f"x{TOKEN}"
    assert redact(f"{TOKEN}x") == f"{TOKEN}x"
    assert redact("ABCDEF.0123456789ABCDEF") == "ABCDEF.0123456789ABCDEF"


def test_a_token_next_to_an_underscore_is_a_token() -> None:
    # issue 30: `{TOKEN}_old` leaked; '_' is no letter of a token, so the token ends there
    assert redact(f"{TOKEN}_x") == f"{MASK}_x"
    assert redact(f"x_{TOKEN}") == f"x_{MASK}"


def test_a_spread_pattern_allows_one_line_break_between_any_two_characters() -> None:
    three = re.compile(policy._spread("[a-z]", 3))
    assert three.fullmatch("abc")
    assert three.fullmatch("a\\\n  bc")
    assert three.fullmatch("ab\r\nc")
    assert not three.fullmatch("ab")
    assert not three.fullmatch("abcd")


def test_a_yaml_block_scalar_after_a_secret_key_is_masked_to_its_last_indented_line() -> None:
    text = (
        "users:\n"
        "- name: admin\n"
        "  client-key-data: |\n"
        "    LS0tLS1CRUdJTi\n"
        "\n"
        "    QUFBQUFBQUFB\n"
        "  user: admin\n"
        "private-key: >-\n"
        "  first\n"
        "  second\n"
    )
    assert redact(text) == (
        "users:\n"
        "- name: admin\n"
        f"  client-key-data: |\n{MASK}\n"
        "  user: admin\n"
        f"private-key: >-\n{MASK}"
    )


def test_an_empty_block_scalar_leaves_the_next_key_alone() -> None:
    text = "token: |\nnext: value\n"
    assert redact(text) == text


def test_a_pem_key_inside_a_json_string_keeps_its_escaped_line_breaks() -> None:
    text = '{"key": "-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n"}'
    assert redact(text) == (
        '{"key": "-----BEGIN PRIVATE KEY-----\\n<redacted>\\n-----END PRIVATE KEY-----\\n"}'
    )


def test_a_known_secret_is_masked_in_base64_with_and_without_padding() -> None:
    secret = "hunter2!"  # base64 aHVudGVyMiE=
    assert redact("a aHVudGVyMiE= b aHVudGVyMiE c", [secret]) == f"a {MASK} b {MASK} c"
    assert redact("abc", ["", "b"]) == f"a{MASK}c"


@pytest.mark.parametrize(
    ("text", "secrets", "masked"),
    [
        # base64("aa?aa"): url-safe "YWE_YWE" runs into standard "YWE/YWE=" (they share "YWE")
        ("YWE_YWE/YWE=", ["aa?aa"], MASK),
        ("[abcdefghi]", ["abcdef", "defghi"], f"[{MASK}]"),  # two secrets run into each other
        ("[abcdefgh]", ["cde", "abcdefgh"], f"[{MASK}]"),  # a secret inside another
        ("aaaaa", ["aaaa"], MASK),  # a secret that overlaps itself
        ("s3cr3ts3cr3t", ["s3cr3t"], MASK + MASK),  # side by side: one mask each
        ("YWJjZA== YWJjZA", ["abcd"], f"{MASK} {MASK}"),  # 4 characters: base64 forms too
        ("YWJj abc", ["abc"], f"YWJj {MASK}"),  # 3: the secret only
    ],
    ids=["two-forms", "two-secrets", "inside", "itself", "side-by-side", "four", "three"],
)
def test_known_secrets_that_overlap_in_the_text_leave_no_part_visible(
    text: str, secrets: list[str], masked: str
) -> None:
    assert redact(text, secrets) == masked


def test_a_log_record_with_an_exception_is_redacted_and_rendered_once() -> None:
    try:
        raise RuntimeError(f"join failed: --token {TOKEN}")
    except RuntimeError:
        record = logging.LogRecord(
            "lab", logging.ERROR, __file__, 1, "%s", (f"token: {TOKEN}",), sys.exc_info()
        )
    assert policy.RedactFilter().filter(record)
    assert (record.msg, record.args, record.exc_info) == (f"token: {MASK}", None, None)
    assert record.exc_text is not None
    assert TOKEN not in record.exc_text
    assert record.exc_text.endswith(f"RuntimeError: join failed: --token {MASK}")


def test_log_redaction_is_installed_once_per_handler() -> None:
    logger = logging.getLogger("netlab-test-redaction")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        policy.install_log_redaction(logger)
        policy.install_log_redaction(logger)
        assert [type(f) for f in handler.filters] == [policy.RedactFilter]
    finally:
        logger.removeHandler(handler)


def test_only_the_padding_is_dropped_from_a_secrets_base64_form() -> None:
    # base64("abcdeW") == "YWJjZGVX": dropping more than '=' would mask "YWJjZGV" elsewhere
    assert redact("YWJjZGVX and YWJjZGV1", ["abcdeW"]) == f"{MASK} and YWJjZGV1"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("token: |\n s3cret\nnext: 1", f"token: |\n{MASK}\nnext: 1"),  # one space deeper
        ("x token: |\n  s3cret\n", f"x token: |\n{MASK}"),  # the key is not the line's start
    ],
)
def test_a_block_scalar_is_every_line_indented_deeper_than_its_keys_line(
    text: str, masked: str
) -> None:
    assert redact(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "-----BEGIN PRIVATE KEY-----abc-----END PRIVATE KEY-----",
            f"-----BEGIN PRIVATE KEY-----\n{MASK}\n-----END PRIVATE KEY-----",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nab\\ncd\n-----END PRIVATE KEY-----",
            f"-----BEGIN PRIVATE KEY-----\n{MASK}\n-----END PRIVATE KEY-----",
        ),
    ],
)
def test_a_pem_block_keeps_real_line_breaks_unless_it_has_only_escaped_ones(
    text: str, masked: str
) -> None:
    assert redact(text) == masked


def test_a_block_scalar_on_the_texts_second_line_measures_that_lines_indent() -> None:
    text = "\n  token: |\n   s3cret\n  next: 1"
    assert redact(text) == f"\n  token: |\n{MASK}\n  next: 1"
