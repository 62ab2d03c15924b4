"""The lab pytest plugin: options, lab ownership, session/worker fixtures."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lab", "k8s-netlab")
    group.addoption("--lab", default=None, help="lab name (labs/NAME.yaml) or path")
