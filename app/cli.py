"""`python -m lab ...`: the command line. Every verb is a function of (lab, args) that returns an
exit code; errors are one clear message, never a traceback."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from app import nightly
from app.history import SinceGreen
from app.live import NodeLines
from app.preflight import expect_free_libvirt_subnets, preflight
from lab.adapters import sandbox
from lab.adapters.ssh import ssh_argv
from lab.common.errors import CommandFailed, LabStateError, UsageError
from lab.common.redact import install_log_redaction, redact
from lab.common.waits import WaitTimeout
from lab.hosts.capacity import check_capacity
from lab.hosts.machines import LabMachines, flannel_upstream, new_instance, render
from lab.model import instance, lookalike, paths
from lab.model.config import Lab, LabError, Node
from lab.model.labfile import load_named
from lab.model.problems import render_problems
from lab.model.underlay import machine_names, router_node
from provision.apply import NodeReport
from provision.run import run_provision, runtime_images
from provision.steps import dry_run, render_plan, router_steps_for, steps_for

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)
Verb = Callable[[Lab, argparse.Namespace], int]


def load(name: str, host_check: bool = True) -> Lab:
    """A lab by its file's name or path, or an instance of one by its name: validated, with
    this host's networks (unless `host_check` is off) and its pinned checksums checked
    against the files here (nothing is downloaded)."""
    from lab.adapters.fetch import local_files
    from lab.adapters.host import probe_host_networks

    path = paths.resolve_lab_path(name)
    recorded = (paths.state_dir(name) / instance.RECORD).is_file()
    missing = not path.exists() and not path.is_symlink() and path.parent == paths.LABS_DIR
    if missing and not recorded:
        known = ", ".join(sorted(p.stem for p in paths.LABS_DIR.glob("*.yaml")))
        records = paths.state_root().glob(f"*/{instance.RECORD}")
        instances = sorted(r.parent.name for r in records)
        also = f"; instances here: {', '.join(instances)}" if instances else ""
        raise UsageError(
            f"no lab {name!r}{lookalikes(name)}: {path} does not exist and no instance of "
            f"that name is recorded here; known labs: {known}{also}"
        )
    host_networks = probe_host_networks() if host_check and not recorded else ()
    return load_named(name, host_networks, local_files)


def lookalikes(typed: str) -> str:
    """A name typed on the command line that holds a look-alike or invisible character: which
    one (it reads as a known name but is none)."""
    named = lookalike.explain(typed)
    return f" (it contains {named})" if named else ""


def node_of(lab: Lab, name: str) -> Node:
    """The lab's node `name`, or a usage error that lists the nodes it has."""
    if name not in lab.node_names:
        raise UsageError(
            f"lab {lab.name} has no node {name!r}{lookalikes(name)}; its nodes: "
            f"{', '.join(lab.node_names)}"
        )
    return lab.node(name)


def error(exc: BaseException | str) -> None:
    """One error, redacted, as `error: ...` on stderr."""
    console.print("error: ", style="red", end="")
    console.print(redact(str(exc)), markup=False, soft_wrap=True, highlight=False)


def print_problems(exc: LabError) -> None:
    console.print(
        f"{exc.source}: {len(exc.problems)} problem(s)", style="red", markup=False, soft_wrap=True
    )
    for line in render_problems(exc.problems):
        console.print(line, markup=False, soft_wrap=True)


# --- verbs that need no machines ---------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.lab:
        try:
            lab = load(name, host_check=not args.no_host_check)
        except LabError as exc:
            failed += 1
            print_problems(exc)
            continue
        except UsageError as exc:
            failed += 1
            error(exc)
            continue
        out.print(f"{lab.source}: ok ({len(lab.nodes)} nodes: {', '.join(lab.node_names)})")
    return 2 if failed else 0


def preflight_cmd(args: argparse.Namespace) -> int:
    """What this host lacks for the lab, before anything is created (starts nothing)."""
    lab = load(args.lab, host_check=False)  # host subnets are one of the checks
    return preflight(lab, network=not args.no_network, timeout=args.timeout)


