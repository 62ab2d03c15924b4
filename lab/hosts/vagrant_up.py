"""`vagrant up`'s output followed per machine (pure): which phase each node is in, so that a
person sees one line per node (phase, seconds) instead of vagrant-libvirt's stream (the domain
settings dump " -- Cpus: 1", " -- Feature: acpi", ..., the box upload's progress). The whole
stream still goes to the vagrant log (lab/adapters/vagrant.py); these functions only read it.

The phases are vagrant's and vagrant-libvirt's own messages (vagrant-libvirt 0.11's
locales/en.yml, vagrant 2.3's core), matched by how they start; a message not listed leaves
the node's phase as it was."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

# "==> node1: Starting domain." (a machine's message) or "    node1: SSH address: ..." (detail)
MESSAGE = re.compile(r"^(?P<arrow>==>|   ) (?P<node>[\w.-]+): (?P<msg>.*)$")
BRINGING = re.compile(r"^Bringing machine '(?P<node>[\w.-]+)' up with '[\w-]+' provider")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# how a message starts -> the phase it begins (None: the node is up, nothing more to wait for)
PHASES: tuple[tuple[str, str | None], ...] = (
    ("Uploading base box image", "uploading the box into libvirt"),
    ("Creating image (snapshot of base box volume)", "creating its disk"),
    ("Creating domain with the following settings", "defining its domain"),
    ("Creating shared folders metadata", "defining its domain"),
    ("Updating domain definition", "defining its domain"),
    ("Starting domain", "starting"),
    ("Domain launching", "starting"),
    ("Waiting for domain to get an IP address", "waiting for its IP address"),
    ("Waiting for machine to boot", "booting"),
    ("Waiting for SSH to become available", "booting"),
    ("Machine booted and ready", "configuring its networks"),
    ("Machine is booted and ready", "configuring its networks"),
    ("Configuring and enabling network interfaces", "configuring its networks"),
    ("Machine not provisioned because", None),
    ("Machine already provisioned", None),
    ("The domain is already created", "already created"),
    ("Removing domain", "removing its domain"),
    ("Halting domain", "halting"),
    ("Resuming domain", "resuming"),
)


@dataclass(frozen=True)
class UpEvent:
    node: str
    phase: str  # what the node does now ("" with done)
    done: bool = False
    detail: str = ""  # e.g. the SSH address it got


def clean_line(line: str) -> str:
    """A line as a person reads it: terminal control sequences and carriage returns gone."""
    return ANSI.sub("", line).replace("\r", "")


def parse_up_line(line: str) -> UpEvent | None:
    """One line of `vagrant up` -> the phase it starts for its node, or None (a settings
    dump line, a box-metadata note, a progress line, anything that is not a phase)."""
    text = clean_line(line).rstrip()
    m = BRINGING.match(text)
    if m:
        return UpEvent(m["node"], "waiting for vagrant")
    m = MESSAGE.match(text)
    if m is None:
        return None
    msg = m["msg"].strip()
    if m["arrow"] != "==>":
        if msg.startswith("SSH address:"):
            return UpEvent(m["node"], "booting", detail=f"ssh {msg.split(':', 1)[1].strip()}")
        return None
    for start, phase in PHASES:
        if msg.startswith(start):
            return UpEvent(m["node"], phase or "", done=phase is None)
    return None


@dataclass(frozen=True)
class NodeLine:
    """What a person sees of one node: its phase and since when (monotonic seconds)."""

    node: str
    phase: str
    started: float
    detail: str = ""
    done_at: float | None = None


def start_lines(nodes: Sequence[str], now: float) -> dict[str, NodeLine]:
    return {n: NodeLine(n, "waiting for vagrant", now) for n in nodes}


def fold_up(
    lines: Mapping[str, NodeLine], event: UpEvent, now: float
) -> tuple[dict[str, NodeLine], bool]:
    """The lines after `event`, and whether what a person sees changed (a new phase, a new
    detail, done). A node the lab did not list joins at the end."""
    out = dict(lines)
    before = out.get(event.node, NodeLine(event.node, "waiting for vagrant", now))
    if before.done_at is not None:
        return out, False
    after = replace(
        before,
        phase="up" if event.done else event.phase,
        detail=event.detail or (before.detail if event.phase == before.phase else ""),
        done_at=now if event.done else None,
    )
    out[event.node] = after
    return out, after != before or event.node not in lines


def render_up_line(line: NodeLine, now: float, width: int = 0, seconds: bool = True) -> str:
    """`node1  booting (ssh 192.168.130.124:22)  23.4s`: its phase and its seconds since `up`
    began (a node that is up keeps its time); `seconds=False` for a log that stamps lines."""
    phase = f"{line.phase} ({line.detail})" if line.detail else line.phase
    if not seconds:
        return f"{line.node:<{width}}  {phase}"
    spent = (line.done_at if line.done_at is not None else now) - line.started
    return f"{line.node:<{width}}  {phase}  {spent:.1f}s"


def without_progress(text: str) -> str:
    """vagrant's output without its progress meter and control sequences (for an error's
    tail: the box upload alone prints hundreds of `Progress: N%` lines)."""
    kept = []
    for raw in text.splitlines():
        line = clean_line(raw)
        if line.startswith("Progress:") or (not line.strip() and raw != line):
            continue
        kept.append(line)
    return "\n".join(kept) + ("\n" if text.endswith("\n") else "")
