"""Node facts (lab/hosts/facts.py): how a fact that cannot be read is said."""

from __future__ import annotations

import pytest

from lab.common.commands import Output, cmd, render_remote
from lab.hosts import facts


def test_an_unreadable_fact_names_the_command_its_exit_and_the_first_200_characters() -> None:
    command = cmd("cat", "/etc/os-release", sudo=False)
    assert str(facts.unreadable(command, Output(1, "  \n"), "the OS")) == (
        "cannot read the OS: `cat /etc/os-release` exited 1"
    )
    assert str(facts.unreadable(command, Output(2, " no such file \n"), "the OS")) == (
        "cannot read the OS: `cat /etc/os-release` exited 2 and printed 'no such file'"
    )
    long = facts.unreadable(command, Output(1, "x" * 300), "the OS")
    assert (
        str(long) == f"cannot read the OS: `cat /etc/os-release` exited 1 and printed '{'x' * 200}'"
    )


def test_the_ipv4_routes_are_each_line_of_ip_route_or_an_error_naming_it() -> None:
    fact = facts.ipv4_routes()
    assert (fact.name, render_remote(fact.command)) == ("ipv4 routes", "ip -4 route show")
    assert fact.parse(
        Output(0, "default via 192.168.124.1 dev eth0\n\n  10.244.1.0/24 via x \n")
    ) == (
        "default via 192.168.124.1 dev eth0",
        "10.244.1.0/24 via x",
    )
    with pytest.raises(
        ValueError, match=r"^cannot read the IPv4 routes: `ip -4 route show` exited 1$"
    ):
        fact.parse(Output(1, ""))


def test_a_text_fact_is_the_stripped_answer_or_none_when_the_command_failed() -> None:
    fact = facts.text_if_ok("bridge MAC", cmd("cat", "/sys/class/net/cni0/address", sudo=False))
    assert fact.name == "bridge MAC"
    assert fact.parse(Output(0, " 0a:58:0a:f4:00:01 \n")) == "0a:58:0a:f4:00:01"
    assert fact.parse(Output(1, "0a:58:0a:f4:00:01\n")) is None


def test_outputs_pair_with_their_commands_only_one_for_one() -> None:
    a, b = cmd("true"), cmd("false")
    assert facts.outputs_by_command([a, b], [Output(0, ""), Output(1, "")]) == {
        a: Output(0, ""),
        b: Output(1, ""),
    }
    with pytest.raises(ValueError, match=r"^2 probe commands but 1 outputs$"):
        facts.outputs_by_command([a, b], [Output(0, "")])
