"""Node facts (lab/hosts/facts.py): how a fact that cannot be read is said."""

from __future__ import annotations

from lab.common.commands import Output, cmd
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
