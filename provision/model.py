"""Provisioning model (pure): a guide step = the facts it reads -> plan.

A step names the facts it needs (`lab.hosts.facts`: one read-only command and a parser each); the
applier probes the facts of every step of a phase in one round trip per node, a command shared
by several steps once. `plan(lab, node, facts)` returns only the commands still needed; an empty
plan means the step is already done on that node. Facts are small frozen dataclasses of
JSON-friendly values so a golden case (facts in, commands out) is a JSON file.

Some facts are not read from the node but given to it: an *input* (the join command a worker
needs, created on the control plane). A step lists which of its fields are inputs it wants,
given what it read (`needs`); the applier fills them from named input sources, only then.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from lab.common.commands import Command, Output
from lab.common.waits import Policy
from lab.hosts.facts import AnyFact, unique_commands
from lab.model.config import Lab, Node
from lab.runtime.images import ImageSet

Scope = Literal["all", "control-plane", "workers"]
F = TypeVar("F")


def _no_inputs(facts: Any) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True, kw_only=True)
class Step(Generic[F]):
    number: str  # the guide's step number ("5"; "6a" for steps the guide implies)
    key: str  # stable id used by golden files and --only
    title: str
    section: str  # the guide section it implements
    scope: Scope
    facts_type: type[F]
    facts: Callable[[Lab, Node], Mapping[str, AnyFact]]  # facts_type field -> fact
    plan: Callable[[Lab, Node, F], tuple[Command, ...]]
    fresh: Callable[[Lab, Node], F]  # the facts of a node fresh from its box (dry run)
    # facts_type fields given to the step rather than read from the node, wanted given the
    # facts read (e.g. the join command, only while the node has not joined)
    needs: Callable[[F], tuple[str, ...]] = _no_inputs
    # a check (tools, versions) plans nothing or raises; it never changes the node
    check: bool = False
    # a wait (a check of state that settles by itself, e.g. nodes turning Ready): the applier
    # reads its facts again under this policy while its plan raises NotSettled
    wait: Policy | None = None

    @property
    def label(self) -> str:
        return f"step {self.number} '{self.title}'"

    def applies_to(self, lab: Lab, node: Node) -> bool:
        if self.scope == "all":
            return True
        is_plane = lab.control_plane is not None and node.name == lab.control_plane.name
        return is_plane if self.scope == "control-plane" else not is_plane

    def commands(self, lab: Lab, node: Node) -> tuple[Command, ...]:
        """The probe commands of this step's facts, each once."""
        return unique_commands(self.facts(lab, node).values())

    def read(
        self,
        lab: Lab,
        node: Node,
        outputs: Mapping[Command, Output],
        inputs: Mapping[str, Callable[[], object]] | None = None,
    ) -> F:
        """The step's facts from probe outputs, with the inputs it needs filled in."""
        values = {name: fact.read(outputs) for name, fact in self.facts(lab, node).items()}
        facts = self.facts_type(**values)
        wanted = self.needs(facts)
        if wanted:
            missing = [name for name in wanted if name not in (inputs or {})]
            if missing:
                raise ValueError(f"{self.key}: no source for the input(s) {missing}")
            assert inputs is not None
            facts = dataclasses.replace(facts, **{n: inputs[n]() for n in wanted})  # type: ignore[type-var]
        return facts

    def read_positional(self, lab: Lab, node: Node, outputs: Sequence[Output]) -> F:
        """The facts from one output per probe command, in `commands()` order."""
        commands = self.commands(lab, node)
        if len(outputs) != len(commands):
            raise ValueError(f"{self.key} probes {len(commands)} commands, got {len(outputs)}")
        return self.read(lab, node, dict(zip(commands, outputs, strict=True)))

    def facts_from_json(self, data: dict[str, Any]) -> F:
        hints = {f.name: f.type for f in dataclasses.fields(self.facts_type)}  # type: ignore[arg-type]
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        unknown = set(kwargs) - set(hints)
        if unknown:
            raise ValueError(f"{self.key}: unknown facts {sorted(unknown)}")
        return self.facts_type(**kwargs)


AnyStep = Step[Any]


@dataclass(frozen=True)
class Resources:
    """What the steps need from the host side, read or built before planning: the upstream
    flannel manifest (the guide's lab) and the images a containerd lab imports."""

    flannel_upstream: str | None = None
    images: ImageSet | None = None


@dataclass(frozen=True)
class PodnetSteps:
    """A pod-network backend's steps, as its OS path places them: `images` with the path's own
    image pulls, `network` where the guide installs the pod network, `after_join` once every
    node has joined (where there is no join, right after `network`)."""

    network: tuple[AnyStep, ...] = ()
    after_join: tuple[AnyStep, ...] = ()
    images: tuple[AnyStep, ...] = ()  # its images, placed with the path's own image steps


class NotSettled(ValueError):
    """A wait step's state is not there yet: the applier reads it again within the policy."""


class Ran(Protocol):
    @property
    def stdout(self) -> str: ...


class Runner(Protocol):
    """What an input source needs of a node: run one command (SshChannel fits)."""

    def run(self, command: Command, timeout: float = 120, check: bool = True) -> Ran: ...


class SavingRunner(Runner, Protocol):
    """A node whose command output an input source saves to a local file (an image archive
    for the other nodes: SshChannel.run_to_file)."""

    def run_to_file(self, command: Command, path: str, timeout: float = 900) -> object: ...


# --- small pure helpers shared by the steps ----------------------------------------------


def write_file(path: str, content: str, mode: str = "0644", owner: str = "") -> Command:
    """Install `content` at `path` (parents created, mode and owner set) from a here-document."""
    owned = ("-o", owner, "-g", owner) if owner else ()
    return Command(("install", "-D", "-m", mode, *owned, "/dev/stdin", path), stdin=content)


def sysctl_file(values: dict[str, str]) -> str:
    return "".join(f"{k} = {v}\n" for k, v in values.items())
