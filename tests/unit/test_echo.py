"""The fleet's echo server (lab/runtime/echo.py) to the letter: the TCP half's socat line, the
UDP half's one-line Python program and the interpreter it is handed to, the port's bounds.
(tests/unit/test_agent.py runs the UDP program for real on loopback.)"""

from __future__ import annotations

import shlex

import pytest

from lab.runtime import echo
from lab.runtime.images import ECHO_PORT


def test_the_echo_server_answers_tcp_and_udp_with_seen_name_and_address() -> None:
    assert echo.identity_echo_args(8080) == (
        "sh",
        "-c",
        "socat TCP-LISTEN:8080,fork,reuseaddr,backlog=128 "
        'SYSTEM:"echo \\$SOCAT_PEERADDR $NETLAB_POD \\$SOCAT_SOCKADDR" & '
        f"exec python3 -c {shlex.quote(echo.UDP_SERVER)} 8080",
    )
    assert echo.identity_echo_args() == echo.identity_echo_args(ECHO_PORT)


def test_the_udp_half_runs_with_the_interpreter_the_pod_has_quoted_for_the_shell() -> None:
    script = echo.identity_echo_args(9000, python="/opt/my python")[2]
    assert script.endswith(f" & exec '/opt/my python' -c {shlex.quote(echo.UDP_SERVER)} 9000")


@pytest.mark.parametrize("port", [1, 65535])
def test_the_echo_server_listens_on_either_bound_of_the_port_range(port: int) -> None:
    script = echo.identity_echo_args(port)[2]
    assert script.startswith(f"socat TCP-LISTEN:{port},fork,")
    assert script.endswith(f" {port}")


@pytest.mark.parametrize("port", [0, 65536])
def test_a_port_outside_the_range_is_named(port: int) -> None:
    with pytest.raises(ValueError, match=f"^port {port} is not a TCP port$"):
        echo.identity_echo_args(port)


def test_a_program_becomes_one_exec_line_that_runs_its_lines_in_order() -> None:
    line = echo.one_line(("a = [1]", "a.append(2)"))
    assert line == "exec('a = [1]\\na.append(2)')"
    scope: dict[str, object] = {}
    exec(line, scope)  # the program this test just built
    assert scope["a"] == [1, 2]
    assert echo.one_line(echo.UDP_SERVER_LINES) == echo.UDP_SERVER
    assert "\n" not in echo.UDP_SERVER
