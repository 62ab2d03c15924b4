"""Facts about a node (pure): each is one read-only command and how to read its output.

A fact pairs the command that reads it with the parser of that command's output. Facts built
on the same command share one probe: a node is asked once per round trip, however many steps
want the answer (`rpm -q` for Docker, Kubernetes and bash-completion is one command; whether
flannel.1 exists and whether its checksum offload is on both come from one `ethtool -k`).
Provisioning steps read them, and so can the e2e checks that verify what provisioning left.

A parser that cannot tell raises ValueError naming the command and its exit code: an
unreadable answer is an error, never an empty value that a planner would take for "done".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from lab.common.commands import Command, Output, cmd, render_remote

T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Fact(Generic[T]):
    """One value read from a node: `parse(output of command)`."""

    name: str
    command: Command
    parse: Callable[[Output], T]

    def read(self, outputs: Mapping[Command, Output]) -> T:
        return self.parse(outputs[self.command])


AnyFact = Fact[Any]


def unique_commands(facts: Iterable[AnyFact]) -> tuple[Command, ...]:
    """The commands that read `facts`, each once, in first-use order."""
    return tuple(dict.fromkeys(f.command for f in facts))


def outputs_by_command(
    commands: Sequence[Command], outputs: Sequence[Output]
) -> dict[Command, Output]:
    if len(commands) != len(outputs):
        raise ValueError(f"{len(commands)} probe commands but {len(outputs)} outputs")
    return dict(zip(commands, outputs, strict=True))


def unreadable(command: Command, out: Output, what: str) -> ValueError:
    return ValueError(
        f"cannot read {what}: `{render_remote(command)}` exited {out.exit_code}"
        + (f" and printed {out.stdout.strip()[:200]!r}" if out.stdout.strip() else "")
    )


# --- files -----------------------------------------------------------------------------------


def file_text(path: str) -> Fact[str | None]:
    """The file's content, or None when it cannot be read (absent)."""
    return Fact(f"file {path}", cmd("cat", path), Output.text_or_none)


def file_text_required(path: str) -> Fact[str]:
    """The file's content; a file that must exist (like /etc/hosts) and cannot be read is an
    error: planning from an empty text would rewrite it without its lines."""
    command = cmd("cat", path)

    def parse(out: Output) -> str:
        if not out.ok:
            raise ValueError(f"cannot read {path} (exit {out.exit_code})")
        return out.stdout

    return Fact(f"file {path}", command, parse)


def file_exists(path: str) -> Fact[bool]:
    return Fact(f"{path} is a file", cmd("test", "-f", path), lambda out: out.ok)


# --- systemd units ---------------------------------------------------------------------------


def unit_active(unit: str) -> Fact[bool]:
    command = cmd("systemctl", "is-active", unit, sudo=False)
    return Fact(f"{unit} active", command, lambda out: out.stdout.strip() == "active")


def unit_enabled(unit: str) -> Fact[bool]:
    command = cmd("systemctl", "is-enabled", unit, sudo=False)
    return Fact(f"{unit} enabled", command, lambda out: out.stdout.strip() == "enabled")


# --- packages --------------------------------------------------------------------------------


def parse_rpm_versions(text: str) -> tuple[str, ...]:
    """`rpm -q --qf '%{NAME} %{VERSION}\\n'` lines, dropping "package X is not installed"."""
    return tuple(
        line.strip()
        for line in text.splitlines()
        if line.strip() and "not installed" not in line and len(line.split()) == 2
    )


def rpm_versions(names: Sequence[str]) -> Fact[tuple[str, ...]]:
    """Each installed package of `names` as "NAME VERSION" (rpm exits with the number of
    packages not installed, so any exit code is an answer)."""
    command = cmd("rpm", "-q", "--qf", "%{NAME} %{VERSION}\\n", *names, sudo=False)
    return Fact("installed rpms", command, lambda out: parse_rpm_versions(out.stdout))


def rpm_installed(names: Sequence[str], name: str) -> Fact[bool]:
    """Whether `name` is installed, read from the shared query of `names`."""
    if name not in names:
        raise ValueError(f"{name} is not among the queried packages {list(names)}")
    shared = rpm_versions(names)
    return Fact(
        f"{name} installed",
        shared.command,
        lambda out: any(line.split()[0] == name for line in shared.parse(out)),
    )


# --- kernel and system state -----------------------------------------------------------------

PROC_MODULES = cmd("cat", "/proc/modules", sudo=False)


def module_loaded(module: str) -> Fact[bool]:
    def parse(out: Output) -> bool:
        if not out.ok:
            raise unreadable(PROC_MODULES, out, "the loaded kernel modules")
        return module in {line.split()[0] for line in out.stdout.splitlines() if line.strip()}

    return Fact(f"module {module} loaded", PROC_MODULES, parse)


def sysctl_lines(keys: Sequence[str]) -> Fact[tuple[str, ...]]:
    """Each key as the kernel reports it now, "key = value" (a missing key is absent)."""
    command = cmd("sysctl", *keys)
    return Fact(
        "sysctls",
        command,
        lambda out: tuple(line.strip() for line in out.stdout.splitlines() if "=" in line),
    )


def proc_value(path: str) -> Fact[str]:
    command = cmd("cat", path, sudo=False)

    def parse(out: Output) -> str:
        if not out.ok:
            raise unreadable(command, out, path)
        return out.stdout.strip()

    return Fact(path, command, parse)


PROC_SWAPS = cmd("cat", "/proc/swaps", sudo=False)


def active_swaps() -> Fact[tuple[str, ...]]:
    def parse(out: Output) -> tuple[str, ...]:
        if not out.ok:
            raise unreadable(PROC_SWAPS, out, "the active swap devices")
        return tuple(line.split()[0] for line in out.stdout.splitlines()[1:] if line.strip())

    return Fact("active swaps", PROC_SWAPS, parse)


def hostname() -> Fact[str]:
    command = cmd("hostname", sudo=False)

    def parse(out: Output) -> str:
        if not out.ok or not out.stdout.strip():
            raise unreadable(command, out, "the hostname")
        return out.stdout.strip()

    return Fact("hostname", command, parse)


def ipv4_routes() -> Fact[tuple[str, ...]]:
    command = cmd("ip", "-4", "route", "show", sudo=False)

    def parse(out: Output) -> tuple[str, ...]:
        if not out.ok:
            raise unreadable(command, out, "the IPv4 routes")
        return tuple(line.strip() for line in out.stdout.splitlines() if line.strip())

    return Fact("ipv4 routes", command, parse)


def command_ok(name: str, command: Command) -> Fact[bool]:
    """Whether `command` exits 0 (an object exists, an image is present, ...)."""
    return Fact(name, command, lambda out: out.ok)


def stdout_lines(name: str, command: Command) -> Fact[tuple[str, ...]]:
    return Fact(
        name,
        command,
        lambda out: tuple(line.strip() for line in out.stdout.splitlines() if line.strip()),
    )


def text_if_ok(name: str, command: Command) -> Fact[str | None]:
    return Fact(name, command, lambda out: out.stdout.strip() if out.ok else None)


def matches_if_ok(name: str, command: Command, pattern: str) -> Fact[bool]:
    """Whether the command succeeded and a line of its output matches `pattern`."""
    regex = re.compile(pattern, flags=re.M)
    return Fact(name, command, lambda out: out.ok and bool(regex.search(out.stdout)))