def render_cmd(lab: Lab, args: argparse.Namespace) -> int:
    for path in render(lab):
        out.print(str(path))
    return 0


def plan(lab: Lab, args: argparse.Namespace) -> int:
    router = router_node(lab) if lab.network.routed else None
    if router is not None and args.node == router.name:  # the router VM of a routed underlay
        print(render_plan(router, dry_run(lab, router, router_steps_for(lab))))
        return 0
    nodes = [node_of(lab, args.node)] if args.node else list(lab.nodes)
    steps = steps_for(lab, flannel_upstream(lab), runtime_images(lab, build=False))
    if router is not None and not args.node:
        print(render_plan(router, dry_run(lab, router, router_steps_for(lab))))
    for node in nodes:
        print(render_plan(node, dry_run(lab, node, steps)))
    return 0


def box(lab: Lab, args: argparse.Namespace) -> int:
    if not lab.vm.box_build:
        raise UsageError(f"lab {lab.name} uses the published box {lab.vm.box}; nothing to build")
    from lab.hosts import box as box_builder

    sandbox.start()
    print(box_builder.ensure_box(lab))
    return 0


# --- verbs on the lab's machines ---------------------------------------------------------


def machines_for(
    lab: Lab, on_line: Callable[[str], None] | None = None, box: bool = False
) -> LabMachines:
    """The lab's machines, the host prepared; only `up` (box=True) builds and swaps the box."""
    machines = LabMachines(lab, on_line)
    machines.prepare(box)
    return machines


def expect_room(lab: Lab) -> None:
    """Refuse, before any VM, volume or box exists, a lab this host cannot hold."""
    from lab.adapters.host import probe_host_resources

    problems = check_capacity(lab, probe_host_resources())
    if problems:
        raise LabError(f"{lab.source}: this host cannot hold lab {lab.name}", problems)


def up(lab: Lab, args: argparse.Namespace) -> int:
    expect_room(lab)
    if getattr(args, "instance", ""):
        lab = an_instance(lab, args.instance)
    lines = NodeLines(machine_names(lab), console, lab.name)  # one live line per VM
    machines = machines_for(lab, lines, box=True)
    expect_free_libvirt_subnets(lab, machines.libvirt)  # before any VM exists
    console.print(f"bringing up {lab.name}: {', '.join(machine_names(lab))} (parallel)")
    with lines:
        seconds = machines.up()
    console.print(f"[green]{lab.name} is up[/green] in {seconds:.0f}s")
    return status(lab, args, machines)


def an_instance(lab: Lab, tag: str) -> Lab:
    """The instance `LAB-TAG` of the lab: the one recorded here, else a new one on free
    ranges (lab/model/instance.py)."""
    name = instance.instance_name(lab, tag)
    if (paths.state_dir(name) / instance.RECORD).is_file():
        return load_named(name)
    made = new_instance(lab, tag)
    console.print(
        f"instance {made.name} of {lab.name}: private {made.network.private}, management "
        f"{made.network.management}"
    )
    return made


def status(lab: Lab, args: argparse.Namespace, machines: LabMachines | None = None) -> int:
    machines = machines or machines_for(lab)
    for name, st in machines.states().items():
        print(f"{name:20} {st.state:12} {st.provider}")
    return 0


def ssh_config(lab: Lab, args: argparse.Namespace) -> int:
    print(machines_for(lab).vagrant.ssh_config_text(), end="")
    return 0


def halt(lab: Lab, args: argparse.Namespace) -> int:
    machines_for(lab).halt()
    return 0


def destroy(lab: Lab, args: argparse.Namespace) -> int:
    swept = machines_for(lab).destroy()
    console.print(f"destroyed {lab.name}; leftovers swept after vagrant destroy: {swept}")
    return 0


def sweep(lab: Lab, args: argparse.Namespace) -> int:
    if getattr(args, "pods", False):
        from e2e.fleets import sweep_pods

        gone = sweep_pods(machines_for(lab))
        console.print(f"removed the suite's pods from {lab.name}: {', '.join(gone) or 'none'}")
        return 0
    swept = machines_for(lab).sweep()
    console.print(f"swept {lab.name} ({lab.prefix}*): {swept}")
    return 0


