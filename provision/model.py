"""Provisioning model (pure): a guide step = probe -> facts -> plan.

`plan(lab, node, facts)` returns only the commands still needed; an empty plan means the step
is already done on that node. Facts are small frozen dataclasses of JSON-friendly values so a
golden case (facts in, commands out) is a JSON file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from lab.commands import Command, Output
from lab.config import Lab, Node

Scope = Literal["all", "control-plane", "workers"]
F = TypeVar("F")


@dataclass(frozen=True)
class Step(Generic[F]):
    number: str  # the guide's step number ("5"; "6a" for steps the guide implies)
    key: str  # stable id used by golden files and --only
    title: str
    section: str  # the guide section it implements
    scope: Scope
    facts_type: type[F]
    probe: Callable[[Lab, Node], tuple[Command, ...]]
    parse: Callable[[Sequence[Output]], F]
    plan: Callable[[Lab, Node, F], tuple[Command, ...]]
    fresh: Callable[[Lab, Node], F]  # the facts of a node fresh from its box (dry run)
    needs_join_command: bool = False

    @property
    def label(self) -> str:
        return f"step {self.number} '{self.title}'"

    def applies_to(self, lab: Lab, node: Node) -> bool:
        if self.scope == "all":
            return True
        is_plane = lab.control_plane is not None and node.name == lab.control_plane.name
        return is_plane if self.scope == "control-plane" else not is_plane

    def facts_from_json(self, data: dict[str, Any]) -> F:
        hints = {f.name: f.type for f in dataclasses.fields(self.facts_type)}  # type: ignore[arg-type]
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        unknown = set(kwargs) - set(hints)
        if unknown:
            raise ValueError(f"{self.key}: unknown facts {sorted(unknown)}")
        return self.facts_type(**kwargs)


AnyStep = Step[Any]


# --- small pure helpers shared by the steps ----------------------------------------------


def write_file(path: str, content: str, mode: str = "0644", owner: str = "") -> Command:
    """Install `content` at `path` (parents created, mode and owner set) from a here-document."""
    owned = ("-o", owner, "-g", owner) if owner else ()
    return Command(("install", "-D", "-m", mode, *owned, "/dev/stdin", path), stdin=content)


def read_file(path: str) -> Command:
    return Command(("cat", path))


def sysctl_file(values: dict[str, str]) -> str:
    return "".join(f"{k} = {v}\n" for k, v in values.items())
