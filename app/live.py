"""`vagrant up` on the terminal: one live line per node (phase, seconds), drawn with rich,
instead of vagrant's stream; the stream itself goes whole to the vagrant log.

A `NodeLines` is the `on_line` of the lab's vagrant (lab/adapters/vagrant.py). It shows lines
only inside `with lines:` (around `up`); outside, vagrant's other verbs print nothing here, as
before. On a terminal the lines redraw in place; elsewhere (a CI log, a pipe) each change of a
node's phase is one printed line."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from lab.hosts.vagrant_up import NodeLine, fold_up, parse_up_line, render_up_line, start_lines


class NodeLines:
    def __init__(self, nodes: Sequence[str], console: Console, label: str) -> None:
        self.nodes = tuple(nodes)
        self.console = console
        self.label = label
        self.width = max((len(n) for n in nodes), default=0)
        self.lines: dict[str, NodeLine] = {}
        self.active = False
        self.start = 0.0
        self.lock = threading.Lock()
        self.live: Live | None = None

    def __enter__(self) -> NodeLines:
        self.start = time.monotonic()
        self.lines = start_lines(self.nodes, self.start)
        self.active = True
        if self.console.is_terminal:
            self.live = Live(self, console=self.console, refresh_per_second=4)
            self.live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.active = False
        if self.live is not None:
            self.live.stop()  # the last drawing stays on the screen
            self.live = None

    def __call__(self, line: str) -> None:
        if not self.active:
            return
        event = parse_up_line(line)
        if event is None:
            return
        now = time.monotonic()
        with self.lock:
            self.lines, changed = fold_up(self.lines, event, now)
            width = max(self.width, *(len(n) for n in self.lines))
            shown = render_up_line(self.lines[event.node], now, width, seconds=False)
        if changed and self.live is None:
            self.console.print(
                Text.assemble((f"{now - self.start:6.1f}s ", "dim"), f"{self.label} {shown}"),
                highlight=False,
                soft_wrap=True,
            )

    def __rich__(self) -> Group:
        now = time.monotonic()
        with self.lock:
            lines = list(self.lines.values())
        width = max((len(n.node) for n in lines), default=0)
        return Group(
            *(
                Text.assemble(
                    (f"{self.label} ", "dim"),
                    (render_up_line(n, now, width), "green" if n.done_at is not None else ""),
                )
                for n in lines
            )
        )
