"""A pytest plugin for the suite's own test: faults never heal (the link stays down)."""

from __future__ import annotations

from e2e import faults


def pytest_configure() -> None:
    faults.LinkDown.heal = lambda self, machines: None  # type: ignore[method-assign]
