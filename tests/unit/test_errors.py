"""What a failed command says (lab/common/errors.py), to the letter: where it ran, how it ended,
the tails of both streams with secrets masked, and the line that reproduces it."""

from __future__ import annotations

from lab.common.errors import CommandFailed, tail


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


def test_a_stream_of_only_blank_lines_is_not_shown() -> None:
    err = CommandFailed("true", 1, stdout="  \n", stderr="\n\t\n")
    assert str(err) == "command on local exited 1: true\nreproduce: true"
    assert (err.stdout, err.stderr) == ("  \n", "\n\t\n")


def test_a_secret_only_the_caller_knows_is_masked_in_the_command_and_the_reproduce_line() -> None:
    # no rule of the table knows `--user admin:<password>` for ctr: only the command's secrets do
    err = CommandFailed(
        "ctr images pull --user admin:Hx9q2Lm registry.local/pause:3.9",
        1,
        where="node2",
        secrets=("Hx9q2Lm",),
    )
    assert err.command == "ctr images pull --user admin:<redacted> registry.local/pause:3.9"
    assert err.reproduce == err.command
    assert str(err) == (
        "command on node2 exited 1: ctr images pull --user admin:<redacted> "
        "registry.local/pause:3.9\n"
        "reproduce: ctr images pull --user admin:<redacted> registry.local/pause:3.9"
    )
