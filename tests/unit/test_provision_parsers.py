"""Probe output as the commands print it on CentOS 7 -> parse -> plan.

The golden cases start from facts; these start one step earlier, from the raw text each probe
command prints (in the format of CentOS 7.8's rpm, systemctl, ethtool, sha256sum, stat and
/proc files), so a parser that misreads real output shows up here and not as "did not
converge" on a real host. A node in the state the guide leaves must plan nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.common.commands import Command, Output, render_remote
from lab.common.redact import redact
from lab.hosts.facts import parse_rpm_versions
from lab.hosts.os import profile as os_profile
from lab.model.labfile import load_lab
from provision import el7
from provision.common import (
    BRIDGE_SYSCTLS,
    K8S_SYSCTL_FILE,
    MODULES_CONTENT,
    ToolsFacts,
    fstab_without_swap,
    hosts_with_nodes,
    parse_systemd_version,
    parse_tool_paths,
    tools_step,
)
from provision.model import AnyStep, sysctl_file
from provision.steps import steps_for

ROOT = Path(__file__).resolve().parents[2]
LAB = load_lab(ROOT / "labs" / "guide-centos7.yaml")
UPSTREAM = (ROOT / "labs" / "vendor" / "kube-flannel-v0.14.0.yml").read_text()
WORKER = LAB.node("k8s-node1")


def step(key: str) -> AnyStep:
    """The guide lab's step `key`, built in the test: mutmut's workers fork after import,
    and a step built at import keeps the original code in its lambdas."""
    return {s.key: s for s in steps_for(LAB, UPSTREAM)}[key]


PROC_MODULES = (
    "br_netfilter 22256 0 - Live 0xffffffffc0472000\n"
    "bridge 151336 1 br_netfilter, Live 0xffffffffc044c000\n"
    "xfs 997727 2 - Live 0xffffffffc031f000\n"
)
PROC_SWAPS_ON = (
    "Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n"
    "/dev/dm-1                               partition\t2097148\t0\t-2\n"
)
PROC_SWAPS_OFF = "Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n"
FSTAB = (
    "\n#\n# /etc/fstab\n# Created by anaconda on Thu Apr 30 16:21:51 2020\n#\n"
    "/dev/mapper/centos-root /                       xfs     defaults        0 0\n"
    "UUID=4e0a3b2c-0e6b-4bd0-9d2a-6f5c1b9e2a11 /boot xfs     defaults        0 0\n"
    "/dev/mapper/centos-swap swap                    swap    defaults        0 0\n"
)
ETHTOOL_ON = (
    "Features for flannel.1:\nrx-checksumming: on\ntx-checksumming: on\n"
    "\ttx-checksum-ipv4: off [fixed]\n\ttx-checksum-ip-generic: on\n"
    "scatter-gather: on\n"
)
ETHTOOL_OFF = ETHTOOL_ON.replace("rx-checksumming: on", "rx-checksumming: off").replace(
    "tx-checksumming: on", "tx-checksumming: off"
)
SUM = "6f1d0c5a0e3b4c9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817"


def run(step: AnyStep, *outputs: tuple[int, str]) -> tuple[object, tuple[str, ...]]:
    """The facts parsed from `outputs` (one per probe command) and the plan, as argv text."""
    facts = step.read_positional(LAB, WORKER, [Output(code, text) for code, text in outputs])
    return facts, tuple(" ".join(c.argv) for c in step.plan(LAB, WORKER, facts))


def test_rpm_query_lines_keep_installed_packages_only() -> None:
    text = "kubelet 1.18.1\npackage kubeadm is not installed\nkubectl 1.18.1\n"
    assert parse_rpm_versions(text) == ("kubelet 1.18.1", "kubectl 1.18.1")


def test_kubernetes_packages_from_rpm_and_systemctl_output() -> None:
    repo = el7.render_repo("kubernetes", "Kubernetes", el7._k8s(LAB).repo)
    installed = (
        "kubelet 1.18.1\nkubeadm 1.18.1\nkubectl 1.18.1\nkubernetes-cni 0.8.7\ncri-tools 1.13.0\n"
    )
    _, plan = run(step("kubernetes-packages"), (0, repo), (0, installed), (0, "enabled\n"))
    assert plan == ()
    _, plan = run(
        step("kubernetes-packages"),
        (0, repo),
        (
            3,
            "kubelet 1.28.2\npackage kubeadm is not installed\npackage kubectl is not installed\n"
            "kubernetes-cni 1.2.0\n",
        ),
        (1, "disabled\n"),
    )
    assert plan == (
        "yum remove -y kubelet kubernetes-cni",
        "yum install -y kubelet-1.18.1-0 kubeadm-1.18.1-0 kubectl-1.18.1-0 kubernetes-cni-0.8.7-0 "
        "cri-tools-1.13.0-0",
        "systemctl enable kubelet",
    )


def test_docker_from_repo_rpm_daemon_json_and_systemctl_output() -> None:
    repo = el7.render_repo("docker-ce-stable", "Docker CE Stable", el7._k8s(LAB).docker.repo)
    rpm = "docker-ce 19.03.15\ndocker-ce-cli 19.03.15\ncontainerd.io 1.4.3\n"
    done = (
        (0, repo),
        (0, rpm),
        (0, el7.render_daemon_json(LAB)),
        (0, "active\n"),
        (0, "enabled\n"),
    )
    assert run(step("docker"), *done)[1] == ()
    stopped = (*done[:3], (3, "inactive\n"), (1, "disabled\n"))
    assert run(step("docker"), *stopped)[1] == (
        "systemctl enable docker",
        "systemctl restart docker",
    )


def test_swap_from_proc_swaps_and_the_installers_fstab() -> None:
    facts, plan = run(step("swap"), (0, PROC_SWAPS_ON), (0, FSTAB))
    assert facts.active == ("/dev/dm-1",)  # type: ignore[attr-defined]
    assert plan[0] == "swapoff -a"
    off_fstab = FSTAB.replace("/dev/mapper/centos-swap", "#/dev/mapper/centos-swap")
    assert run(step("swap"), (0, PROC_SWAPS_OFF), (0, off_fstab))[1] == ()


def test_bridge_netfilter_from_proc_modules_and_sysctl_output() -> None:
    live = "".join(f"{k} = {v}\n" for k, v in BRIDGE_SYSCTLS.items())
    done = ((0, PROC_MODULES), (0, MODULES_CONTENT), (0, sysctl_file(BRIDGE_SYSCTLS)), (0, live))
    assert run(step("bridge-nf"), *done)[1] == ()
    # before br_netfilter is loaded sysctl cannot even name the keys
    missing = "sysctl: cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables: No such file\n"
    facts, plan = run(
        step("bridge-nf"),
        (0, PROC_MODULES.split("\n", 2)[2]),
        (1, ""),
        (1, ""),
        (255, missing),
    )
    assert facts.module_loaded is False  # type: ignore[attr-defined]
    assert plan[0] == "modprobe br_netfilter"
    assert plan[-1] == f"sysctl -p {K8S_SYSCTL_FILE}"


def test_kubeconfig_from_sha256sum_and_stat_output() -> None:
    targets = el7.kubeconfig_targets()
    sums = "".join(f"{SUM}  {p}\n" for p in (el7.ADMIN_CONF, *targets))
    stats = "".join(f"{p} 600 {owner}\n" for p, owner in targets.items())
    stats += "/home/vagrant/.kube 700 vagrant\n"
    assert run(step("kubeconfig"), (0, sums), (0, stats))[1] == ()
    missing = f"{SUM}  {el7.ADMIN_CONF}\n"
    _, plan = run(step("kubeconfig"), (1, missing), (1, ""))
    assert len(plan) == 1 + len(targets), "the user's ~/.kube, then each copy"


@pytest.mark.parametrize(
    ("ethtool", "expected"),
    [
        ((0, ETHTOOL_ON), ("ethtool --offload flannel.1 rx off tx off",)),
        ((0, ETHTOOL_OFF), ()),
        ((71, "Cannot get device feature names: No such device\n"), ()),
    ],
    ids=["checksum-on", "checksum-off", "no-flannel-device-yet"],
)
def test_vxlan_offload_from_ethtool_output(ethtool: tuple[int, str], expected: tuple[str]) -> None:
    assert run(step("vxlan-offload"), (0, el7.OFFLOAD_RULE_CONTENT), ethtool)[1] == expected


JOIN_OUTPUT = (
    "kubeadm join 10.10.10.241:6443 --token abcdef.0123456789abcdef     "
    "--discovery-token-ca-cert-hash "
    "sha256:2f0ad1bbd9d4e3b2cd0e8b1d2c4a5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f \n"
)


def test_the_printed_join_command_is_parsed_and_its_token_is_the_secret() -> None:
    argv = el7.parse_join_command(JOIN_OUTPUT)
    assert argv[:3] == ("kubeadm", "join", "10.10.10.241:6443")
    assert el7.join_secrets(argv) == ("abcdef.0123456789abcdef",)
    with_key = (*argv, "--control-plane", "--certificate-key", "f8902e11")
    assert el7.join_secrets(with_key) == ("abcdef.0123456789abcdef", "f8902e11")


@pytest.mark.parametrize(
    "text",
    ["", "kubeadm join 10.10.10.241:6443 --token", "error: timed out waiting for the condition"],
)
def test_anything_else_is_not_a_join_command(text: str) -> None:
    with pytest.raises(ValueError, match="not a kubeadm join command"):
        el7.parse_join_command(text)


def test_the_join_plan_carries_the_token_as_a_secret_and_shows_it_redacted() -> None:
    facts = el7.JoinFacts(False, el7.parse_join_command(JOIN_OUTPUT))
    (join,) = el7.plan_join(LAB, WORKER, facts)
    assert join.secrets == ("abcdef.0123456789abcdef",)
    shown = redact(render_remote(join), join.secrets)
    assert "abcdef.0123456789abcdef" not in shown
    assert "--node-name=k8s-node1" in shown


def test_a_line_saying_not_installed_is_no_package_whatever_its_shape() -> None:
    assert parse_rpm_versions("not installed\nkubelet 1.18.1\n  \nkubeadm\n") == ("kubelet 1.18.1",)


def test_tools_and_the_systemd_version_are_read_only_from_a_successful_answer() -> None:
    assert parse_tool_paths(Output(0, "ip /usr/sbin/ip\n\nbad line here\n")) == ("ip /usr/sbin/ip",)
    for out in (Output(1, "ip /usr/sbin/ip\n"), Output(0, "nothing\n")):
        with pytest.raises(
            ValueError, match=rf"^cannot list the node's tools \(exit {out.exit_code}\)$"
        ):
            parse_tool_paths(out)
    assert parse_systemd_version(Output(0, "systemd 252 (252.19-1~deb12u1)\n+PAM\n")) == 252
    with pytest.raises(
        ValueError, match=r"^cannot read the systemd version \(`systemctl --version` exit 1\)$"
    ):
        parse_systemd_version(Output(1, "systemd 252\n"))


def test_the_systemd_version_is_read_without_sudo() -> None:
    debian = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    for everything in (False, True):
        step = tools_step(os_profile("debian12"), everything=everything)
        systemd = step.facts(debian, debian.nodes[0])["systemd"]
        assert systemd.command == Command(("systemctl", "--version"), sudo=False)


def test_the_tools_step_looks_for_every_cni_plugin_its_os_installs() -> None:
    debian = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    node = debian.nodes[0]
    cni = ("bridge", "host-local", "portmap", "loopback")
    for family, lab, plugins in (
        ("debian12", debian, tuple(f"/usr/lib/cni/{p}" for p in cni)),
        ("el7", LAB, tuple(f"/opt/cni/bin/{p}" for p in (*cni, "flannel"))),
    ):
        step = tools_step(os_profile(family), everything=True)
        (found, _) = step.facts(lab, node).values()
        names = found.command.argv[4:]
        assert tuple(n for n in names if "/cni/" in n) == plugins, family
        fresh = step.fresh(lab, node)
        assert f"{plugins[0]} {plugins[0]}" in fresh.found
    box_only = tools_step(os_profile("debian12"), everything=False)
    (found, _) = box_only.facts(debian, node).values()
    assert not [n for n in found.command.argv if "/cni/" in n]  # provisioning installs them


def test_only_active_swap_entries_of_three_fields_or_more_are_commented_out() -> None:
    fstab = (
        "/swapfile none swap sw 0 0\n  # /old none swap sw\nUUID=x / ext4\n/s2 none swap\nswap\n"
    )
    assert fstab_without_swap(fstab) == (
        "#/swapfile none swap sw 0 0\n  # /old none swap sw\nUUID=x / ext4\n#/s2 none swap\nswap\n"
    )


def test_a_swap_entry_commented_out_after_leading_blanks_is_left_as_it_is() -> None:
    fstab = "UUID=x / ext4 defaults 0 1\n  #/swapfile none swap sw 0 0\n\t#/s2 none swap\n"
    assert fstab_without_swap(fstab) == fstab


def test_the_hosts_block_is_replaced_whole_and_other_lines_kept() -> None:
    ci = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    hosts = (
        "127.0.0.1 localhost\n127.0.1.1 node1\n# BEGIN netlab nodes\n10.9.9.9 old\n"
        "# END netlab nodes\n::1 localhost\n"
    )
    assert hosts_with_nodes(hosts, ci) == (
        "127.0.0.1 localhost\n::1 localhost\n# BEGIN netlab nodes\n10.10.40.241 node1\n"
        "10.10.40.242 node2\n# END netlab nodes\n"
    )


def test_a_node_missing_tools_or_an_old_systemd_is_refused_naming_each() -> None:
    debian = load_lab(ROOT / "labs" / "ci-debian12.yaml")
    node = debian.nodes[0]
    step = tools_step(os_profile("debian12"), everything=False)
    fresh = step.fresh(debian, node)
    assert step.plan(debian, node, fresh) == ()
    # `ip` reported missing ("-"), `bridge` not reported at all: both are missing
    found = tuple(
        "ip -" if line.startswith("ip ") else line
        for line in fresh.found
        if not line.startswith("bridge ")
    )
    with pytest.raises(ValueError, match="lacks what the harness relies on") as refused:
        step.plan(debian, node, ToolsFacts(found, 219))
    assert str(refused.value) == (
        "node1 lacks what the harness relies on (lab/hosts/compat.py, debian12 column): "
        "ip is missing (package iproute2; used by the CNI driver, diagnostics); "
        "bridge is missing (package iproute2; used by diagnostics); "
        "systemd 219 is older than 252, which the debian12 commands assume (systemd-run, "
        "systemctl options)"
    )
