"""Golden files: compare with the stored text; `NETLAB_UPDATE_GOLDEN=1` rewrites them, shows
the difference (as a warning, which pytest prints in its summary, xdist workers included) and
is refused on CI (`CI` set, or under `.ci/run`), where a golden file must never move."""

from __future__ import annotations

import difflib
import os
import warnings
from pathlib import Path

UPDATE = "NETLAB_UPDATE_GOLDEN"


class GoldenUpdated(UserWarning):
    """A golden file was rewritten; the message is its unified diff."""


class GoldenUpdateRefused(RuntimeError):
    pass


def on_ci(environ: dict[str, str] | None = None) -> str:
    """Why this looks like CI ("" when it does not)."""
    env = os.environ if environ is None else environ
    if env.get("NETLAB_CI_RUN"):
        return "running under .ci/run (NETLAB_CI_RUN is set)"
    if env.get("CI", "").lower() not in ("", "0", "false", "no"):
        return f"CI={env['CI']!r}"
    return ""


def golden_text(path: Path, actual: str, environ: dict[str, str] | None = None) -> str:
    """The stored golden text of `path`, after rewriting it to `actual` when asked to."""
    env = os.environ if environ is None else environ
    if env.get(UPDATE):
        why = on_ci(dict(env))
        if why:
            raise GoldenUpdateRefused(
                f"{UPDATE} is set but {why}: golden files are never rewritten on CI; "
                "update them on a workstation and commit the diff"
            )
        old = path.read_text() if path.exists() else ""
        if old != actual:
            diff = "".join(
                difflib.unified_diff(
                    old.splitlines(keepends=True),
                    actual.splitlines(keepends=True),
                    f"a/{path.name}",
                    f"b/{path.name}",
                )
            )
            path.write_text(actual)
            warnings.warn(GoldenUpdated(f"rewrote {path}:\n{diff}"), stacklevel=2)
    return path.read_text()
