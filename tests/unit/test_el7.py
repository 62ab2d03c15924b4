"""The el7 (guide) provisioning's inputs (provision/el7.py): the join command, made once."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lab.common.commands import Command, Output, render_remote
from lab.model.labfile import load_lab
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


def test_a_join_command_needs_kubeadm_join_and_a_token_with_its_value() -> None:
    assert el7.parse_join_command("kubeadm join 10.0.0.1:6443 --token abc\n") == (
        "kubeadm",
        "join",
        "10.0.0.1:6443",
        "--token",
        "abc",
    )
    for text in ("kubeadm init --token abc", "kubeadm join 10.0.0.1:6443 --token", ""):
        with pytest.raises(ValueError, match=r"^not a kubeadm join command$"):
            el7.parse_join_command(text)


class SavingPlane:
    """A strict stand-in for the control plane's SavingRunner: records each save."""

    def __init__(self) -> None:
        self.saved: list[tuple[tuple[str, ...], str, float]] = []

    def run_to_file(self, command: Command, path: str, timeout: float = 120) -> None:
        self.saved.append((command.argv, path, timeout))


def test_images_are_saved_once_from_the_control_plane_with_15_minutes_to_do_it() -> None:
    plane = SavingPlane()
    source = el7.ImageArchiveSource(plane, ("busybox:1.28",), "/s/images/e2e.tar")  # type: ignore[arg-type]
    assert source() == "/s/images/e2e.tar"
    assert source() == "/s/images/e2e.tar"
    assert plane.saved == [(("docker", "save", "busybox:1.28"), "/s/images/e2e.tar", 900)]
    assert el7.ImageArchiveSource(plane, (), "/x")() is None  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"^a worker needs the control plane's images; no control plane$"
    ):
        el7.ImageArchiveSource(None, ("busybox:1.28",), "/x")()


def test_a_lab_without_a_control_plane_has_inputs_that_refuse_only_when_asked() -> None:
    guide = load_lab(Path(__file__).resolve().parents[2] / "labs" / "guide-centos7.yaml")
    workers = dataclasses.replace(
        guide, nodes=tuple(dataclasses.replace(n, role="worker") for n in guide.nodes)
    )
    made = el7.inputs(workers, {}, "/tmp/archives")
    assert sorted(made) == ["e2e_archive", "flannel_archive", "join_command"]
    with pytest.raises(ValueError, match="no control plane"):
        made["join_command"]()


def test_system_pods_that_cannot_be_read_say_the_kubectl_command_and_why() -> None:
    assert el7.unsettled_pods(Output(1, "")) == (
        "`kubectl -n kube-system get pods -o json` exited 1 (API server not up yet?)",
    )


def test_a_lab_without_flannel_has_no_flannel_image() -> None:
    ci = load_lab(Path(__file__).resolve().parents[2] / "labs" / "ci-debian12.yaml")
    assert el7._flannel_image(ci) == ""


def test_completion_installs_from_the_mirror_and_appends_one_line_to_bashrc() -> None:
    guide = load_lab(Path(__file__).resolve().parents[2] / "labs" / "guide-centos7.yaml")
    plane = guide.node("k8s-master")
    line = el7.COMPLETION_LINE
    for bashrc, written in (
        (None, f"{line}\n"),
        ("", f"{line}\n"),
        ("# .bashrc\n", f"# .bashrc\n{line}\n"),
        ("alias k=kubectl", f"alias k=kubectl\n{line}\n"),
    ):
        (install, write) = el7.plan_completion(guide, plane, el7.CompletionFacts(False, bashrc))
        assert (install.argv, install.mirror) == (("yum", "install", "-y", "bash-completion"), True)
        assert (write.argv[-1], write.stdin) == ("/home/vagrant/.bashrc", written)
    done = el7.CompletionFacts(True, f"x\n{line}\n")
    assert el7.plan_completion(guide, plane, done) == ()


def test_an_archive_placeholder_names_the_control_plane_and_the_save_or_nothing() -> None:
    guide = load_lab(Path(__file__).resolve().parents[2] / "labs" / "guide-centos7.yaml")
    assert el7.archive_placeholder(guide, ["busybox:1.28"]) == (
        "<k8s-master: docker save busybox:1.28>"
    )
    assert el7.archive_placeholder(guide, []) is None
    workers = dataclasses.replace(
        guide, nodes=tuple(dataclasses.replace(n, role="worker") for n in guide.nodes)
    )
    assert el7.archive_placeholder(workers, ["busybox:1.28"]) is None