def snapshot(lab: Lab, args: argparse.Namespace) -> int:
    if args.action in ("save", "restore", "delete") and not args.name:
        raise UsageError(f"snapshot {args.action} needs a NAME: snapshot {args.action} LAB NAME")
    machines = machines_for(lab)
    if args.action == "save":
        machines.snapshot_save(args.name)
    elif args.action == "restore":
        machines.snapshot_restore(args.name)
    elif args.action == "delete":
        machines.snapshot_delete(args.name)
    else:
        print(machines.snapshot_list(), end="")
    return 0


def ssh(lab: Lab, args: argparse.Namespace) -> int:
    """Interactive ssh (or one command) from inside the lab's namespace; to a node, or to
    the router VM of a routed underlay."""
    if args.node not in machine_names(lab):
        node_of(lab, args.node)
    machines = machines_for(lab)
    target = machines.ssh_targets().get(args.node)
    if target is None:
        raise LabStateError(f"no node {args.node!r} in the running lab {lab.name}")
    argv = ssh_argv(target, [a for a in args.remote if a != "--"])
    os.execvp(argv[0], argv)


def summary_table(lab: Lab, reports: list[NodeReport]) -> Table:
    table = Table(title=f"provisioned {lab.name}")
    for column in ("node", "already done", "changed", "commands applied", "seconds", "result"):
        table.add_column(column)
    for r in reports:
        table.add_row(
            r.node,
            str(len(r.done)),
            str(len(r.changed)),
            str(r.commands),
            f"{r.seconds:.1f}",
            "[red]failed[/red]" if r.error else "[green]ok[/green]",
        )
    return table


def provision(lab: Lab, args: argparse.Namespace) -> int:
    machines = machines_for(lab)
    start = time.monotonic()

    def progress(node: str, message: str) -> None:
        console.print(
            f"[dim]{time.monotonic() - start:6.1f}s[/dim] [bold]{node}[/bold] {message}",
            highlight=False,
            soft_wrap=True,
        )

    reports = run_provision(machines, parallel=not args.serial, progress=progress)
    console.print(summary_table(lab, reports))
    console.print(f"{sum(r.commands for r in reports)} command(s) applied")
    return 0


def expect_test_tools() -> None:
    """The nightly runs pytest with xdist: present before any VM is made, or say how."""
    missing = [m for m in ("pytest", "xdist") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"the nightly runs the suite, and {', '.join(missing)} is not installed in "
            f"{sys.prefix}: install the test tools with `scripts/setup-host --test` "
            "(or run `make nightly`, which installs them)"
        )


def nightly_cmd(lab: Lab, args: argparse.Namespace) -> int:
    expect_test_tools()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    artifacts = Path(
        args.artifacts or paths.REPO / ".artifacts" / "nightly" / f"{lab.name}-{stamp}"
    )
    history = Path(args.history or nightly.DEFAULT_HISTORY).resolve()
    expect_room(lab)
    # Ctrl-C: the nightly destroys its own instance (never a lab of the definition's name)
    result = nightly.run_nightly(lab, artifacts.resolve(), workers=args.workers, history=history)
    for s in result.report.stages:
        console.print(f"{s.name:22} {s.status:8} {s.seconds:7.1f}s  (bound {s.bound_s:.0f}s)")
    console.print(f"summary: {artifacts / 'summary.html'}", soft_wrap=True)
    print_since_green(result.since)
    console.print(f"history: {result.history / 'index.html'}", soft_wrap=True)
    code = result.report.exit_code
    console.print("[green]nightly passed[/green]" if code == 0 else "[red]nightly failed[/red]")
    if code == 0 and args.fail_on_regression and result.since.findings:
        console.print(
            f"[red]regressed since the last green run ({len(result.since.findings)} "
            "finding(s) beyond the noise band) and --fail-on-regression is set[/red]"
        )
        return 1
    return code


