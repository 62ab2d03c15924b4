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
from lab.common.commands import Command, cmd, render_probe, render_remote
from lab.common.errors import CommandFailed, tail
from lab.hosts.hypervisor import HostFacts, choose_hypervisor, kvm_usable
from lab.net.netmath import node_subnets


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
    ],
    ids=["no-argv", "two-stdins", "end-marker-in-stdin"],
)
def test_a_command_that_cannot_be_run_as_given_is_refused_saying_why(
    make: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make()


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


def test_node_subnets_fill_a_cidr_exactly_and_refuse_one_more() -> None:
    cidr = IPv4Network("10.244.0.0/23")
    assert node_subnets(cidr, 24, 2) == (
        IPv4Network("10.244.0.0/24"),
        IPv4Network("10.244.1.0/24"),
    )
    with pytest.raises(ValueError, match=r"^10\.244\.0\.0/23 holds fewer than 3 /24 subnets$"):
        node_subnets(cidr, 24, 3)
