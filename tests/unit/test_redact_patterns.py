"""Each rule of the redaction policy (lab/redact.py) has a case only it masks. A secret that
two rules both catch proves neither: breaking one would go unnoticed. So every case here is
masked with the whole policy, and shown again (the secret readable) when its own rule alone
is switched off."""

from __future__ import annotations

import re

import pytest

from lab import redact as policy
from lab.redact import MASK, redact

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
    assert redact(f"{TOKEN}_x") == f"{TOKEN}_x"
    assert redact("ABCDEF.0123456789ABCDEF") == "ABCDEF.0123456789ABCDEF"
