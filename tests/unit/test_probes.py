"""The probe answers' parsers (e2e/probes.py), on answers written out here."""

from __future__ import annotations

import pytest

from e2e import probes


def test_agnhost_with_one_answer_says_the_client_it_saw_and_not_who_it_is() -> None:
    one = "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n10.244.0.5:41234"
    assert probes.parse_agnhost(one) == probes.Echo("10.244.0.5")
    assert probes.parse_agnhost("10.244.0.6:80\n") == probes.Echo("10.244.0.6")


def test_agnhost_asked_twice_says_its_pods_name_then_the_client() -> None:
    both = (
        "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nweb-0\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n10.244.0.5:41234"
    )
    assert probes.parse_agnhost(both) == probes.Echo("10.244.0.5", "web-0")


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("10.244.0.5:41234", "10.244.0.5"),
        ("[fd00::5]:41234", "fd00::5"),
        ("web-X:8080", "web-X"),
        ("10.244.0.5", "10.244.0.5"),  # no port: the text as it is
        (":8080", ":8080"),  # no host
        ("10.244.0.5:http", "10.244.0.5:http"),  # no port number
        ("  \n", None),
    ],
)
def test_the_client_address_is_the_host_before_a_numeric_port(
    text: str, address: str | None
) -> None:
    assert probes.http_body_address(text) == address


def test_a_body_without_content_length_runs_to_the_end_whatever_other_numbers_say() -> None:
    answer = "HTTP/1.1 200 OK\r\nAge: 3\r\nX-Note: content-length: 2\r\n\r\n10.244.0.5:41234"
    assert probes.http_bodies(answer) == ["10.244.0.5:41234"]


def test_the_echo_servers_line_is_the_source_then_who_answered() -> None:
    assert probes.parse_echo("10.244.0.5 nl-a-p0 10.244.1.2\n") == probes.Echo(
        "10.244.0.5", "nl-a-p0", "10.244.1.2"
    )
    # a fourth word is no part of the identity; two words are not a whole one
    assert probes.parse_echo("10.244.0.5 nl-a-p0 10.244.1.2 extra\n") == probes.Echo(
        "10.244.0.5", "nl-a-p0", "10.244.1.2"
    )
    assert probes.parse_echo("10.244.0.5 nl-a-p0\n") == probes.Echo("10.244.0.5")
    assert probes.parse_echo("\n  \n") == probes.Echo(None)
