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


# --- unit tests are grouped by the module they test -----------------------------------------

# Test files that test no single module or subpackage, each for a documented reason.
CROSS_CUTTING = {
    "architecture": "the layering, the import contracts and these naming rules",
    "shipped_labs": "every lab in labs/ against rules that hold across labs",
    "golden_update": "the golden-file helper every golden test uses (tests/unit/golden.py)",
    "registries": "a toy backend and OS registered from the test file alone (docs/architecture.md)",
    "fakes": "tests/fakes.py's strict doubles against the protocols they stand in for",
    "xdist_groups": "the installed pytest-xdist pair still groups the e2e suite's loadgroup tests",
    "guide_on_a_real_host": "the guide lab read end to end on a fake node (issue 12)",
    "guide_second_reading": "the guide lab read end to end on a fake node (issue 29)",
}
# Words that name how a test was written (a campaign), not what it tests.
CAMPAIGN_WORDS = {"exact", "core", "edges", "mutants", "misc"}
PACKAGES = ("app", "lab", "provision", "e2e", "bench")


def module_names() -> set[str]:
    """Every module and subpackage, as each tail of its dotted path joined by '_'
    (lab/hosts/parse.py: parse, hosts_parse, lab_hosts_parse)."""
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*"):
            if "__pycache__" in path.parts or path.name.startswith("test_"):
                continue
            if path.suffix == ".py" and path.stem not in {"__init__", "__main__", "conftest"}:
                parts = path.relative_to(ROOT).with_suffix("").parts
            elif path.is_dir() or path == ROOT / package:
                parts = path.relative_to(ROOT).parts
            else:
                continue
            names.update("_".join(parts[i:]).lstrip("_") for i in range(len(parts)))
        names.add(package)
    return names


def test_every_unit_test_file_is_named_after_the_module_it_tests() -> None:
    modules = module_names()
    stray = []
    for path in sorted((ROOT / "tests" / "unit").glob("test_*.py")):
        name = path.stem.removeprefix("test_")
        if name in CROSS_CUTTING:
            continue
        words = set(name.split("_"))
        maps = any(name == m or name.startswith(m + "_") for m in modules)
        if not maps or words & CAMPAIGN_WORDS:
            stray.append(path.name)
    assert stray == [], (
        "name each unit test file test_<module>.py (or test_<module>_<concern>.py) after the "
        "module or subpackage it tests, and move its tests there; a test of no single module "
        "goes into CROSS_CUTTING with its reason"
    )
    listed = {f"test_{name}.py" for name in CROSS_CUTTING}
    assert listed - {p.name for p in (ROOT / "tests" / "unit").glob("test_*.py")} == set()


def test_the_naming_rule_refuses_a_campaign_name_and_a_name_of_no_module() -> None:
    modules = module_names()
    assert {"parse", "hosts_parse", "lab_hosts_parse", "podnet", "drivers_k8s"} <= modules
    for name in ("core_exact", "k8s_checks_exact", "core_edges"):
        assert set(name.split("_")) & CAMPAIGN_WORDS
    assert not any(name == "grab_bag" or "grab_bag".startswith(m + "_") for m in modules)
    assert set(CROSS_CUTTING).isdisjoint(modules)


# --- docs/architecture.md lists every module ------------------------------------------------


def documented_modules() -> list[str]:
    """Every module of app/, lab/, provision/ and e2e/ (a package's __init__.py too, unless it
    holds nothing but a docstring), as its path from the repository root."""
    found = []
    for package in ("app", "lab", "provision", "e2e"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name == "__init__.py" and len(path.read_text().splitlines()) <= 3:
                continue
            found.append(path.relative_to(ROOT).as_posix())
    return found


def test_docs_architecture_lists_every_module_in_its_table() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    rows = {
        line.split("`")[1] for line in doc.splitlines() if line.startswith("| `") and "`" in line
    }
    missing = [path for path in documented_modules() if path not in rows]
    assert missing == [], "add a line for each to the module table of docs/architecture.md"


def test_the_module_scan_sees_every_subpackage() -> None:
    modules = documented_modules()
    for path in ("lab/podnet/base.py", "lab/hosts/os/el7.py", "e2e/drivers/kube.py",
                 "provision/podnet/vxlan.py", "lab/runtime/cri/messages.py", "app/cli.py",
                 "lab/net/kubeproxy.py", "e2e/dnsd.py", "lab/podnet/__init__.py"):  # fmt: skip
        assert path in modules
    assert "lab/net/__init__.py" not in modules  # empty: the package is its modules
