"""Compatibility as data (pure): per OS family, every tool the harness runs on a node (where it
lives, which package and component carry it, whether the box has it or provisioning installs
it), the component versions the harness assumes, and the command-line features that need a
minimum version. The commands that differ by version are chosen here, from the table.

A unit test checks that every command provisioning, the CNI driver, the faults and the
diagnostics can send to an el7 node is in the el7 column and uses no feature newer than it;
provisioning's first and last steps check the tools and the systemd version on each node.

Versions are those of the boxes: el7 = CentOS 7.8 (centos/7 2004.01) updated from the 7.9
vault; debian12 = Debian 12 (bookworm) as `make box` builds it. Feature minimums come from
upstream history (the note says which); none of the el7 facts could be run from here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

Family = Literal["el7", "debian12"]
Source = Literal["box", "provisioning"]


@dataclass(frozen=True)
class Tool:
    name: str  # argv[0] as the harness writes it
    component: str  # the upstream project whose version matters (a key of COMPONENTS)
    package: str  # the distribution package that installs it
    path: str  # where it lives on this family
    source: Source  # on the box already, or installed by a provisioning step
    used_by: str  # who runs it (for the error when it is missing)


@dataclass(frozen=True)
class Feature:
    """A command-line feature: argv words that need `component` >= `since`."""

    tool: str
    words: tuple[str, ...]  # every word must appear in the argv (after the tool)
    component: str
    since: str
    note: str  # where the minimum comes from


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


# --- the table ---------------------------------------------------------------------------------

COMPONENTS: dict[Family, dict[str, str]] = {
    "el7": {
        "systemd": "219",
        "iproute2": "4.11.0",
        "util-linux": "2.23.2",
        "coreutils": "8.22",
        "procps": "3.3.10",
        "kmod": "20",
        "bash": "4.2.46",
        "grep": "2.20",
        "findutils": "4.5.11",
        "hostname": "3.13",
        "iputils": "20160308",
        "iptables": "1.4.21",
        "libselinux": "2.5",
        "rpm": "4.11.3",
        "yum": "3.4.3",
        "curl": "7.29.0",
        "sudo": "1.8.23",
        "socat": "1.7.3.2",
        "ethtool": "4.8",
        "docker": "19.03.15",
        "kubernetes": "1.18.1",
        "kubernetes-cni": "0.8.7",
    },
    "debian12": {
        "systemd": "252",
        "iproute2": "6.1.0",
        "util-linux": "2.38.1",
        "coreutils": "9.1",
        "procps": "4.0.2",
        "kmod": "30",
        "bash": "5.2.15",
        "grep": "3.8",
        "findutils": "4.9.0",
        "hostname": "3.23",
        "iputils": "20221126",
        "iptables": "1.8.9",
        "apt": "2.6.1",
        "sudo": "1.9.13",
        "socat": "1.7.4.4",
        "ethtool": "6.1",
        "containernetworking-plugins": "1.1.1",
        "containerd": "1.6.20",
    },
}

# PATH of a non-login SSH command (what runs without sudo), and sudo's secure_path
USER_PATH: dict[Family, tuple[str, ...]] = {
    "el7": ("/usr/local/bin", "/usr/bin"),
    # the box puts the sbin directories on every user's PATH (/etc/environment, box/build.sh)
    "debian12": ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"),
}
SUDO_PATH: dict[Family, tuple[str, ...]] = {
    "el7": ("/sbin", "/bin", "/usr/sbin", "/usr/bin"),
    "debian12": ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"),
}

_PROVISION = "provisioning"
_DRIVER = "the CNI driver"
_DIAG = "diagnostics"
_ECHO = "the CNI driver (echo server)"
_NETWORKD = "provisioning, faults"
_SELINUX = "libselinux-utils"
_PLUGINS = "containernetworking-plugins"
_RUNTIME = "provisioning (runtime: containerd)"


Row = tuple[str, str, str, str, Source, str]


def _tools(rows: Sequence[Row]) -> dict[str, Tool]:
    return {row[0]: Tool(*row) for row in rows}


def _cni(bin_dir: str, component: str, package: str, source: Source) -> list[Row]:
    plugins: tuple[str, ...] = ("bridge", "host-local", "portmap", "loopback")
    if component == "kubernetes-cni":
        plugins += ("flannel",)
    return [
        (f"{bin_dir}/{p}", component, package, f"{bin_dir}/{p}", source, _DRIVER) for p in plugins
    ]


TOOLS: dict[Family, dict[str, Tool]] = {
    "el7": _tools(
        [
            # name, component, package, path, source, used by
            ("systemctl", "systemd", "systemd", "/usr/bin/systemctl", "box", "everyone"),
            ("systemd-run", "systemd", "systemd", "/usr/bin/systemd-run", "box", _DRIVER),
            ("journalctl", "systemd", "systemd", "/usr/bin/journalctl", "box", _DIAG),
            ("hostnamectl", "systemd", "systemd", "/usr/bin/hostnamectl", "box", _PROVISION),
            ("udevadm", "systemd", "systemd", "/usr/sbin/udevadm", "box", _PROVISION),
            ("ip", "iproute2", "iproute", "/usr/sbin/ip", "box", f"{_DRIVER}, {_DIAG}"),
            ("bridge", "iproute2", "iproute", "/usr/sbin/bridge", "box", _DIAG),
            ("nsenter", "util-linux", "util-linux", "/usr/bin/nsenter", "box", _DRIVER),
            ("swapoff", "util-linux", "util-linux", "/usr/sbin/swapoff", "box", _PROVISION),
            ("cat", "coreutils", "coreutils", "/usr/bin/cat", "box", "everyone"),
            ("ls", "coreutils", "coreutils", "/usr/bin/ls", "box", _DRIVER),
            ("rm", "coreutils", "coreutils", "/usr/bin/rm", "box", _DRIVER),
            ("install", "coreutils", "coreutils", "/usr/bin/install", "box", "everyone"),
            ("test", "coreutils", "coreutils", "/usr/bin/test", "box", "everyone"),
            ("true", "coreutils", "coreutils", "/usr/bin/true", "box", "e2e checks"),
            ("timeout", "coreutils", "coreutils", "/usr/bin/timeout", "box", _DRIVER),
            ("env", "coreutils", "coreutils", "/usr/bin/env", "box", _DRIVER),
            ("readlink", "coreutils", "coreutils", "/usr/bin/readlink", "box", "e2e checks"),
            ("sha256sum", "coreutils", "coreutils", "/usr/bin/sha256sum", "box", _PROVISION),
            ("stat", "coreutils", "coreutils", "/usr/bin/stat", "box", _PROVISION),
            ("sh", "bash", "bash", "/usr/bin/sh", "box", "everyone"),
            ("sysctl", "procps", "procps-ng", "/usr/sbin/sysctl", "box", _PROVISION),
            ("modprobe", "kmod", "kmod", "/usr/sbin/modprobe", "box", _PROVISION),
            ("grep", "grep", "grep", "/usr/bin/grep", "box", _PROVISION),
            ("find", "findutils", "findutils", "/usr/bin/find", "box", _DIAG),
            ("hostname", "hostname", "hostname", "/usr/bin/hostname", "box", _PROVISION),
            ("ping", "iputils", "iputils", "/usr/bin/ping", "box", "e2e checks (MTU)"),
            ("iptables-save", "iptables", "iptables", "/usr/sbin/iptables-save", "box", _DIAG),
            ("getenforce", "libselinux", _SELINUX, "/usr/sbin/getenforce", "box", _PROVISION),
            ("setenforce", "libselinux", _SELINUX, "/usr/sbin/setenforce", "box", _PROVISION),
            ("rpm", "rpm", "rpm", "/usr/bin/rpm", "box", _PROVISION),
            ("yum", "yum", "yum", "/usr/bin/yum", "box", _PROVISION),
            ("curl", "curl", "curl", "/usr/bin/curl", "box", "Kubernetes checks (from nodes)"),
            # kubelet's rpm requires socat and ethtool (installed with it if the box lacks them)
            ("socat", "socat", "socat", "/usr/bin/socat", "provisioning", _ECHO),
            ("ethtool", "ethtool", "ethtool", "/usr/sbin/ethtool", "provisioning", _PROVISION),
            ("docker", "docker", "docker-ce-cli", "/usr/bin/docker", "provisioning", _PROVISION),
            ("kubeadm", "kubernetes", "kubeadm", "/usr/bin/kubeadm", "provisioning", _PROVISION),
            ("kubectl", "kubernetes", "kubectl", "/usr/bin/kubectl", "provisioning", "everyone"),
            *_cni("/opt/cni/bin", "kubernetes-cni", "kubernetes-cni", "provisioning"),
        ],
    ),
    "debian12": _tools(
        [
            ("systemctl", "systemd", "systemd", "/usr/bin/systemctl", "box", "everyone"),
            ("systemd-run", "systemd", "systemd", "/usr/bin/systemd-run", "box", _DRIVER),
            ("journalctl", "systemd", "systemd", "/usr/bin/journalctl", "box", _DIAG),
            ("hostnamectl", "systemd", "systemd", "/usr/bin/hostnamectl", "box", _PROVISION),
            ("networkctl", "systemd", "systemd", "/usr/bin/networkctl", "box", _NETWORKD),
            ("udevadm", "systemd", "udev", "/usr/bin/udevadm", "box", _PROVISION),
            ("ip", "iproute2", "iproute2", "/usr/bin/ip", "box", f"{_DRIVER}, {_DIAG}"),
            ("bridge", "iproute2", "iproute2", "/usr/sbin/bridge", "box", _DIAG),
            ("nsenter", "util-linux", "util-linux", "/usr/bin/nsenter", "box", _DRIVER),
            ("swapoff", "util-linux", "mount", "/usr/sbin/swapoff", "box", _PROVISION),
            ("findmnt", "util-linux", "util-linux", "/usr/bin/findmnt", "box", _PROVISION),
            ("cat", "coreutils", "coreutils", "/usr/bin/cat", "box", "everyone"),
            ("ls", "coreutils", "coreutils", "/usr/bin/ls", "box", _DRIVER),
            ("rm", "coreutils", "coreutils", "/usr/bin/rm", "box", _DRIVER),
            ("install", "coreutils", "coreutils", "/usr/bin/install", "box", "everyone"),
            ("test", "coreutils", "coreutils", "/usr/bin/test", "box", "everyone"),
            ("true", "coreutils", "coreutils", "/usr/bin/true", "box", "e2e checks"),
            ("timeout", "coreutils", "coreutils", "/usr/bin/timeout", "box", _DRIVER),
            ("env", "coreutils", "coreutils", "/usr/bin/env", "box", _DRIVER),
            ("readlink", "coreutils", "coreutils", "/usr/bin/readlink", "box", "e2e checks"),
            ("sh", "bash", "dash", "/usr/bin/sh", "box", "everyone"),
            # runtime: containerd (provision/containerd.py, the CRI flow checks)
            ("ctr", "containerd", "containerd", "/usr/bin/ctr", "box", _RUNTIME),
            ("id", "coreutils", "coreutils", "/usr/bin/id", "box", _RUNTIME),
            ("stat", "coreutils", "coreutils", "/usr/bin/stat", "box", _RUNTIME),
            ("sleep", "coreutils", "coreutils", "/usr/bin/sleep", "box", _RUNTIME),
            ("sysctl", "procps", "procps", "/usr/sbin/sysctl", "box", _PROVISION),
            ("modprobe", "kmod", "kmod", "/usr/sbin/modprobe", "box", _PROVISION),
            ("grep", "grep", "grep", "/usr/bin/grep", "box", _PROVISION),
            ("find", "findutils", "findutils", "/usr/bin/find", "box", _DIAG),
            ("hostname", "hostname", "hostname", "/usr/bin/hostname", "box", _PROVISION),
            ("ping", "iputils", "iputils-ping", "/usr/bin/ping", "box", "e2e checks (MTU)"),
            ("iptables-save", "iptables", "iptables", "/usr/sbin/iptables-save", "box", _DIAG),
            ("apt-get", "apt", "apt", "/usr/bin/apt-get", "box", _PROVISION),
            ("socat", "socat", "socat", "/usr/bin/socat", "box", _ECHO),
            ("ethtool", "ethtool", "ethtool", "/usr/sbin/ethtool", "box", "e2e checks"),
            # on the box; provisioning's CNI step installs the package when they are missing
            *_cni("/usr/lib/cni", _PLUGINS, _PLUGINS, "provisioning"),
        ],
    ),
}

FEATURES: tuple[Feature, ...] = (
    Feature("systemd-run", ("--collect",), "systemd", "236", "systemd v236 NEWS (CollectMode=)"),
    Feature("systemd-run", ("--quiet",), "systemd", "218", "systemd-run: add --quiet (Dec 2014)"),
    Feature("systemctl", ("show", "--value"), "systemd", "230", "systemd v230 NEWS"),
    Feature("systemctl", ("is-system-running", "--wait"), "systemd", "240", "systemd v240 NEWS"),
    Feature(
        "systemctl",
        ("stop", "*"),
        "systemd",
        "209",
        "systemctl: allow globbing in commands which take multiple unit names (v209)",
    ),
    Feature(
        "ip",
        ("-j",),
        "iproute2",
        "4.13.0",
        "ip: ipaddress.c: add support for json output (2017); RHEL 7's 4.11 backport "
        "status unverified from here",
    ),
    Feature("nsenter", ("-n",), "util-linux", "2.23", "nsenter first shipped in util-linux 2.23"),
)

# The CNI spec version that introduced CHECK; a conflist of an older cniVersion must not get it
CNI_CHECK_SINCE = "0.4.0"


# --- choices made from the table -----------------------------------------------------------------


def systemd_version(family: Family) -> int:
    return int(COMPONENTS[family]["systemd"])


def start_in_netns(systemd: int, unit: str, netns: str, argv: Sequence[str]) -> tuple[str, ...]:
    """Start `argv` inside network namespace `netns` as the transient service `unit`.

    `--collect` (systemd >= 236) unloads the unit even when its process failed; without it
    (CentOS 7's 219) a failed unit stays listed until `systemctl reset-failed`."""
    collect = ("--collect",) if systemd >= 236 else ()
    return (
        "systemd-run",
        f"--unit={unit}",
        *collect,
        "--quiet",
        "--property=KillMode=control-group",
        "ip",
        "netns",
        "exec",
        netns,
        *argv,
    )


def main_pids_argv(systemd: int, units: Sequence[str]) -> tuple[str, ...]:
    """Print the main PID of each unit, in order (`--value` needs systemd >= 230; before it
    systemctl prints `MainPID=N`, which parse_main_pids reads too)."""
    value = ("--value",) if systemd >= 230 else ()
    return ("systemctl", "show", "-p", "MainPID", *value, *units)


def parse_main_pids(text: str) -> list[int]:
    """`N` or `MainPID=N` words, in order (blank lines between units are skipped)."""
    return [int(word.rpartition("=")[2]) for word in text.split()]


def cni_check_allowed(cni_version: str) -> bool:
    """CHECK exists from CNI spec 0.4.0 on: a 0.3.x conflist (flannel v0.14.0's) must not get it."""
    return version_tuple(cni_version) >= version_tuple(CNI_CHECK_SINCE)


# --- reading commands back: which tools and features an argv relies on -------------------------


def commands_in(argv: Sequence[str]) -> Iterator[tuple[str, ...]]:
    """`argv` and every command it runs: through sudo, env, timeout, `ip netns exec`,
    `nsenter ... --` and `sh -c SCRIPT` (each line of the script, here-documents skipped)."""
    argv = tuple(argv)
    if not argv:
        return
    if argv[0] == "sudo":
        yield from commands_in(argv[2:] if argv[1:2] == ("-n",) else argv[1:])
        return
    yield argv
    name, rest = argv[0], argv[1:]
    if name == "env":
        inner = [i for i, word in enumerate(rest) if "=" not in word]
        if inner:
            yield from commands_in(rest[inner[0] :])
    elif name == "timeout" and len(rest) > 1:
        yield from commands_in(rest[1:])
    elif name == "ip" and rest[:2] == ("netns", "exec") and len(rest) > 3:
        yield from commands_in(rest[3:])
    elif name == "nsenter" and "--" in rest:
        yield from commands_in(rest[rest.index("--") + 1 :])
    elif name == "systemd-run":
        inner = [i for i, word in enumerate(rest) if not word.startswith("-")]
        if inner:
            yield from commands_in(rest[inner[0] :])
    elif name == "sh" and len(rest) >= 2 and rest[0] in ("-c", "-ec"):
        yield from script_commands(rest[1])


SHELL_KEYWORDS = frozenset(
    {
        "for",
        "while",
        "until",
        "if",
        "then",
        "else",
        "elif",
        "fi",
        "do",
        "done",
        "case",
        "esac",
        "in",
        "!",
    }
)
SHELL_BUILTINS = frozenset(
    {
        "echo",
        "printf",
        "command",
        "set",
        "exit",
        "export",
        "true",
        "false",
        "read",
        "cd",
        "[",
        "shift",
        "return",
        ":",
    }
)
SEPARATORS = frozenset({";", "|", "&&", "||", "&", "(", ")"})


def script_commands(script: str) -> Iterator[tuple[str, ...]]:
    """The commands of a simple shell script: lists split at ; | && ||, control keywords
    dropped, the loop header's words skipped, here-document bodies skipped."""
    lines = iter(script.splitlines())
    for line in lines:
        heredoc = re.search(r"<<'?(\w+)'?\s*$", line)
        text = line[: heredoc.start()] if heredoc else line
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";|&()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            words = list(lexer)
        except ValueError:
            words = []
        segment: list[str] = []
        for word in [*words, ";"]:
            if word not in SEPARATORS:
                segment.append(word)
                continue
            while segment and segment[0] in SHELL_KEYWORDS:
                segment = [] if segment[0] in ("for", "case") else segment[1:]
            # (a word starting with "-" is the tail of `find -exec ... \;`, not a command)
            first = segment[0] if segment else ""
            if first and first not in SHELL_BUILTINS and "=" not in first and first[0] != "-":
                yield from commands_in(segment)
            segment = []
        if heredoc:
            for body in lines:
                if body == heredoc.group(1):
                    break


def on_path(tool: Tool, path: Sequence[str]) -> bool:
    return tool.path.rsplit("/", 1)[0] in path or tool.name.startswith("/")


@dataclass(frozen=True)
class Gap:
    """Why `argv` would not run as written on the family."""

    family: Family
    argv: tuple[str, ...]
    reason: str

    def __str__(self) -> str:
        return f"{self.family}: {shlex.join(self.argv)}: {self.reason}"


def gaps(family: Family, argv: Sequence[str], sudo: bool) -> list[Gap]:
    """Everything in `argv` (and what it runs) that the family's column does not provide."""
    found = []
    tools, versions = TOOLS[family], COMPONENTS[family]
    for command in commands_in(argv):
        tool = tools.get(command[0])
        if tool is None:
            found.append(Gap(family, command, f"{command[0]} is not in the {family} column"))
            continue
        if not sudo and not on_path(tool, USER_PATH[family]):
            found.append(
                Gap(
                    family,
                    command,
                    f"runs without sudo but {tool.path} is not on a non-login SSH PATH "
                    f"({':'.join(USER_PATH[family])}); run it through sudo",
                )
            )
        for feature in FEATURES:
            if feature.tool != command[0] or not all(
                _uses(word, command[1:]) for word in feature.words
            ):
                continue
            have = versions[feature.component]
            if version_tuple(have) < version_tuple(feature.since):
                found.append(
                    Gap(
                        family,
                        command,
                        f"{' '.join(feature.words)} needs {feature.component} >= "
                        f"{feature.since} ({feature.note}); {family} has {have}",
                    )
                )
    return found


def _uses(word: str, args: Sequence[str]) -> bool:
    if word == "*":
        return any("*" in a for a in args)
    return any(a == word or a.startswith(f"{word}=") for a in args)