def print_since_green(since: SinceGreen) -> None:
    if since.green is None:
        console.print(
            f"{since.run.lab}: no green run before {since.run.run} to compare with",
            soft_wrap=True,
        )
        return
    said = f"{len(since.findings)} finding(s)" if since.findings else "nothing got worse"
    console.print(
        f"{since.run.lab}: since the last green run ({since.green.run}): {said}", soft_wrap=True
    )
    for f in since.findings:
        console.print(f"  {f.kind}: {f.subject}: {f.detail}", markup=False, soft_wrap=True)


def report_cmd(args: argparse.Namespace) -> int:
    """The history folder's index.html, built again from its records."""
    folder = Path(args.history)
    if not folder.is_dir() or not any(folder.glob("*.json")):
        raise UsageError(
            f"no nightly records in {folder}: each `make nightly` writes one there "
            f"(`--history DIR`, default {nightly.DEFAULT_HISTORY})"
        )
    index, items = nightly.write_index(folder)
    for since in items:
        print_since_green(since)
    print(index)
    return 0


def breakages_cmd(lab: Lab, args: argparse.Namespace) -> int:
    """The breakage catalogue on the running lab (or an instance of its own): inject, the
    suite, undo; the detection matrix printed and written as text, JSON and HTML."""
    from app import breakages

    expect_test_tools()
    logging.getLogger("paramiko").setLevel(logging.WARNING)  # a line per SSH connection
    artifacts = Path(args.artifacts) if args.artifacts else breakages.default_artifacts(lab)
    only = [i for i in (args.only or "").split(",") if i]
    try:
        report = breakages.run_breakages(
            lab,
            artifacts.resolve(),
            only=only,
            workers=args.workers,
            instance=args.instance,
            keep=args.keep,
            snapshot=not args.no_snapshot,
            subset=args.subset,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    from app.breakage_report import render_text

    out.print(render_text(report), markup=False, soft_wrap=True, highlight=False)
    console.print(f"matrix: {artifacts / 'breakages.txt'} (.json, .html)")
    ran = report.ran
    complete = len(ran) == len(report.outcomes)
    detected = all(o.detected or not o.detectable for o in ran)
    return 0 if complete and detected else 1


# --- the parser ----------------------------------------------------------------------------


def on_lab(verb: Verb) -> Callable[[argparse.Namespace], int]:
    """A verb of (lab, args), run on the lab file named by args.lab."""

    def handler(args: argparse.Namespace) -> int:
        return verb(load(args.lab), args)

    return handler


def add_nightly_parsers(sub: Any) -> None:
    """`nightly` and `report` (its history's index)."""
    p = sub.add_parser("nightly", help="sweep, up, provision, e2e, disruptive, artifacts, destroy")
    p.add_argument("lab")
    p.add_argument("--artifacts", help="artifacts directory (default .artifacts/nightly/...)")
    p.add_argument("--workers", type=int, default=4, help="xdist workers of the e2e pass")
    p.add_argument(
        "--history",
        help="the history folder: the run's record and index.html (default .artifacts/history)",
    )
    p.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when the run got worse than the last green run, beyond the noise band",
    )
    p.set_defaults(func=on_lab(nightly_cmd))
    p = sub.add_parser("report", help="build the nightly history's index.html (no server)")
    p.add_argument("history", help="the history folder (.artifacts/history)")
    p.set_defaults(func=report_cmd)


