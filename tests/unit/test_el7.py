"""The el7 (guide) provisioning's inputs (provision/el7.py): the join command, made once."""

from __future__ import annotations

import pytest

from lab.common.commands import render_remote
from provision import el7
from tests import fakes

JOIN = (
    "kubeadm join 192.168.0.1:6443 --token abcdef.0123456789abcdef "
    "--discovery-token-ca-cert-hash sha256:00ff\n"
)


def test_a_join_command_is_made_once_on_the_control_plane_with_a_minute_to_answer() -> None:
    script = fakes.script(
        fakes.Step("k8s-master", el7.JOIN_COMMAND.argv, stdout=JOIN),  # once: strict
    )
    source = el7.JoinCommandSource(fakes.FakeChannel("guide-centos7", "k8s-master", script))
    assert source() == tuple(JOIN.split())
    assert source() == tuple(JOIN.split())
    script.done()
    ((_, command, timeout),) = script.ran
    assert (render_remote(command), timeout) == (
        "sudo -n kubeadm token create --print-join-command --ttl 30m",
        60,
    )


def test_a_lab_without_a_control_plane_cannot_join_a_worker() -> None:
    with pytest.raises(
        ValueError, match=r"^a worker needs to join but the lab has no control plane$"
    ):
        el7.JoinCommandSource(None)()
