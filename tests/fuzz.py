"""How many examples a property test tries: its own number, or a tenth of it under mutation
testing (`make mutation`: mutmut sets MUTANT_UNDER_TEST before the tests are imported). A
surviving mutant runs every test that reaches it, and the property tests are most of that
time; the deterministic tests pin the behaviour, the property tests look for crashes. Only modules
that use hypothesis import this one."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings


def examples(count: int) -> int:
    return max(5, count // 10) if "MUTANT_UNDER_TEST" in os.environ else count


def fixed(count: int) -> settings:
    """`count` examples (see examples), the same ones on every run and machine: derandomized,
    no example database, no deadline or health check to trip on a loaded CI host."""
    return settings(
        max_examples=examples(count),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def paths_in(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a YAML document (mapping keys and list indexes), its root `()` first."""
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += paths_in(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += paths_in(value, (*prefix, i))
    return out
