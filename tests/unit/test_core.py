"""Small pure pieces: command rendering, probe framing, redaction, hypervisor choice, waits."""

from __future__ import annotations

import pytest

from lab.common import waits
from lab.common.commands import Command, Output, cmd, parse_probe, render_probe, render_remote
from lab.common.redact import MASK, redact
from lab.hosts.hypervisor import HostFacts, choose_hypervisor

TOKEN = "io1pa7.pp3wbn8i4hbi7ktn"
CERT_KEY = "b98b6165eafb91dd690bb693a8e2f57f6043865fcf75da68aa1a3b6b61ac3ca9"
JOIN = (
    f"kubeadm join 10.10.10.241:6443 --token {TOKEN} --discovery-token-ca-cert-hash "
    "sha256:e9dd69f71312e61280d6d3a257f811135b43dea7e62fd667478bb776af16737d"
)


def test_argv_is_quoted_once_for_the_remote_shell() -> None:
    assert render_remote(cmd("echo", "a b", "$HOME", sudo=False)) == "echo 'a b' '$HOME'"
    assert render_remote(cmd("swapoff", "-a")) == "sudo -n swapoff -a"


def test_stdin_travels_as_a_quoted_here_document() -> None:
    rendered = render_remote(Command(("tee", "/tmp/x"), stdin="$not_expanded\n"))
    assert rendered == "sudo -n tee /tmp/x <<'NETLAB_STDIN'\n$not_expanded\nNETLAB_STDIN"
    with pytest.raises(ValueError, match="must not contain"):
        Command(("cat",), stdin="NETLAB_STDIN\n")


def test_probe_outputs_are_split_back_per_command() -> None:
    script = render_probe([cmd("cat", "/proc/swaps", sudo=False), cmd("cat", "/nope")])
    assert script.count("@@NETLAB-EXIT") == 2
    stdout = "Filename Type\n/swapfile file\n\n@@NETLAB-EXIT 0\n\n@@NETLAB-EXIT 1\n"
    assert parse_probe(stdout, 2) == (
        Output(0, "Filename Type\n/swapfile file\n"),
        Output(1, ""),
    )
    with pytest.raises(ValueError, match="ended early"):
        parse_probe(stdout, 3)
    with pytest.raises(ValueError, match="cannot take stdin"):
        render_probe([Command(("cat",), stdin="x\n")])


@pytest.mark.parametrize(
    "text",
    [
        JOIN,
        f"kubeadm join --token={TOKEN} --certificate-key {CERT_KEY}",
        f'{{"token": "{TOKEN}"}}',
    ],
)
def test_join_tokens_and_certificate_keys_are_redacted(text: str) -> None:
    out = redact(text)
    assert TOKEN not in out
    assert CERT_KEY not in out
    assert MASK in out


def test_explicit_secrets_are_redacted_even_without_a_known_shape() -> None:
    assert redact("password=hunter2", secrets=("hunter2",)) == f"password={MASK}"


FACTS_PVM = HostFacts(dev_kvm_accessible=True, kvm_vendor_module=False, virt_cpu_flag=False)
FACTS_KVM = HostFacts(dev_kvm_accessible=True, kvm_vendor_module=True, virt_cpu_flag=True)


def test_paravirtual_kvm_falls_back_to_tcg_with_a_warning() -> None:
    choice = choose_hypervisor("auto", FACTS_PVM)
    assert (choice.driver, choice.cpu_mode, choice.cpu_model) == ("qemu", "custom", "qemu64")
    assert "no kvm_intel/kvm_amd module" in choice.warning
    assert "no vmx/svm CPU flag" in choice.warning


def test_real_kvm_is_used_silently() -> None:
    choice = choose_hypervisor("auto", FACTS_KVM)
    assert (choice.driver, choice.warning) == ("kvm", "")


def test_forcing_kvm_where_it_cannot_run_warns_and_forcing_qemu_is_silent() -> None:
    assert choose_hypervisor("kvm", FACTS_PVM).warning.startswith("vm.hypervisor is forced")
    assert choose_hypervisor("qemu", FACTS_KVM).driver == "qemu"
    assert choose_hypervisor("qemu", FACTS_KVM).warning == ""


def test_a_named_wait_gives_up_on_time_and_says_what_it_saw() -> None:
    clock = {"t": 0.0}
    policy = waits.Policy("the thing ready", timeout_s=5, interval_s=1)
    with pytest.raises(waits.WaitTimeout, match="the thing ready: not done after 5s; last saw 3"):
        waits.wait_until(
            policy, lambda: 3, lambda v: v > 3, sleep=lambda s: clock.update(t=clock["t"] + s)
        )


def test_retry_call_retries_only_the_listed_errors_and_reraises() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("mirror hiccup")
        return "ok"

    policy = waits.Policy("mirror", timeout_s=60, interval_s=0, max_attempts=5)
    assert waits.retry_call(policy, flaky, on=(ConnectionError,), sleep=lambda s: None) == "ok"
    with pytest.raises(KeyError):
        waits.retry_call(policy, lambda: {}["x"], on=(ConnectionError,), sleep=lambda s: None)
    policy2 = waits.Policy("mirror", timeout_s=60, interval_s=0, max_attempts=2)
    calls.clear()
    with pytest.raises(ConnectionError):
        waits.retry_call(policy2, flaky, on=(ConnectionError,), sleep=lambda s: None)
    assert len(calls) == 2


def test_a_join_command_is_redacted_in_the_printed_plan_logs_and_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from lab.adapters.ssh import SshChannel
    from lab.common.errors import CommandFailed
    from lab.hosts.parse import SshTarget
    from lab.model.labfile import load_lab
    from provision import el7
    from provision.steps import PlannedStep, render_plan

    lab = load_lab("labs/guide-centos7.yaml")
    node = lab.node("k8s-node1")
    facts = el7.JoinFacts(False, tuple(JOIN.split()))
    (command,) = el7.plan_join(lab, node, facts)
    assert TOKEN in command.argv, "the real command carries the token"
    printed = render_plan(node, [PlannedStep(el7.JOIN, (command,))])
    assert TOKEN not in printed
    assert MASK in printed
    failure = CommandFailed(
        render_remote(command),
        1,
        stdout=f"using token {TOKEN}",
        where="k8s-node1",
        secrets=command.secrets,
    )
    assert TOKEN not in str(failure)
    log = tmp_path / "node.log"
    ssh = SshChannel("guide-centos7", "k8s-node1", SshTarget("k8s-node1", "h", 22, "u", ()), log)
    ssh._log(render_remote(command), 0, f"token {TOKEN} accepted", "", command.secrets)
    assert TOKEN not in log.read_text()
    assert MASK in log.read_text()
