"""The layering the import contracts enforce covers all of the core: every module of lab/ is
in the contract that keeps it free of provision/, e2e/ and app/, except the entry script
lab/__main__.py (`python -m lab`), which nothing imports."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["name"]: c for c in config["contracts"]}


def test_the_core_contract_lists_every_module_of_lab_but_the_entry_script() -> None:
    (core,) = [c for name, c in contracts().items() if name.startswith("the core (lab)")]
    listed = set(core["source_modules"])  # type: ignore[arg-type]
    top = {
        f"lab.{p.stem if p.is_file() else p.name}"
        for p in (ROOT / "lab").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    }
    assert top - listed == {"lab.__main__"}
    assert listed - top == set(), "the contract names modules that do not exist"


def test_no_contract_ignores_an_import() -> None:
    assert [name for name, c in contracts().items() if c.get("ignore_imports")] == []


def test_the_entry_script_only_hands_over_to_the_application() -> None:
    text = (ROOT / "lab" / "__main__.py").read_text()
    imports = [line for line in text.splitlines() if line.startswith(("import", "from"))]
    assert imports == ["import sys", "from app.cli import main"]
