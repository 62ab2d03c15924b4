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