def add_breakages_parser(sub: Any) -> None:
    p = sub.add_parser(
        "breakages",
        help="inject each real-world breakage of the catalogue, run the suite, undo; print "
        "the detection matrix",
    )
    p.add_argument("lab")
    p.add_argument("--only", help="comma-separated breakage ids (default: every one that applies)")
    p.add_argument("--artifacts", help="artifacts directory (default .artifacts/breakages/...)")
    p.add_argument("--workers", type=int, default=4, help="xdist workers of each suite pass")
    p.add_argument(
        "--instance",
        action="store_true",
        help="bring up an instance of the lab of its own even when the lab runs",
    )
    p.add_argument("--keep", action="store_true", help="keep the instance it brought up")
    p.add_argument(
        "--no-snapshot", action="store_true", help="take no snapshot (no restore fallback)"
    )
    p.add_argument(
        "--subset",
        action="store_true",
        help="run only the test files the breakages' expectations name (faster), not all of e2e",
    )
    p.set_defaults(func=on_lab(breakages_cmd))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check lab files; print every problem")
    p.add_argument("lab", nargs="+", help="lab name (labs/NAME.yaml) or path")
    p.add_argument(
        "--no-host-check",
        action="store_true",
        help="skip the overlap check against this host's interfaces",
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "preflight", help="check this host for the lab (KVM, memory, subnets, URLs); starts nothing"
    )
    p.add_argument("lab")
    p.add_argument("--no-network", action="store_true", help="skip the URL and registry checks")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per DNS/TCP/HTTP step")
    p.set_defaults(func=preflight_cmd)

    p = sub.add_parser("render", help="write the rendered files under .lab/<lab>/")
    p.add_argument("lab")
    p.set_defaults(func=on_lab(render_cmd))

    p = sub.add_parser("box", help="build (or reuse) the lab's offline box and add it to vagrant")
    p.add_argument("lab", nargs="?", default="ci-debian12")
    p.set_defaults(func=on_lab(box))

    verbs: list[tuple[str, str, Verb]] = [
        ("up", "bring every node up in parallel (and build the box if the lab builds one)", up),
        ("status", "show each node's state", status),
        ("ssh-config", "print the lab's ssh-config (one call for all nodes)", ssh_config),
        ("halt", "shut every node down", halt),
        (
            "destroy",
            "destroy the lab (even when .vagrant/ is gone); no libvirt object is left",
            destroy,
        ),
        (
            "sweep",
            "remove every libvirt domain, volume and network of the lab (or instance) named",
            sweep,
        ),
    ]
    for name, help_text, verb in verbs:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("lab", help="a lab (labs/LAB.yaml, or a path) or an instance's name")
        if name == "up":
            p.add_argument(
                "--instance",
                metavar="TAG",
                default="",
                help="bring up the instance LAB-TAG: the lab under a name and ranges of its own",
            )
        if name == "sweep":
            p.add_argument(
                "--pods",
                action="store_true",
                help="remove the suite's pods (every run's) from the running lab instead",
            )
        p.set_defaults(func=on_lab(verb))
    p = sub.add_parser("plan", help="print each node's provisioning plan (dry run, no VM)")
    p.add_argument("lab")
    p.add_argument("--node", help="only this node")
    p.set_defaults(func=on_lab(plan))
    p = sub.add_parser("provision", help="apply the guide's steps to the running lab")
    p.add_argument("lab")
    p.add_argument("--serial", action="store_true", help="one node after another")
    p.set_defaults(func=on_lab(provision))
    add_nightly_parsers(sub)
    add_breakages_parser(sub)
    p = sub.add_parser("snapshot", help="save or restore a snapshot of every node")
    p.add_argument("action", choices=["save", "restore", "list", "delete"])
    p.add_argument("lab")
    p.add_argument("name", nargs="?", default="")
    p.set_defaults(func=on_lab(snapshot))
    p = sub.add_parser("ssh", help="open a shell (or run a command) on a node")
    p.add_argument("lab")
    p.add_argument("node")
    p.add_argument("remote", nargs=argparse.REMAINDER, help="command to run")
    p.set_defaults(func=on_lab(ssh))
    return parser


def quiet_stdout() -> None:
    """stdout's reader is gone: send what Python still flushes at exit nowhere, so no
    "Exception ignored ... BrokenPipeError" line follows."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    install_log_redaction()
    try:
        code: int = args.func(args)
        return code
    except LabError as exc:
        print_problems(exc)
        return 2
    except UsageError as exc:
        error(exc)
        return 2
    except (CommandFailed, LabStateError, WaitTimeout) as exc:
        error(exc)
        return 1
    except BrokenPipeError:  # `... | head`: the reader has what it wanted; say nothing
        quiet_stdout()
        return 0
    except OSError as exc:  # the host refused a file or a process: one line (-v: traceback)
        if args.verbose:
            raise
        where = f": {exc.filename}" if exc.filename else ""
        error(f"{exc.strerror or exc}{where} (run with -v for the traceback)")
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        return 130
