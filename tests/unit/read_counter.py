"""A pytest plugin for tests/unit/test_suite.py (loaded with -p): records every lab
file this process reads, into NETLAB_READS_DIR/reads-<pid>.json at its end."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from lab.model import labfile

READS: list[str] = []
_read = labfile.read_bounded


def _counting(path: Path, *args: Any, **kwargs: Any) -> Any:
    READS.append(Path(path).name)
    return _read(path, *args, **kwargs)


labfile.read_bounded = _counting  # type: ignore[assignment]


def pytest_unconfigure(config: pytest.Config) -> None:
    out = Path(os.environ["NETLAB_READS_DIR"]) / f"reads-{os.getpid()}.json"
    out.write_text(json.dumps(READS))
