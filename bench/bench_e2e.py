"""Wall time of the e2e suite with `-n 4` vs `-n 0` on the same running, provisioned lab."""

from __future__ import annotations

import subprocess
import sys

from _common import setup, timed

from lab import paths
from provision.run import run_provision


def suite(lab: str, workers: int) -> None:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "e2e",
        "--lab",
        lab,
        "--lab-mode",
        "attach",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        str(workers),
    ]
    subprocess.run(argv, cwd=paths.REPO, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    rt = setup()
    lab = rt.lab
    created = not rt.states() or any(s.state != "running" for s in rt.states().values())
    if created:
        rt.up()
    run_provision(rt)
    try:
        serial = timed("pytest e2e -n 0", lambda: suite(lab.name, 0))
        parallel = timed("pytest e2e -n 4", lambda: suite(lab.name, 4))
    finally:
        if created:
            rt.destroy()
    print(f"(-n 0) / (-n 4) = {serial / parallel:.2f}")


if __name__ == "__main__":
    main()
