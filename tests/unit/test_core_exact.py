"""The small pure pieces, pinned to their exact output: how commands are batched and rendered,
what a failed command says, how a named wait retries and logs, why KVM was not used, how a
problem echoes a value and names a character."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from ipaddress import IPv4Network

import pytest

from lab.common import waits
from lab.common.commands import Command, batch, cmd, render_probe, render_remote
from lab.common.errors import CommandFailed, tail
from lab.hosts.hypervisor import HostFacts, choose_hypervisor, kvm_usable
from lab.model.problems import ABSENT, Problem, echo
from lab.model.strict import (
    ONE_LINE,
    Ambiguous,
    DecodeError,
    any_address,
    any_network,
    integer,
    mapping,
    text,
)
from lab.net.netmath import node_subnets

# --- commands ------------------------------------------------------------------------------


def test_cmd_keeps_stdin_sudo_and_mirror() -> None:
    assert cmd("tee", "/f", stdin="x", sudo=False, mirror=True) == Command(
        ("tee", "/f"), "x", False, mirror=True
    )
    assert cmd("true") == Command(("true",), None, True, mirror=False)


def test_stdin_without_a_final_newline_gets_one_before_the_end_marker() -> None:
    assert render_remote(cmd("tee", "/f", stdin="a", sudo=False)) == (
        "tee /f <<'NETLAB_STDIN'\na\nNETLAB_STDIN"
    )
    assert render_remote(cmd("tee", "/f", stdin="a\n", sudo=False)) == (
        "tee /f <<'NETLAB_STDIN'\na\nNETLAB_STDIN"
    )


def test_a_batch_is_one_sh_script_stopping_at_the_first_failure() -> None:
    one = Command(("ip", "link", "add", "x y"), sudo=False, secrets=("s1",))
    two = Command(("tee", "/etc/f"), stdin="line\n", sudo=True, secrets=("s2",), mirror=True)
    got = batch(one, two)
    assert got.argv == (
        "sh",
        "-ec",
        "ip link add 'x y'\ntee /etc/f <<'NETLAB_STDIN'\nline\nNETLAB_STDIN",
    )
    assert got.stdin is None
    assert (got.sudo, got.mirror, got.secrets) == (True, True, ("s1", "s2"))


def test_a_batch_needs_sudo_or_a_mirror_only_when_one_of_its_commands_does() -> None:
    got = batch(cmd("true", sudo=False), cmd("false", sudo=False))
    assert (got.sudo, got.mirror, got.secrets) == (False, False, ())
    assert render_remote(got) == "sh -ec 'true\nfalse'"


def test_probe_script_is_one_line_per_command_with_its_exit_marker() -> None:
    script = render_probe([cmd("cat", "/a", sudo=False), cmd("cat", "/b")])
    assert script == (
        "cat /a 2>/dev/null; printf '\\n@@NETLAB-EXIT %s\\n' \"$?\"\n"
        "sudo -n cat /b 2>/dev/null; printf '\\n@@NETLAB-EXIT %s\\n' \"$?\""
    )
    with pytest.raises(ValueError, match=r"^a probe command cannot take stdin$"):
        render_probe([cmd("cat", stdin="x")])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Command(()), "a command needs at least one argv word"),
        (
            lambda: Command(("cat",), stdin="x", stdin_file="/tmp/a.tar"),
            "a command takes stdin or stdin_file, not both",
        ),
        (
            lambda: Command(("tee", "/f"), stdin="a\nNETLAB_STDIN\nb"),
            "stdin must not contain a line 'NETLAB_STDIN'",
        ),
        (
            lambda: batch(cmd("true"), Command(("ctr", "images", "import", "-"), stdin_file="/a")),
            "a command streaming a file to its stdin cannot be batched",
        ),
    ],
    ids=["no-argv", "two-stdins", "end-marker-in-stdin", "streamed-file-in-a-batch"],
)
def test_a_command_that_cannot_be_run_as_given_is_refused_saying_why(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make()


# --- errors --------------------------------------------------------------------------------


def test_tail_keeps_the_last_lines_without_trailing_blank_ones() -> None:
    text_ = "\n".join(f"l{i}" for i in range(30)) + "\n\n"
    assert tail(text_) == "\n".join(f"l{i}" for i in range(10, 30))
    assert tail("  a\nb\nc\n", 2) == "b\nc"
    assert tail("  a\nb\n", 5) == "  a\nb"


def test_a_failed_command_says_where_how_and_the_tails_with_secrets_masked() -> None:
    err = CommandFailed(
        "kubeadm join --token s3cr3t",
        2,
        stdout="out s3cr3t\n",
        stderr="err s3cr3t\n",
        where="node1",
        reproduce="ssh node1 kubeadm join --token s3cr3t",
        secrets=("s3cr3t",),
    )
    assert str(err) == (
        "command on node1 exited 2: kubeadm join --token <redacted>\n"
        "--- stdout (tail) ---\nout <redacted>\n"
        "--- stderr (tail) ---\nerr <redacted>\n"
        "reproduce: ssh node1 kubeadm join --token <redacted>"
    )
    assert (err.command, err.exit_code, err.stdout, err.stderr, err.where, err.reproduce) == (
        "kubeadm join --token <redacted>",
        2,
        "out <redacted>\n",
        "err <redacted>\n",
        "node1",
        "ssh node1 kubeadm join --token <redacted>",
    )


def test_a_timed_out_command_without_output_reproduces_with_itself_locally() -> None:
    err = CommandFailed("curl -u x:pw http://m", None, secrets=("pw",))
    assert str(err) == (
        "command on local timed out: curl -u x:<redacted> http://m\n"
        "reproduce: curl -u x:<redacted> http://m"
    )
    assert (err.stdout, err.stderr, err.where) == ("", "", "local")


# --- waits ---------------------------------------------------------------------------------


def test_a_fixed_wait_sleeps_its_interval_and_logs_each_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slept: list[float] = []
    values = iter([1, 2, 3])
    policy = waits.Policy("port open", timeout_s=60, interval_s=1.5)
    with caplog.at_level(logging.INFO, logger="lab.common.waits"):
        assert waits.wait_until(policy, lambda: next(values), lambda v: v == 3, slept.append) == 3
    assert slept == [1.5, 1.5]
    assert [r.getMessage() for r in caplog.records] == [
        "port open: attempt 1 not yet (got 1); retrying",
        "port open: attempt 2 not yet (got 2); retrying",
    ]


def test_a_backoff_wait_doubles_up_to_eight_intervals() -> None:
    slept: list[float] = []
    policy = waits.Policy("mirror", timeout_s=10_000, interval_s=2, max_attempts=7, backoff=True)
    with pytest.raises(ConnectionError):
        waits.retry_call(policy, _refuse, on=(ConnectionError,), sleep=slept.append)
    assert slept == [2, 4, 8, 16, 16, 16]


def _refuse() -> None:
    raise ConnectionError("refused\nsecond line")


def test_a_retried_exception_is_logged_by_type_and_first_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = waits.Policy("mirror", timeout_s=60, interval_s=0, max_attempts=2)
    with caplog.at_level(logging.INFO, logger="lab.common.waits"), pytest.raises(ConnectionError):
        waits.retry_call(policy, _refuse, on=(ConnectionError,), sleep=lambda s: None)
    assert [r.getMessage() for r in caplog.records] == [
        "mirror: attempt 1 not yet (ConnectionError: refused); retrying"
    ]


def test_an_exception_without_text_is_logged_by_its_type_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def silent() -> None:
        raise TimeoutError

    policy = waits.Policy("boot", timeout_s=60, interval_s=0, max_attempts=2)
    with caplog.at_level(logging.INFO, logger="lab.common.waits"), pytest.raises(TimeoutError):
        waits.retry_call(policy, silent, on=(TimeoutError,), sleep=lambda s: None)
    assert caplog.records[0].getMessage() == "boot: attempt 1 not yet (TimeoutError: ); retrying"


def test_a_long_result_is_logged_cut_to_200_and_reported_cut_to_300_characters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = waits.Policy("big", timeout_s=60, interval_s=0, max_attempts=2)
    with (
        caplog.at_level(logging.INFO, logger="lab.common.waits"),
        pytest.raises(waits.WaitTimeout) as e,
    ):
        waits.wait_until(policy, lambda: "x" * 500, lambda v: False, sleep=lambda s: None)
    logged = caplog.records[0].getMessage()
    assert logged == "big: attempt 1 not yet (" + ("got '" + "x" * 500)[:200] + "); retrying"
    assert str(e.value) == "big: not done after 60s; last saw '" + "x" * 299


# --- hypervisor ----------------------------------------------------------------------------


def test_kvm_needs_all_three_facts() -> None:
    assert kvm_usable(HostFacts(True, True, True))
    for facts in (
        HostFacts(True, True, False),
        HostFacts(True, False, True),
        HostFacts(False, True, True),
        HostFacts(False, False, True),
    ):
        assert not kvm_usable(facts)


def test_the_tcg_warning_names_every_missing_fact() -> None:
    assert choose_hypervisor("auto", HostFacts(False, False, False)).warning == (
        "KVM is unusable here (/dev/kvm is not accessible, no kvm_intel/kvm_amd module, "
        "no vmx/svm CPU flag): using QEMU software emulation (TCG), roughly 5-10x slower; "
        "set vm.hypervisor to silence this"
    )
    assert choose_hypervisor("kvm", HostFacts(True, False, True)).warning == (
        "vm.hypervisor is forced to kvm but KVM looks unusable here (no kvm_intel/kvm_amd "
        "module): guests may never boot; the boot wait is bounded"
    )


# --- netmath -------------------------------------------------------------------------------


def test_node_subnets_fill_a_cidr_exactly_and_refuse_one_more() -> None:
    cidr = IPv4Network("10.244.0.0/23")
    assert node_subnets(cidr, 24, 2) == (
        IPv4Network("10.244.0.0/24"),
        IPv4Network("10.244.1.0/24"),
    )
    with pytest.raises(ValueError, match=r"^10\.244\.0\.0/23 holds fewer than 3 /24 subnets$"):
        node_subnets(cidr, 24, 3)


# --- problems and the strict decoder ------------------------------------------------------


def test_absent_reads_as_absent() -> None:
    assert repr(ABSENT) == "<absent>"
    assert str(Problem("nodes", message="a lab needs at least one node")) == (
        "nodes: a lab needs at least one node"
    )


def test_an_echoed_value_keeps_four_items_two_levels_and_24_digits() -> None:
    assert echo([1, 2, 3, 4, 5]) == "[1, 2, 3, 4, ...]"
    assert echo({"a": {"b": {"c": 1}}}) == "{'a': {'b': {...}}}"
    assert echo((1, 2, 3, 4)) == "(1, 2, 3, 4)"
    assert echo(10**24) == "10000000000000000000… (25 digits)"  # never cut mid-number
    assert echo(10**23) == "100000000000000000000000"  # 24 digits
    assert echo(["y" * 70]) == "['" + "y" * 60 + "'… (70 characters)]"


def test_control_characters_are_named_with_their_code_point() -> None:
    cases = {"\r": "U+000D carriage return", "\x00": "U+0000 NUL", "\x85": "U+0085 unnamed"}
    for ch, name in cases.items():
        with pytest.raises(DecodeError) as e:
            text(f"ab{ch}c", "f", ONE_LINE)
        assert f"contains the control character {name} at position 2" in str(e.value)


def test_an_ambiguous_scalar_echoes_as_written_cut_after_60_characters() -> None:
    assert repr(Ambiguous("0" * 60, 0, "a number")) == "0" * 60
    # issue 30: a long number is cut with its digit count, never silently mid-number
    assert repr(Ambiguous("0" * 61, 0, "a number")) == "0" * 20 + "… (61 digits)"
    assert repr(Ambiguous("x" * 61, 0, "a date")) == "'" + "x" * 60 + "'… (61 characters)"


def test_an_ambiguous_scalar_where_a_number_is_meant_asks_for_plain_digits() -> None:
    with pytest.raises(DecodeError) as e:
        integer(Ambiguous("010", 8, "octal 8"), "vm.cpus")
    assert e.value.problem == Problem(
        "vm.cpus",
        Ambiguous("010", 8, "octal 8"),
        "was read as octal 8, not as an integer (YAML 1.1 reads it that way)",
        "write it in plain decimal digits (no leading 0, no '_' or ':')",
    )


def test_an_ambiguous_text_asks_for_quotes_showing_it_whole_or_not_at_all() -> None:
    with pytest.raises(DecodeError) as e:
        text(Ambiguous("1" * 60, 1, "a number"), "name")
    assert e.value.problem.fix == f"put it in quotes: {'1' * 60!r}"
    # issue 30: never the first 60 characters of a longer value (a number cut mid-number)
    with pytest.raises(DecodeError) as e:
        text(Ambiguous("1" * 61, 1, "a number"), "name")
    assert e.value.problem.fix == "put it in quotes"


def test_a_non_mapping_is_refused_where_it_is() -> None:
    assert mapping({"a": 1}, "x") == {"a": 1}
    with pytest.raises(DecodeError) as e:
        mapping([1], "vm")
    assert e.value.problem == Problem("vm", [1], "must be a mapping, not a list")


@pytest.mark.parametrize("decode", [any_address, any_network])
def test_an_address_that_is_no_text_is_refused_at_its_field(decode: object) -> None:
    with pytest.raises(DecodeError) as e:
        decode(5, "status.podIP")  # type: ignore[operator]
    assert e.value.problem.where == "status.podIP"
