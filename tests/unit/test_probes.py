"""The probe answers' parsers (e2e/probes.py), on answers written out here."""

from __future__ import annotations

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
