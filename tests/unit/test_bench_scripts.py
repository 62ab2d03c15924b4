"""Every benchmark script at least imports: they run only by hand or in `make bench` (VMs), so
a renamed core module would otherwise break them unseen."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("script", sorted(p.stem for p in BENCH.glob("*.py")))
def test_the_benchmark_imports(script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    try:
        module = importlib.import_module(script)
        assert module.__doc__, f"bench/{script}.py says what it measures in its docstring"
    finally:
        for name in [n for n in sys.modules if n in (script, "_common")]:
            del sys.modules[name]
