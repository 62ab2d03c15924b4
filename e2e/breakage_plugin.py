"""A pytest plugin that breaks the suite's own echo server on purpose, for the breakage
catalogue's suite mutants (e2e/breakages.py `mutant`): `NETLAB_BREAKAGE=echo-constant-address`
makes every fleet echo server print a constant client address, `echo-answers-as-another-pod`
makes each name its node's other fleet pod. Loaded with `-p e2e.breakage_plugin` (the
breakages runner passes it; xdist hands it to every worker); without the variable it does
nothing. The checks must then fail: a probe that trusted any answer would not."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from e2e.breakages import CONSTANT_SEEN
from lab.runtime import echo

ENV = "NETLAB_BREAKAGE"
PEER = "\\$SOCAT_PEERADDR"  # how the echo script names the client address it saw (TCP)
UDP_PEER = "peer[0]"  # and how its UDP server does
POD = f"${echo.POD_NAME_ENV}"
# the fleet's pods are named ...-p0, ...-p1: each answers with its sibling's name (exported,
# so that the UDP half, which reads it from its environment, names the sibling too)
SIBLING = (
    f"case {POD} in *-p0) o=${{{echo.POD_NAME_ENV}%0}}1;; "
    f"*) o=${{{echo.POD_NAME_ENV}%?}}0;; esac; {echo.POD_NAME_ENV}=$o; export {echo.POD_NAME_ENV}; "
)


def mutate_script(mutant: str, script: str) -> str:
    """The echo server's shell script with the mutant's change (ValueError: unknown)."""
    if mutant == "echo-constant-address":
        if PEER not in script:
            raise ValueError(f"the echo script no longer prints {PEER}: update this plugin")
        return script.replace(PEER, CONSTANT_SEEN)
    if mutant == "echo-answers-as-another-pod":
        if POD not in script:
            raise ValueError(f"the echo script no longer prints {POD}: update this plugin")
        return SIBLING + script.replace(POD, "$o")
    raise ValueError(f"{ENV}={mutant!r}: no such suite mutant")


def mutate_udp_server(mutant: str, lines: tuple[str, ...]) -> tuple[str, ...]:
    """The UDP half's Python with the mutant's change (the sibling's name comes through the
    environment the shell part exports)."""
    if mutant != "echo-constant-address":
        return lines
    if not any(UDP_PEER in line for line in lines):
        raise ValueError(f"the UDP echo no longer answers {UDP_PEER}: update this plugin")
    return tuple(line.replace(UDP_PEER, repr(CONSTANT_SEEN)) for line in lines)


def mutated(
    mutant: str, original: Callable[..., tuple[str, ...]]
) -> Callable[..., tuple[str, ...]]:
    def identity_echo_args(*args: str | int, **kwargs: str | int) -> tuple[str, ...]:
        argv = original(*args, **kwargs)
        return (*argv[:-1], mutate_script(mutant, argv[-1]))

    return identity_echo_args


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    mutant = os.environ.get(ENV, "")
    if mutant:
        mutate_script(mutant, echo.identity_echo_args()[-1])  # fail early on a bad name
        lines = mutate_udp_server(mutant, echo.UDP_SERVER_LINES)
        echo.UDP_SERVER = echo.one_line(lines)
        echo.identity_echo_args = mutated(mutant, echo.identity_echo_args)
