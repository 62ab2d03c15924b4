"""The printed plan (provision.steps.render_plan), to the letter: a step a fresh node already
has says so, and a command's own secrets are masked even where no redaction rule knows them."""

from __future__ import annotations

from pathlib import Path

from lab.common.commands import Command
from lab.model.labfile import load_lab
from provision.model import AnyStep
from provision.steps import PlannedStep, render_plan, steps_for
from tests.fakes import TEST_IMAGES

ROOT = Path(__file__).resolve().parents[2]
LAB = load_lab(ROOT / "labs" / "ci-debian12.yaml")


def hostname() -> AnyStep:
    """The guide's hostname step, built in the test: mutmut's workers fork after import,
    and a step built at import keeps the original code in its lambdas."""
    return {s.key: s for s in steps_for(LAB, images=TEST_IMAGES)}["hostname"]


TITLE = "## step 7 'hostname' -- 准备工作 / 修改主机名 (DNS-1123, no underscores)"


def test_a_step_with_nothing_to_do_says_it_is_already_done() -> None:
    node = LAB.node("node1")
    assert render_plan(node, [PlannedStep(hostname(), ())]) == (
        f"# node1 (worker, 10.10.40.241)\n{TITLE}\n   (already done on a fresh node)\n"
    )


def test_a_commands_own_secret_is_masked_in_the_plan() -> None:
    # `--user admin:PASSWORD` for ctr is in no rule of the table: only the command's secrets
    pull = Command(
        ("ctr", "images", "pull", "--user", "admin:Hx9q2Lm", "registry.local/pause:3.9"),
        secrets=("Hx9q2Lm",),
    )
    node = LAB.node("node1")
    assert render_plan(node, [PlannedStep(hostname(), (pull,))]) == (
        f"# node1 (worker, 10.10.40.241)\n{TITLE}\n"
        "   sudo -n ctr images pull --user admin:<redacted> registry.local/pause:3.9\n"
    )
