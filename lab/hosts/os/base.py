"""OS profiles (pure): everything the harness needs to know about an OS family, in one place,
and the registry that is the only code that knows the families' names.

A profile says which interpreter the node agent runs under, where the CNI plugins live, the
tools and component versions the harness's commands rely on (lab/hosts/compat.py reads them),
what a node fresh from the family's box looks like (the dry run starts there), what the
family's provisioning path installs (Kubernetes or not, which container runtimes), its own
lab-file checks, and the module of provision/ that holds its steps. Everything else asks the
profile (`profile_of(lab).python`), never compares a family's name.

A new OS is a module beside el7.py and debian12.py that builds an `OsProfile` and registers
it, plus its provisioning module (docs/architecture.md, "A new OS")."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lab.hosts.compat import Tool
from lab.model.problems import Problem

if TYPE_CHECKING:
    from lab.model.config import Lab


def _no_problems(lab: Lab) -> Iterator[Problem]:
    return iter(())


@dataclass(frozen=True)
class BoxState:
    """What a node fresh from the family's box holds, as the dry run's starting facts."""

    fstab: str
    swaps: tuple[str, ...]  # /proc/swaps' device column


@dataclass(frozen=True)
class OsProfile:
    family: str  # the os.family of a lab file
    description: str
    python: str  # the interpreter the node agent runs under (`sudo -n PYTHON -u -c ...`)
    cni_bin_dir: str  # where the CNI plugins live on a provisioned node
    components: Mapping[str, str]  # component -> the version the box (plus provisioning) has
    tools: Mapping[str, Tool]  # argv[0] -> where it lives, its package, who installs it
    user_path: tuple[str, ...]  # PATH of a non-login SSH command (what runs without sudo)
    sudo_path: tuple[str, ...]  # sudo's secure_path
    box: BoxState
    # the module of provision/ with this family's steps: `steps(lab, resources, podnet)` and
    # `inputs(lab, channels)` (resolved by provision/steps.py only: lab/ never imports it)
    provisioning: str
    # the provisioning path installs Kubernetes (kubeadm): a lab of this family needs a
    # kubernetes section and a pod-network backend that runs on Kubernetes; else neither
    kubernetes: bool = False
    runtimes: tuple[str, ...] = ()  # the `runtime` values this path installs, besides "none"
    # the path provisions a routed underlay (network.segments): the nodes' routes to the other
    # segments via the router VM, and the router itself (provision/underlay.py)
    routed_underlay: bool = False
    validate: Callable[[Lab], Iterator[Problem]] = field(default=_no_problems, compare=False)

    @property
    def systemd(self) -> int:
        """The systemd version the family's commands are chosen for (systemd-run options)."""
        return int(self.components["systemd"])


# The shipped families, by the module that registers each: imported on first lookup, so that
# the lab model can consult the registry while the profiles' modules use the model
BUILTIN = {"debian12": "lab.hosts.os.debian12", "el7": "lab.hosts.os.el7"}
_PROFILES: dict[str, OsProfile] = {}


def register(profile: OsProfile) -> OsProfile:
    """Make a family known to validation, provisioning and the suite (a new name only)."""
    if profile.family in BUILTIN:  # the shipped one first (a no-op while its module registers it)
        importlib.import_module(BUILTIN[profile.family])
    if profile.family in _PROFILES and _PROFILES[profile.family] is not profile:
        raise ValueError(f"OS family {profile.family!r} is already registered")
    _PROFILES[profile.family] = profile
    return profile


def unregister(family: str) -> None:
    """Forget a family (tests that register a toy OS)."""
    _PROFILES.pop(family, None)


def families() -> tuple[str, ...]:
    return tuple(sorted({*_PROFILES, *BUILTIN}))


def profile(family: str) -> OsProfile:
    if family not in _PROFILES and family in BUILTIN:
        importlib.import_module(BUILTIN[family])
    try:
        return _PROFILES[family]
    except (KeyError, TypeError):
        raise KeyError(f"unknown OS family {family!r}; known: {', '.join(families())}") from None


def profile_of(lab: Lab) -> OsProfile:
    return profile(lab.os.family)
