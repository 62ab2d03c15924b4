"""mutmut's workers are forked after the modules are imported: a table a module builds at import
by calling one of its own functions keeps the original code's result, and every mutant of that
function "survives" whatever the tests (docs/mutation.md, "What mutmut cannot mutate"). So no
module in scope calls a function in scope at import, except the few listed here, each held by
tests that call it directly."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# (file, function): called at import, and tested by a direct call (the test named)
CALLED_AT_IMPORT = {
    ("e2e/breakages.py", "main"),  # under `if __name__ == "__main__"`
    ("e2e/dnsd.py", "serve"),  # under `if __name__ == "__main__"`
    ("lab/common/redact.py", "render_rules_markdown"),  # under `if __name__ == "__main__"`
    ("lab/common/redact.py", "_spread"),  # test_redact_patterns
    ("lab/hosts/os/debian12.py", "tools_table"),  # test_registries
    ("lab/hosts/os/debian12.py", "cni_plugins"),  # test_compat_tables
    ("lab/hosts/os/el7.py", "tools_table"),
    ("lab/hosts/os/el7.py", "cni_plugins"),
    ("lab/hosts/os/debian12.py", "register"),  # test_registries
    ("lab/hosts/os/el7.py", "register"),
    ("lab/podnet/bgp.py", "register"),  # test_registries
    ("lab/podnet/flannel.py", "register"),
    ("lab/podnet/hostroutes.py", "register"),
    ("lab/podnet/vxlan.py", "register"),
    ("lab/runtime/echo.py", "one_line"),  # test_echo
    ("lab/runtime/images.py", "echo_server_args"),  # test_oci_images
}
ALWAYS_CALLED_AT_RUN_TIME = {"cmd"}  # constant commands; `cmd` is called at run time everywhere


def _in_scope() -> list[Path]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    files = {p for pattern in cfg["only_mutate"] for p in ROOT.glob(pattern)}
    return sorted(p for p in files if p.suffix == ".py")


def _import_time_calls(tree: ast.Module, functions: set[str]) -> set[str]:
    """Names of `functions` called by the module's own top-level statements (class bodies
    included; not function bodies nor lambdas, which run later)."""
    called: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in functions
        ):
            called.add(node.func.id)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for statement in tree.body:
        visit(statement)
    return called


def test_no_module_in_scope_builds_a_table_at_import_with_a_function_in_scope() -> None:
    trees = {p: ast.parse(p.read_text()) for p in _in_scope()}
    functions = {
        n.name for t in trees.values() for n in t.body if isinstance(n, ast.FunctionDef)
    } - ALWAYS_CALLED_AT_RUN_TIME
    found = {
        (str(p.relative_to(ROOT)), name)
        for p, t in trees.items()
        for name in _import_time_calls(t, functions)
    }
    assert found - CALLED_AT_IMPORT == set(), "build these tables at call time, not at import"
    assert CALLED_AT_IMPORT - found == set(), "no longer called at import: drop from the list"


def test_the_scan_finds_a_call_at_import_and_not_one_in_a_function_or_lambda() -> None:
    tree = ast.parse(
        "TABLE = make(1)\n"
        "class C:\n    X = make(2)\n    def m(self):\n        return make(3)\n"
        "def f():\n    return other()\n"
        "LATER = lambda: other()\n"
    )
    assert _import_time_calls(tree, {"make", "other"}) == {"make"}
    assert _import_time_calls(ast.parse("ROWS = [*spread(1)]\n"), {"spread"}) == {"spread"}


def _in_scope_names(tree: ast.Module, modules: set[str]) -> set[str]:
    """The names a module imports (`from M import f`) from a module in scope."""
    return {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module in modules
        for alias in node.names
    }


def test_no_test_module_builds_what_it_tests_at_import_with_a_function_in_scope() -> None:
    # a step or a text built at import (STEP = containerd_step(...)) keeps the original code
    # in mutmut's workers: run 4 scored two of containerd_step's mutants "survived" that the
    # tests kill when the source itself is changed
    trees = {p: ast.parse(p.read_text()) for p in _in_scope()}
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in trees}
    functions = {  # functions, not classes: a dataclass built at import is data
        n.name for t in trees.values() for n in t.body if isinstance(n, ast.FunctionDef)
    } - ALWAYS_CALLED_AT_RUN_TIME
    found = set()
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for name in _import_time_calls(tree, _in_scope_names(tree, modules) & functions):
            found.add((str(path.relative_to(ROOT)), name))
    assert found == set(), "call these in the tests (a function or a fixture), not at import"


def test_the_test_scan_knows_an_import_from_a_module_in_scope_from_one_outside() -> None:
    tree = ast.parse(
        "from lab.net.netmath import overlaps\nfrom tests.unit.fake_node import text\n"
        "A = overlaps(1)\nB = text(2)\n"
    )
    names = _in_scope_names(tree, {"lab.net.netmath"})
    assert names == {"overlaps"}
    assert _import_time_calls(tree, names) == {"overlaps"}


def test_a_mutants_own_module_tests_are_named_from_its_module() -> None:
    from tests.unit.conftest import own_tests_prefix

    assert own_tests_prefix("lab.common.redact.x__policy__mutmut_3") == "test_redact"
    assert own_tests_prefix("lab.model.yamldoc.xǁStrictLoaderǁscan__mutmut_22") == "test_yamldoc"
    assert own_tests_prefix("e2e.hostnet.x_rule_matches__mutmut_23") == "test_hostnet"
