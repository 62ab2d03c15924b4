"""The suite's cost, measured in one run: `pytest e2e -n 0` vs `-n 4` on the CI lab, and the
pod-to-pod matrix's time at 2, 4 and 8 pods per node (its cells grow as the square of the pods)
on the 2-node CI lab and its 3-node variant. The matrix time is the test's call time without
its setup (the fleet), read from the JUnit properties the suite records.

    .venv/bin/python bench/bench_e2e.py [LAB] [LAB3] [--no-scaling]
    (default: ci-debian12 ci-debian12-3node; --no-scaling: only -n 0 vs -n 4)
    .venv/bin/python bench/bench_e2e.py [LAB] --services [--rounds N]
    (the suite `-n 4` with its Services next to the same suite without them: the lab file
    without its services section, so no DNS pod and no rules either; alternated, N rounds)
    .venv/bin/python bench/bench_e2e.py [LAB] --against REV [--rounds N]
    (the suite `-n 4` of this checkout next to the suite of commit REV, on the same running
    lab: REV's tree is a temporary git worktree sharing this checkout's .lab/ and .cache/;
    alternated, N rounds, so both sides meet the same machine)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import prepared, timed

from app.summary import parse_junit
from lab.hosts.machines import LabMachines
from lab.model import paths
from provision.run import run_provision

MATRIX_TEST = "test_every_pod_reaches_every_pod_without_nat"
PODS_PER_NODE = (2, 4, 8)


def pytest_e2e(lab: str, workers: int, *extra: str, cwd: Path = paths.REPO) -> None:
    argv = [
        sys.executable, "-m", "pytest", "e2e", "--lab", lab, "--lab-mode", "attach", "-q",
        "-p", "no:cacheprovider", "-p", "no:randomly", "-n", str(workers), *extra,
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:  # the run's own words, with the command to run it again
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise SystemExit(f"{' '.join(argv)} (in {cwd}) exited {done.returncode}:\n{tail}")


def matrix_seconds(lab: str, pods_per_node: int) -> float:
    """The pod matrix's own time (call, not the fleet's setup) and its number of cells."""
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        pytest_e2e(
            lab, 0, "--drivers", "cni", "-k", MATRIX_TEST, "--pods-per-node", str(pods_per_node),
            "--junitxml", str(junit),
        )  # fmt: skip
        (case,) = [c for c in parse_junit(junit.read_text(), "e2e") if MATRIX_TEST in c.name]
    return case.seconds - (case.setup_s or 0.0)


def up_and_provisioned(name: str) -> tuple[LabMachines, bool]:
    machines = prepared(name)
    states = machines.states()
    created = not states or any(s.state != "running" for s in states.values())
    if created:
        timed(f"{name}: up", machines.up)
    timed(f"{name}: provision", lambda: run_provision(machines))
    return machines, created


def scaling(name: str) -> list[tuple[int, int, float]]:
    machines, created = up_and_provisioned(name)
    nodes = len(machines.lab.nodes)
    rows = []
    try:
        for per_node in PODS_PER_NODE:
            pods = nodes * per_node
            seconds = matrix_seconds(name, per_node)
            rows.append((per_node, pods * (pods - 1), seconds))
            print(
                f"{name}: {per_node} pods/node, {pods * (pods - 1):4} cells: {seconds:6.1f} s",
                flush=True,
            )
    finally:
        if created:
            machines.destroy()
    return rows


def without_services(lab: str, where: Path) -> str:
    """A copy of LAB's file without its services section (the same lab name: it attaches to
    the same machines)."""
    import yaml

    doc = yaml.safe_load(paths.resolve_lab_path(lab).read_text())
    doc.pop("services", None)
    copy = where / f"{lab}.yaml"
    copy.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(copy)


def services_cost(lab: str, rounds: int) -> None:
    machines, created = up_and_provisioned(lab)
    with_s: list[float] = []
    without_s: list[float] = []
    tmp = tempfile.TemporaryDirectory()
    bare = without_services(lab, Path(tmp.name))
    try:
        for i in range(rounds):
            with_s.append(
                timed(f"round {i + 1}: pytest e2e -n 4 (Services)", lambda: pytest_e2e(lab, 4))
            )
            without_s.append(
                timed(
                    f"round {i + 1}: pytest e2e -n 4 (no Services)",
                    lambda: pytest_e2e(bare, 4, "--ignore", "e2e/test_services.py"),
                )
            )
    finally:
        tmp.cleanup()
        if created:
            machines.destroy()
    print_ratio(("with Services", with_s), ("without", without_s))


def print_ratio(a: tuple[str, list[float]], b: tuple[str, list[float]]) -> None:
    """a's median over b's, and every round of both."""
    (name_a, runs_a), (name_b, runs_b) = a, b
    ma, mb = sorted(runs_a)[len(runs_a) // 2], sorted(runs_b)[len(runs_b) // 2]
    rounds = len(runs_a)
    print(f"\n{name_a} / {name_b} = {ma / mb:.2f}  (medians of {rounds}: {ma:.1f} s vs {mb:.1f} s)")
    shown = [", ".join(f"{x:.1f}" for x in runs) for runs in (runs_a, runs_b)]
    print(f"{name_a}: {shown[0]}; {name_b}: {shown[1]}")


def against(lab: str, rev: str, rounds: int) -> None:
    """This checkout's suite against REV's, alternated on one running lab."""
    machines, created = up_and_provisioned(lab)
    tmp = tempfile.TemporaryDirectory(prefix="bench-rev-")
    tree = Path(tmp.name) / "tree"
    git = ("git", "-C", str(paths.REPO))
    subprocess.run([*git, "worktree", "add", "--detach", str(tree), rev], check=True)
    try:
        for shared in (".lab", ".cache"):  # the same lab's state and ssh-config, box, images
            (tree / shared).symlink_to(paths.REPO / shared)
        where = subprocess.run(
            [sys.executable, "-c", "import e2e; print(e2e.__file__)"],
            cwd=tree, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        if not where.startswith(str(tree)):
            raise SystemExit(f"{rev}'s tree imports its e2e from elsewhere: {where}")
        mine: list[float] = []
        theirs: list[float] = []
        for i in range(rounds):
            theirs.append(
                timed(
                    f"round {i + 1}: pytest e2e -n 4 at {rev}", lambda: pytest_e2e(lab, 4, cwd=tree)
                )
            )
            mine.append(
                timed(f"round {i + 1}: pytest e2e -n 4 (this checkout)", lambda: pytest_e2e(lab, 4))
            )
    finally:
        subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)
        tmp.cleanup()
        if created:
            machines.destroy()
    print_ratio(("this checkout", mine), (rev, theirs))


def option(name: str, default: str) -> str:
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default


def main() -> None:
    valued = {
        sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a in ("--rounds", "--against")
    }
    args = [a for a in sys.argv[1:] if not a.startswith("--") and a not in valued]
    if "--against" in sys.argv:
        against(
            args[0] if args else "ci-debian12",
            option("--against", ""),
            int(option("--rounds", "3")),
        )
        return
    if "--services" in sys.argv:
        services_cost(args[0] if args else "ci-debian12", int(option("--rounds", "3")))
        return
    lab = args[0] if args else "ci-debian12"
    lab3 = args[1] if len(args) > 1 else "ci-debian12-3node"
    with_scaling = "--no-scaling" not in sys.argv
    machines, created = up_and_provisioned(lab)
    try:
        serial = timed("pytest e2e -n 0", lambda: pytest_e2e(lab, 0))
        parallel = timed("pytest e2e -n 4", lambda: pytest_e2e(lab, 4))
    finally:
        if created:
            machines.destroy()
    results = {lab: scaling(lab), lab3: scaling(lab3)} if with_scaling else {}
    print(f"\n(-n 0) / (-n 4) = {serial / parallel:.2f}  (-n 4: {parallel:.1f} s)")
    for name, rows in results.items():
        (p0, c0, s0), *_, (p1, c1, s1) = rows
        print(
            f"{name}: {p0} -> {p1} pods/node: cells x{c1 / c0:.1f}, matrix time x{s1 / s0:.2f} "
            f"({s0 / c0 * 1000:.0f} -> {s1 / c1 * 1000:.0f} ms per cell)"
        )


if __name__ == "__main__":
    start = time.monotonic()
    main()
    print(f"(benchmark took {time.monotonic() - start:.0f} s)")
