"""`python -m lab plan|provision`: the dry-run plan and the real run, with a summary."""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from lab.config import Lab
from lab.errors import LabStateError
from lab.lifecycle import Runtime, flannel_upstream
from provision.apply import NodeReport, provision
from provision.steps import dry_run, render_plan, steps_for

console = Console(stderr=True, highlight=False)


def plan(lab: Lab, args: argparse.Namespace) -> int:
    steps = steps_for(lab, flannel_upstream(lab))
    nodes = [lab.node(args.node)] if args.node else list(lab.nodes)
    for node in nodes:
        print(render_plan(node, dry_run(lab, node, steps)))
    return 0


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


def run_provision(rt: Runtime, parallel: bool = True, quiet: bool = False) -> list[NodeReport]:
    """Provision a running lab; raise LabStateError naming every failed node."""
    lab = rt.lab
    rt.expect_running()
    start = time.monotonic()

    def progress(node: str, message: str) -> None:
        if not quiet:
            console.print(
                f"[dim]{time.monotonic() - start:6.1f}s[/dim] [bold]{node}[/bold] {message}",
                highlight=False,
                soft_wrap=True,
            )

    reports = provision(lab, rt.nodes(), steps_for(lab, flannel_upstream(lab)), progress, parallel)
    if not quiet:
        console.print(summary_table(lab, reports))
    failed = [r for r in reports if r.error]
    if failed:
        raise LabStateError(
            f"provisioning failed on {len(failed)} node(s) (logs: {rt.logs}/<node>.log):\n"
            + "\n".join(f"- {r.error}" for r in failed)
        )
    return reports


def provision_cmd(lab: Lab, args: argparse.Namespace) -> int:
    rt = Runtime(lab)
    rt.prepare()
    reports = run_provision(rt, parallel=not getattr(args, "serial", False))
    total = sum(r.commands for r in reports)
    console.print(f"{total} command(s) applied")
    return 0
