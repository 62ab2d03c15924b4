"""`python -m lab ...`: the command line. Errors are messages, not tracebacks."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from rich.console import Console

from lab import paths
from lab.config import Lab, LabError
from lab.errors import CommandFailed, LabStateError
from lab.labfile import load_lab
from lab.waits import WaitTimeout

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def load(name: str, host_check: bool = True) -> Lab:
    from lab.adapters.host import probe_host_networks

    host_networks = probe_host_networks() if host_check else ()
    return load_lab(paths.resolve_lab_path(name), host_networks)


def cmd_validate(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.lab:
        try:
            lab = load(name, host_check=not args.no_host_check)
        except LabError as exc:
            failed += 1
            console.print(f"[red]{exc.source}: {len(exc.problems)} problem(s)[/red]")
            for problem in exc.problems:
                console.print(f"  - {problem}", markup=False, soft_wrap=True)
            continue
        out.print(f"{lab.source}: ok ({len(lab.nodes)} nodes: {', '.join(lab.node_names)})")
    return 2 if failed else 0


def cmd_render(args: argparse.Namespace) -> int:
    from lab import lifecycle

    lab = load(args.lab)
    written = lifecycle.render(lab)
    for path in written:
        out.print(str(path))
    return 0


def _verb(module: str, fn_name: str) -> Callable[[argparse.Namespace], int]:
    """A verb taking (lab, args); its module is imported only when the verb runs."""

    def handler(args: argparse.Namespace) -> int:
        lab = load(args.lab)
        result: int = getattr(importlib.import_module(module), fn_name)(lab, args)
        return result

    return handler


def _lab_cmd(fn_name: str) -> Callable[[argparse.Namespace], int]:
    return _verb("lab.lifecycle", fn_name)


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

    p = sub.add_parser("render", help="write the rendered files under .lab/<lab>/")
    p.add_argument("lab")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("box", help="build (or reuse) the lab's offline box and add it to vagrant")
    p.add_argument("lab", nargs="?", default="ci-debian12")
    p.set_defaults(func=_lab_cmd("box"))

    for name, help_text in [
        ("up", "bring every node up in parallel (and build the box if the lab builds one)"),
        ("status", "show each node's state"),
        ("ssh-config", "print the lab's ssh-config (one call for all nodes)"),
        ("halt", "shut every node down"),
        ("destroy", "destroy the lab, even when .vagrant/ is gone; leaves no libvirt objects"),
        ("sweep", "remove every libvirt domain, volume and network carrying the lab's prefix"),
    ]:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("lab")
        p.set_defaults(func=_lab_cmd(name.replace("-", "_")))
    p = sub.add_parser("plan", help="print each node's provisioning plan (dry run, no VM)")
    p.add_argument("lab")
    p.add_argument("--node", help="only this node")
    p.set_defaults(func=_verb("provision.cli", "plan"))
    p = sub.add_parser("provision", help="apply the guide's steps to the running lab")
    p.add_argument("lab")
    p.add_argument("--serial", action="store_true", help="one node after another")
    p.set_defaults(func=_verb("provision.cli", "provision_cmd"))
    p = sub.add_parser("nightly", help="sweep, up, provision, e2e, disruptive, artifacts, destroy")
    p.add_argument("lab")
    p.add_argument("--artifacts", help="artifacts directory (default .artifacts/nightly/...)")
    p.add_argument("--workers", type=int, default=4, help="xdist workers of the e2e pass")
    p.set_defaults(func=_verb("e2e.nightly", "nightly_cmd"))
    p = sub.add_parser("snapshot", help="save or restore a snapshot of every node")
    p.add_argument("action", choices=["save", "restore", "list", "delete"])
    p.add_argument("lab")
    p.add_argument("name", nargs="?", default="")
    p.set_defaults(func=_lab_cmd("snapshot"))
    p = sub.add_parser("ssh", help="open a shell (or run a command) on a node")
    p.add_argument("lab")
    p.add_argument("node")
    p.add_argument("remote", nargs=argparse.REMAINDER, help="command to run")
    p.set_defaults(func=_lab_cmd("ssh"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        code: int = args.func(args)
        return code
    except LabError as exc:
        console.print(f"[red]{exc.source}: {len(exc.problems)} problem(s)[/red]")
        for problem in exc.problems:
            console.print(f"  - {problem}", markup=False, soft_wrap=True)
        return 2
    except (CommandFailed, LabStateError, WaitTimeout) as exc:
        console.print(f"[red]error:[/red] {exc}", markup=True, soft_wrap=True)
        return 1
    except BrokenPipeError:  # `... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
