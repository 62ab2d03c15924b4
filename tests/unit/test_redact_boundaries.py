"""Exact cases for the redaction policy's helpers (lab/common/redact.py) at their edges: where a
line break before a private key's END line starts, which dots and words make a JWT, how far a
certificate's armor is looked for around a base64 block, what of a `user:password` stays, and
when a `KEY=value` sits inside a JSON string."""

from __future__ import annotations

import pytest

from lab.common import redact as policy
from lab.common.redact import MASK, redact

END = "-----END PRIVATE KEY-----"


# _line_break_before(text, at, floor): `at` is where the END line starts, `floor` where the
# walk back must stop (the end of the body masked before); -1 when no break ends before `at`
@pytest.mark.parametrize(
    ("before", "floor", "expected"),
    [
        ("MIIEow\n", 0, 6),  # a real line break
        ("MIIEow\r\n", 0, 6),  # CRLF: the break starts at the \r
        ("MIIEow\n \t ", 0, 6),  # blanks after the break (an indented END line)
        ('"MIIEow\\n', 0, 7),  # `\n` inside a JSON string
        ('"MIIEow\\r\\n', 0, 7),  # `\r\n` inside a JSON string
        ("MIIEow", 0, -1),  # no break: the END line is on the body's line
        ("MIIEow\nXX", 0, -1),  # a word between the break and the END line
        # the break right on the floor is found; one character of it below the floor is not
        ("\n", 0, 0),
        ("\n", 1, -1),
        ("\r\n", 0, 0),
        ("\r\n", 1, 1),  # the \r is below the floor: the break starts at the \n
        ("\\n", 0, 0),
        ("\\n", 1, -1),
        ("\\r\\n", 0, 0),
        ("\\r\\n", 1, 2),
    ],
)
def test_line_break_before_the_end_line(before: str, floor: int, expected: int) -> None:
    assert policy._line_break_before(before + END, len(before), floor) == expected


def test_a_jwt_may_start_after_a_non_word_character_or_a_percent_escape_only() -> None:
    text = "session=eyJhb; sessioneyJhb; token%3DeyJhb"
    assert policy._eligible_jwt_start(text, 0) is True
    assert policy._eligible_jwt_start(text, text.index("eyJ")) is True  # after '='
    assert policy._eligible_jwt_start(text, text.index("sessioneyJ") + 7) is False
    assert policy._eligible_jwt_start(text, text.index("%3DeyJ") + 3) is True


H = "eyJhbGciOiJSUzI1NiJ9"  # {"alg":"RS256"}
P = "eyJzdWIiOiJzeXN0ZW06c2EifQ"  # {"sub":"system:sa"}
S = "c2lnbmF0dXJl"
JWT = f"{H}.{P}.{S}"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # a JWT inside a word is no JWT (base64 that happens to hold eyJ)
        (f"session{JWT}", f"session{JWT}"),
        # the shortest header and payload a JWT has: eyJ and 6 more characters each
        ("t eyJhbGciO.eyJzdWIiO.x", f"t {MASK}"),
        ("t eyJhbGci.eyJzdWIiO.x", "t eyJhbGci.eyJzdWIiO.x"),  # a header one short
        ("t eyJhbGciO.eyJzdWIi.x", "t eyJhbGciO.eyJzdWIi.x"),  # a payload one short
        # a header and a signature only, and a payload that is no JSON: no JWT
        (f"kid {H}.{S}", f"kid {H}.{S}"),
        (f"t {H}.{S}.{S}", f"t {H}.{S}.{S}"),
        # a dotted prefix in the same run: the JWT starts after it, not at it
        (f"x.{JWT} next", f"x.{MASK} next"),
        (f"kid=a.{H} then {JWT}", f"kid=a.{H} then {MASK}"),
        # two JWTs joined by a dot are two masks
        (f"{JWT}.{JWT}", f"{MASK}.{MASK}"),
        # an 8-character part before a JWT is not its header
        (f"eyJzdWIi.{JWT}", f"eyJzdWIi.{MASK}"),
    ],
)
def test_jwts_in_a_run_of_dotted_parts(text: str, masked: str) -> None:
    assert policy._mask_jwts(text) == masked


@pytest.mark.timeout(30)
def test_a_jwt_after_several_parts_that_are_none() -> None:
    text = f"a.b.c.{JWT}"
    assert policy._mask_jwts(text) == f"a.b.c.{MASK}"


