"""The `expect_*` comparisons the tests call (they assert, hiding their own frames), and the
live check of what the guide's OS steps leave on a node. The scenarios that observe the pod
network live in e2e/scenarios.py; the suite's own tests (tests/integration) run both with the
lab broken on purpose, to show each check fails when its invariant does not hold."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from lab.adapters.ssh import SshChannel
from lab.common.commands import cmd
from lab.model.config import Lab
from lab.net import reachability as rm
from lab.podnet import backend_of

# --- expectations (assert, hiding their own frames) -------------------------------------------


def expect_matrix(matrix: rm.Matrix, cells: int, context: Callable[[], str] | None = None) -> None:
    """One comparison: on failure the whole table, every wrong cell and its command, then
    `context()` (e.g. a namespace dump), computed only on failure. `cells` is the number of
    cells the lab implies: a matrix with fewer (or none) proves nothing and fails."""
    __tracebackhide__ = True
    if cells < 1 or len(matrix.expected) != cells:
        pytest.fail(
            f"{matrix.title}: {len(matrix.expected)} cells, but the lab implies {cells}: "
            "a matrix that does not cover the lab proves nothing",
            pytrace=False,
        )
    bad = matrix.mismatches()
    if bad:
        extra = f"\n\n{context()}" if context else ""
        pytest.fail(
            f"{len(bad)} of {len(matrix.expected)} cells wrong\n{matrix.render()}{extra}",
            pytrace=False,
        )


def skip_unless_answered_over(protocols: Sequence[str], driver: str, proto: str) -> None:
    """A cell over `proto` is judged only where the driver's echo server answers it saying who
    answered; elsewhere the test skips and says so."""
    if proto not in protocols:
        pytest.skip(
            f"the {driver} driver's echo server does not answer {proto.upper()} with the source "
            f"it saw and who it is (it answers {', '.join(p.upper() for p in protocols)})"
        )


def expect_no_problems(
    problems: Sequence[object],
    what: str,
    reproduce: Sequence[str] = (),
    context: Callable[[], str] | None = None,
) -> None:
    """Fail with every problem, the commands that reproduce them and `context()`."""
    __tracebackhide__ = True
    if not problems:
        return
    lines = [f"{what}: {len(problems)} problem(s)", *(f"  - {p}" for p in problems)]
    if reproduce:
        lines += ["reproduce:", *(f"  {r}" for r in dict.fromkeys(reproduce))]
    if context:
        lines += ["", context()]
    pytest.fail("\n".join(lines), pytrace=False)


GUIDE_SYSCTLS = {
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.ipv4.ip_forward": "1",
}


def guide_state_problems(node: SshChannel, lab: Lab, name: str) -> list[str]:
    """What the guide's OS steps leave on a node, read live: sysctls, swap off, br_netfilter,
    the hostname, and on the CI lab the host-gw routes to every other node's pod subnet."""
    problems = []
    for key, want in GUIDE_SYSCTLS.items():
        got = node.run(cmd("sysctl", "-n", key), check=False).stdout.strip()
        if got != want:
            problems.append(f"{name}: {key} = {got!r}, expected {want}")
    swaps = node.run(cmd("cat", "/proc/swaps", sudo=False)).stdout.splitlines()[1:]
    if swaps:
        problems.append(f"{name}: swap is on: {swaps}")
    if "br_netfilter " not in node.run(cmd("cat", "/proc/modules", sudo=False)).stdout:
        problems.append(f"{name}: br_netfilter is not loaded")
    hostname = node.run(cmd("hostname", sudo=False)).stdout.strip()
    if hostname != name:
        problems.append(f"{name}: hostname is {hostname!r}")
    wanted = backend_of(lab).expected_routes(lab, lab.node(name))
    if wanted:
        routes = node.run(cmd("ip", "-4", "route", "show", sudo=False)).stdout
        problems += [f"{name}: no route {r}" for r in wanted if r not in routes]
    return problems