def test_ca_certificates_are_installed_when_absent_updated_when_old_from_the_mirror() -> None:
    (install,) = el7.plan_ca_certificates(["kubelet 1.18.1"])
    assert (install.argv, install.mirror) == (("yum", "install", "-y", "ca-certificates"), True)
    (update,) = el7.plan_ca_certificates(["ca-certificates 2018.2.22"])
    assert (update.argv, update.mirror) == (("yum", "update", "-y", "ca-certificates"), True)
    assert el7.plan_ca_certificates([f"ca-certificates {el7.CA_CERTIFICATES_MIN}"]) == ()


def test_selinux_is_disabled_in_place_or_by_an_added_line() -> None:
    assert el7.selinux_config_disabled("# c\nSELINUX=enforcing\nSELINUXTYPE=targeted\n") == (
        "# c\nSELINUX=disabled\nSELINUXTYPE=targeted\n"
    )
    assert el7.selinux_config_disabled("# no mode here\n") == "# no mode here\nSELINUX=disabled\n"


def test_an_rpm_version_is_compared_by_its_numbers_before_any_underscore() -> None:
    assert el7.rpm_version_key("2023.2.60_v7.0.306") == (2023, 2, 60)
    assert el7.rpm_version_key("2023.2.60_v7_0") == (2023, 2, 60)
    assert el7.rpm_version_key("1.18.1") == (1, 18, 1)


def test_packages_install_pinned_from_the_mirror_and_an_unpinned_one_by_name() -> None:
    assert el7.yum_changes({"kubelet": "1.18.1", "socat": ""}, []) == [
        el7.cmd("yum", "install", "-y", "kubelet-1.18.1", "socat", mirror=True)
    ]
    [install] = el7.yum_changes({"kubelet": "1.18.1"}, [])
    assert install.mirror is True
    assert el7.package_changes({"socat": ""}, ["socat 1.7.3.2"]) == ((), ())


def test_a_pull_from_a_mirror_is_retagged_and_one_without_is_pulled_as_is() -> None:
    assert el7.pull("busybox:1.28") == (el7.cmd("docker", "pull", "busybox:1.28", mirror=True),)
    assert el7.pull("quay.io/f:1", "hub/f:1") == (
        el7.cmd("docker", "pull", "hub/f:1", mirror=True),
        el7.cmd("docker", "tag", "hub/f:1", "quay.io/f:1"),
    )


def test_the_vault_repos_take_the_os_key_when_there_is_one() -> None:
    guide = load_lab(Path(__file__).resolve().parents[2] / "labs" / "guide-centos7.yaml")
    with_key = el7.render_vault_repos(guide)
    assert with_key.count("gpgcheck=1") == 3
    assert with_key.count("baseurl=https://mirrors.aliyun.com/centos-vault/7.9.2009/") == 3
    slashless = dataclasses.replace(
        guide, os=dataclasses.replace(guide.os, vault_url="https://v.example/7/X", gpgkey_url="")
    )
    text = el7.render_vault_repos(slashless)
    assert "baseurl=https://v.example/7/X/os/$basearch/" in text
    # without a key nothing can be checked: gpgcheck=0 in each section (not only repo_gpgcheck)
    assert text.count("\ngpgcheck=0\n") == 3
    assert "gpgcheck=1" not in text
    assert "gpgkey" not in text


def test_a_cluster_not_settled_says_every_node_and_pod_that_is_not() -> None:
    guide = load_lab(Path(__file__).resolve().parents[2] / "labs" / "guide-centos7.yaml")
    plane = guide.node("k8s-master")
    facts = el7.ClusterFacts(("k8s-node1 NotReady",), ("coredns Pending",))
    with pytest.raises(el7.NotSettled, match=r"^k8s-node1 NotReady; coredns Pending$"):
        el7.plan_settled(guide, plane, facts)


def test_a_lab_without_kubernetes_is_refused_by_name() -> None:
    ci = load_lab(Path(__file__).resolve().parents[2] / "labs" / "ci-debian12.yaml")
    with pytest.raises(ValueError, match=r"^lab 'ci-debian12' has no kubernetes section$"):
        el7._k8s(ci)


def test_a_worker_asks_for_the_control_planes_image_archive_only_while_an_image_is_missing() -> (
    None
):
    plane, workers = el7.control_plane_first(
        el7.E2E_IMAGES,
        "e2e_archive",
        el7.e2e_hub_images,
        lambda facts: not (facts.busybox and facts.nginx and facts.echo),
    )
    assert (plane.scope, workers.scope) == ("control-plane", "workers")
    assert workers.title == "e2e images via mirrors (from Docker Hub: the control plane's copy)"
    assert workers.needs(el7.E2eImagesFacts(True, True, True)) == ()
    assert workers.needs(el7.E2eImagesFacts(True, False, True)) == ("e2e_archive",)
