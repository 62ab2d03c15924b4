"""The mutation score of the pure core (`make mutation`, docs/mutation.md).

mutmut 3 keeps one JSON file per mutated module, `mutants/<path>.meta`, whose
`exit_code_by_key` maps each mutant (`lab.model.config.x_validate_nodes__mutmut_12`) to the exit
code of its test run, or null while it is not checked yet. `tally` turns those files and the
list of equivalent mutants (docs/mutation.md) into a score; `main` reads them and prints it,
exiting 1 below the required kill rate so the nightly can gate on it.

Kill rate = killed / (total - equivalent). Killed counts a failing test run, a timeout (the
mutant hangs the code; a test noticed) and a mutant the type checker refuses; a listed
equivalent counts nowhere, whatever its status. A mutant the run left without a verdict (not
checked: a budget ran out; no tests: no unit test reaches its function; interrupted, skipped,
suspicious) is *unscored*: it is named, and the gate fails while there is one, whatever the rate
of the others (a budget must not drop the slow survivors from the denominator).

`measure_scope` counts what the scope covers: the lines of the mutated files less the functions
kept out with `# pragma: no mutate block`, over the production lines (lab/, provision/, e2e/,
app/; not the e2e suite's test modules, conftest files nor generated protobuf code).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

# mutmut 3.x's exit codes (mutmut/stats.py: status_by_exit_code); anything else is suspicious
STATUS_BY_EXIT_CODE: Mapping[int | None, str] = {
    1: "killed",
    3: "killed",  # pytest's internal error: the mutant broke the import or the collection
    0: "survived",
    5: "no tests",
    33: "no tests",
    2: "interrupted",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    -24: "timeout",  # SIGXCPU: the CPU-time bound
    24: "timeout",
    152: "timeout",
    255: "timeout",
    37: "caught by type check",
    -11: "segfault",
    -9: "segfault",
    None: "not checked",
}
DETECTED = frozenset(("killed", "timeout", "caught by type check"))
# no verdict: the gate fails while any is left
UNSCORED = frozenset(("not checked", "no tests", "interrupted", "skipped", "suspicious"))

# `- `lab.net.netmath.x_subnet_count__mutmut_3`: why it cannot change behaviour`
_EQUIVALENT_LINE = re.compile(
    r"^\s*[-*]\s+`(?P<name>[\w.]+__mutmut_\d+)`\s*[:\u2014-]+\s*(?P<why>\S.*)$"
)


def status_of(exit_code: int | None) -> str:
    return STATUS_BY_EXIT_CODE.get(exit_code, "suspicious")


def parse_equivalents(markdown: str) -> dict[str, str]:
    """The equivalent mutants listed in docs/mutation.md: name -> the one-line reason.
    A line without a reason is not an entry: every equivalent says why."""
    found = {}
    for line in markdown.splitlines():
        m = _EQUIVALENT_LINE.match(line)
        if m:
            found[m["name"]] = m["why"].strip()
    return found


def module_of(mutant: str) -> str:
    """`lab.k8s.parse.x_nodes__mutmut_2` -> `lab.k8s.parse`; a method's
    `lab.net.cni.xǁResultǁcheck__mutmut_1` -> `lab.net.cni`."""
    return mutant.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[0]


@dataclass(frozen=True)
class Score:
    by_status: Mapping[str, int]
    equivalent: int
    # listed as equivalent but absent from the run (renamed by a code change): stale entries
    stale_equivalents: tuple[str, ...] = ()
    survivors: tuple[str, ...] = field(default=())
    # listed as equivalent, yet a test killed it: it was not equivalent
    killed_equivalents: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.by_status.values()) + self.equivalent

    @property
    def detected(self) -> int:
        return sum(n for status, n in self.by_status.items() if status in DETECTED)

    # the mutants left without a verdict other than "not checked" (no tests, ...), by name
    unscored_names: tuple[str, ...] = ()

    @property
    def not_checked(self) -> int:
        return self.by_status.get("not checked", 0)

    @property
    def unscored(self) -> int:
        """The non-equivalent mutants without a verdict: the gate fails while one is left."""
        return sum(n for status, n in self.by_status.items() if status in UNSCORED)

    @property
    def scored(self) -> int:
        """The non-equivalent mutants with a verdict: the denominator."""
        return self.total - self.equivalent - self.unscored

    @property
    def kill_rate(self) -> float | None:
        return self.detected / self.scored if self.scored else None


def selected(name: str, only: Iterable[str] | None) -> bool:
    """`name` matches one of the globs (mutmut's own syntax: `lab.model.config.*`); None: all."""
    return only is None or any(fnmatch.fnmatchcase(name, glob) for glob in only)


def tally(
    exit_codes: Mapping[str, int | None],
    equivalents: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> Score:
    """Count the mutants matching `only` (all when None) by status, the equivalents apart."""
    globs = None if only is None else tuple(only)
    listed = frozenset(equivalents)
    by_status: dict[str, int] = {}
    survivors = []
    unscored = []
    killed_listed = []
    equivalent = 0
    for name, code in sorted(exit_codes.items()):
        if not selected(name, globs):
            continue
        if name in listed:
            equivalent += 1
            if status_of(code) in DETECTED:
                killed_listed.append(name)
            continue
        status = status_of(code)
        by_status[status] = by_status.get(status, 0) + 1
        if status in UNSCORED:
            if status != "not checked":
                unscored.append(name)
        elif status not in DETECTED:
            survivors.append(name)
    stale = tuple(sorted(n for n in listed - exit_codes.keys() if selected(n, globs)))
    return Score(
        dict(sorted(by_status.items())),
        equivalent,
        stale,
        tuple(survivors),
        tuple(killed_listed),
        tuple(unscored),
    )


def merge_meta(documents: Iterable[Mapping[str, object]]) -> dict[str, int | None]:
    """The `exit_code_by_key` of every mutmut .meta document, merged."""
    merged: dict[str, int | None] = {}
    for doc in documents:
        codes = doc.get("exit_code_by_key")
        if not isinstance(codes, dict):
            raise ValueError("not a mutmut 3 .meta document: no exit_code_by_key")
        for name, code in codes.items():
            if code is not None and not isinstance(code, int):
                raise ValueError(f"{name}: exit code {code!r} is not an integer")
            merged[str(name)] = code
    return merged


def reset_undetected(doc: dict[str, object]) -> int:
    """Mark every mutant of one .meta document that no test detected as not checked, so the
    next `mutmut run` tries it again (mutmut keeps a verdict until the function changes, but
    a survivor may have been killed by a test written since). Returns how many."""
    codes = doc.get("exit_code_by_key")
    if not isinstance(codes, dict):
        raise ValueError("not a mutmut 3 .meta document: no exit_code_by_key")
    again = [
        name for name, code in codes.items() if code is not None and status_of(code) not in DETECTED
    ]
    for name in again:
        codes[name] = None
    return len(again)


def by_module(exit_codes: Mapping[str, int | None], equivalents: Iterable[str]) -> dict[str, Score]:
    """One score per module: where the weak spots are."""
    modules = sorted({module_of(name) for name in exit_codes})
    return {m: tally(exit_codes, equivalents, [f"{m}.*"]) for m in modules}


def render(score: Score, scope: str = "judging and planning code") -> str:
    """The lines `make mutation` prints; the kill rate is the last one."""
    lines = [
        "  "
        + ", ".join(f"{status} {n}" for status, n in score.by_status.items())
        + f", equivalent {score.equivalent}",
    ]
    if score.survivors:
        lines.append(f"  {len(score.survivors)} not killed (`mutmut show NAME` shows one):")
        lines += [f"    {name}" for name in score.survivors]
    if score.stale_equivalents:
        lines.append("  listed as equivalent but no longer generated (update docs/mutation.md):")
        lines += [f"    {name}" for name in score.stale_equivalents]
    if score.killed_equivalents:
        lines.append("  listed as equivalent but killed by a test (remove from docs/mutation.md):")
        lines += [f"    {name}" for name in score.killed_equivalents]
    if score.unscored_names:
        lines.append(f"  {len(score.unscored_names)} without a verdict (no tests, ...):")
        lines += [f"    {name}" for name in score.unscored_names]
    if score.not_checked:
        lines.append(f"  {score.not_checked} not checked (the run stopped before them)")
    if score.unscored:
        lines.append(
            f"  {score.unscored} mutant(s) unscored: the gate fails until every one has a verdict"
        )
    rate = score.kill_rate
    shown = "n/a" if rate is None else f"{100 * rate:.1f}%"
    lines.append(
        f"mutation score of the {scope}: {score.detected} killed / "
        f"({score.total} - {score.equivalent} equivalent"
        + (f" - {score.unscored} unscored" if score.unscored else "")
        + f") = {shown}"
    )
    return "\n".join(lines)


# --- the scope's size ------------------------------------------------------------------------

PRODUCTION = ("lab", "provision", "e2e", "app")
_PRAGMA_BLOCK = re.compile(r"#\s*pragma:.*no mutate\s*:?\s*block")


def production_file(path: str) -> bool:
    """Production code: lab/, provision/, e2e/, app/, without the e2e suite's test modules,
    conftest files and generated protobuf modules."""
    name = path.rsplit("/", 1)[-1]
    return (
        path.split("/", 1)[0] in PRODUCTION
        and name.endswith(".py")
        and not name.startswith("test_")
        and name != "conftest.py"
        and "_pb2" not in name
    )


def code_lines(source: str) -> set[int]:
    """The 1-based numbers of the lines that hold code (not blank, not only a comment)."""
    return {
        n
        for n, line in enumerate(source.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    }


def excluded_lines(source: str) -> set[int]:
    """The lines of the functions, methods and classes whose `def`/`class` line carries
    `# pragma: no mutate block` (mutmut mutates none of them)."""
    lines = source.splitlines()
    out: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            header = node.body[0].lineno - 1 if node.body else node.lineno
            if any(_PRAGMA_BLOCK.search(lines[i - 1]) for i in range(node.lineno, header + 1)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                out.update(range(first, (node.end_lineno or node.lineno) + 1))
    return out


@dataclass(frozen=True)
class ScopeSize:
    lines: int  # code lines that mutmut may mutate (in scope, not excluded)
    production: int  # code lines of production code
    files: int  # files in scope

    def render(self) -> str:
        share = 100 * self.lines / self.production if self.production else 0.0
        return (
            f"scope: {self.lines} of {self.production} production code lines ({share:.0f}%), "
            f"{self.files} files"
        )


def measure_scope(sources: Mapping[str, str], only_mutate: Iterable[str]) -> ScopeSize:
    """`sources`: production path -> text; `only_mutate`: mutmut's globs of paths."""
    globs = tuple(only_mutate)
    lines = production = files = 0
    for path, text in sorted(sources.items()):
        if not production_file(path):
            continue
        code = code_lines(text)
        production += len(code)
        if any(fnmatch.fnmatchcase(path, g) for g in globs):
            files += 1
            lines += len(code - excluded_lines(text))
    return ScopeSize(lines, production, files)


def read_scope(root: Path) -> ScopeSize:
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    only = config["tool"]["mutmut"]["only_mutate"]
    sources = {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for top in PRODUCTION
        for p in sorted((root / top).rglob("*.py"))
    }
    return measure_scope(sources, only)


def _read_meta(mutants: Path) -> list[Path]:
    return sorted(mutants.rglob("*.py.meta"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m app.mutation", description=__doc__.split("\n")[0])
    ap.add_argument("--mutants", type=Path, default=Path("mutants"), help="mutmut's directory")
    sub = ap.add_subparsers(dest="command", required=True)
    score_ap = sub.add_parser("score", help="print the kill rate; exit 1 below --min")
    score_ap.add_argument("--equivalents", type=Path, default=Path("docs/mutation.md"))
    score_ap.add_argument("--min", type=float, default=0.0, help="required kill rate (percent)")
    score_ap.add_argument("--only", nargs="*", help="score only mutants matching these globs")
    score_ap.add_argument("--per-module", action="store_true", help="a line per module too")
    score_ap.add_argument(
        "--incremental",
        action="store_true",
        help="the run reused an earlier one's verdicts: say the figure is not from scratch",
    )
    sub.add_parser("recheck", help="mark every undetected mutant for the next run")
    sub.add_parser("scope", help="how many production code lines the scope covers")
    args = ap.parse_args(argv)
    if args.command == "scope":
        print(read_scope(Path.cwd()).render())
        return 0
    metas = _read_meta(args.mutants)
    if not metas:
        print(f"no mutmut results under {args.mutants}/: run `make mutation` first")
        return 2 if args.command == "score" else 0
    if args.command == "recheck":
        count = 0
        for path in metas:
            doc = json.loads(path.read_text(encoding="utf-8"))
            n = reset_undetected(doc)
            if n:
                path.write_text(json.dumps(doc, indent=4), encoding="utf-8")
            count += n
        print(f"{count} undetected mutant(s) of the last run will be tried again")
        return 0
    codes = merge_meta(json.loads(p.read_text(encoding="utf-8")) for p in metas)
    equivalents = parse_equivalents(args.equivalents.read_text(encoding="utf-8"))
    if args.per_module:
        for module, part in by_module(codes, equivalents).items():
            rate = part.kill_rate
            shown = "n/a" if rate is None else f"{100 * rate:5.1f}%"
            print(f"  {module:<24} {shown}  ({part.detected} of {part.scored})")
    score = tally(codes, equivalents, args.only or None)
    print(render(score))
    if args.incremental:
        print("  (incremental: verdicts kept from an earlier run; not a from-scratch figure)")
    rate = score.kill_rate
    if score.unscored:
        print(f"FAIL: {score.unscored} mutant(s) without a verdict")
        return 1
    if rate is None or 100 * rate < args.min:
        print(f"below the required {args.min:.1f}%")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
