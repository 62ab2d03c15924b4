"""Compatibility as data (pure): the shape of a family's column (every tool the harness runs
on a node: where it lives, which package and component carry it, whether the box has it or
provisioning installs it; the component versions the harness assumes), the command-line
features that need a minimum version, and the commands that differ by version. Each family's
column is part of its OS profile (lab/hosts/os/el7.py, debian12.py).

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

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


# --- building a column ---------------------------------------------------------------------

BY_PROVISIONING = "provisioning"
BY_CNI_DRIVER = "the CNI driver"
BY_DIAGNOSTICS = "diagnostics"
BY_ECHO_SERVER = "the CNI driver (echo server)"
BY_NETWORKD_USERS = "provisioning, faults"
SELINUX_UTILS = "libselinux-utils"
CNI_PLUGINS_PACKAGE = "containernetworking-plugins"
BY_RUNTIME_STEP = "provisioning (runtime: containerd)"


Row = tuple[str, str, str, str, Source, str]


def tools_table(rows: Sequence[Row]) -> dict[str, Tool]:
    return {row[0]: Tool(*row) for row in rows}


def cni_plugins(bin_dir: str, component: str, package: str, source: Source) -> list[Row]:
    plugins: tuple[str, ...] = ("bridge", "host-local", "portmap", "loopback")
    if component == "kubernetes-cni":
        plugins += ("flannel",)
    return [
        (f"{bin_dir}/{p}", component, package, f"{bin_dir}/{p}", source, BY_CNI_DRIVER)
        for p in plugins
    ]


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
            if segment[:1] == ["exec"]:  # the shell replaced by the command
                segment = segment[1:]
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

    family: str
    argv: tuple[str, ...]
    reason: str

    def __str__(self) -> str:
        return f"{self.family}: {shlex.join(self.argv)}: {self.reason}"


class Column(Protocol):
    """A family's column of the table (an OS profile, lab/hosts/os/)."""

    @property
    def family(self) -> str: ...
    @property
    def tools(self) -> Mapping[str, Tool]: ...
    @property
    def components(self) -> Mapping[str, str]: ...
    @property
    def user_path(self) -> tuple[str, ...]: ...


def gaps(column: Column, argv: Sequence[str], sudo: bool) -> list[Gap]:
    """Everything in `argv` (and what it runs) that the family's column does not provide."""
    found = []
    family, tools, versions = column.family, column.tools, column.components
    for command in commands_in(argv):
        tool = tools.get(command[0])
        if tool is None:
            found.append(Gap(family, command, f"{command[0]} is not in the {family} column"))
            continue
        if not sudo and not on_path(tool, column.user_path):
            found.append(
                Gap(
                    family,
                    command,
                    f"runs without sudo but {tool.path} is not on a non-login SSH PATH "
                    f"({':'.join(column.user_path)}); run it through sudo",
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