BODY = ("QUJD" * 16 + "\n") * 2 + "R0g="
CERT_BEGIN = "-----BEGIN CERTIFICATE-----"
CERT_END = "-----END CERTIFICATE-----"


def public(prefix: str, suffix: str, body: str = BODY) -> bool:
    text = prefix + body + suffix
    return policy._public_armor(text, len(prefix), len(prefix) + len(body))


def test_a_block_under_a_certificate_begin_line_is_public() -> None:
    assert public(f"{CERT_BEGIN}\n", "\n")  # its END line cut off
    # openssl's subject line above and the rest of the log below stay out of the judgement
    assert public(f"subject=CN = kubernetes\n{CERT_BEGIN}\n", "\n(log cut here)\n")


def test_a_block_over_a_certificate_end_line_is_public() -> None:
    assert public("", f"\n{CERT_END}\n")  # its BEGIN line cut off
    assert public("the BEGIN line of this one was lost in the log:\n", f"\n{CERT_END}")


def test_a_certificate_inside_a_json_string_is_public() -> None:
    body = BODY.replace("\n", "\\n")
    assert public(f'{{"ca.crt": "{CERT_BEGIN}\\n', f'\\n{CERT_END}\\n"}}', body)


def test_a_private_key_armor_is_no_public_armor() -> None:
    assert not public("-----BEGIN PRIVATE KEY-----\n", "\n-----END PRIVATE KEY-----\n")


def test_a_line_between_the_armor_and_the_block_unlinks_them() -> None:
    assert not public(f"{CERT_BEGIN}\nXXXX\n", "\n")
    assert not public("", f"\nXXXX\n{CERT_END}\n")


def test_the_armor_is_looked_for_within_200_characters_of_the_block() -> None:
    # BEGIN's first dash 200 characters above the block, then 201
    assert public(f"{CERT_BEGIN}\n" + " " * (200 - len(CERT_BEGIN) - 1), "\n")
    assert not public(f"{CERT_BEGIN}\n" + " " * (201 - len(CERT_BEGIN) - 1), "\n")
    # END's last dash the 200th character below the block, then the 201st
    assert public("", "\n" + " " * (200 - len(CERT_END) - 1) + CERT_END)
    assert not public("", "\n" + " " * (201 - len(CERT_END) - 1) + CERT_END)


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        (
            'crictl pull --creds "bob:pa55w0rd" registry.example/app:1',
            f'crictl pull --creds "bob:{MASK}" registry.example/app:1',
        ),
        (
            "crictl pull --creds 'bob:pa55w0rd' registry.example/app:1",
            f"crictl pull --creds 'bob:{MASK}' registry.example/app:1",
        ),
        # a quote the line cut off before it closed stays unclosed
        ("crictl pull --creds 'bob:pa55w0rd", f"crictl pull --creds 'bob:{MASK}"),
        # a password holding ':' is masked whole: the user ends at the first ':'
        (
            "crictl pull --creds bob:pa:55w0rd registry.example/app:1",
            f"crictl pull --creds bob:{MASK} registry.example/app:1",
        ),
        # no ':' in the value: all of it may be the secret
        (
            "crictl pull --creds s3cr3tT0ken registry.example/app:1",
            f"crictl pull --creds {MASK} registry.example/app:1",
        ),
        (
            "crictl pull --creds Xq7vT0ken registry.example/app:1",
            f"crictl pull --creds {MASK} registry.example/app:1",
        ),
        (
            "crictl pull --creds 's3cr3tT0ken' registry.example/app:1",
            f"crictl pull --creds '{MASK}' registry.example/app:1",
        ),
        (
            "curl -fsS -u 'admin:pa:55' https://10.10.10.241/",
            f"curl -fsS -u 'admin:{MASK}' https://10.10.10.241/",
        ),
    ],
)
def test_the_user_stays_and_the_password_goes(line: str, masked: str) -> None:
    assert redact(line) == masked


def test_a_key_value_inside_a_json_string_ends_at_its_closing_quote() -> None:
    line = '{"msg":"exported AWS_SESSION_TOKEN=FwoGZXIvYXdzE"}'
    assert redact(line) == f'{{"msg":"exported AWS_SESSION_TOKEN={MASK}"}}'
    assert policy._in_json_string(line, 0, line.index("AWS_")) is True
    # four quotes before it: the string closed again
    assert policy._in_json_string('{"a":"b" AWS_SESSION_TOKEN=x', 0, 9) is False
