"""Wall time of provisioning every node in parallel vs one after the other, in one run; each
from the same freshly booted state (a snapshot taken before the first run)."""

from __future__ import annotations

from _common import setup, timed

from provision.run import run_provision

SNAPSHOT = "bench-fresh"


def main() -> None:
    machines = setup()
    machines.destroy()
    machines.up()
    machines.snapshot_save(SNAPSHOT)
    try:
        parallel = timed(
            "provision, nodes in parallel", lambda: run_provision(machines, parallel=True)
        )
        machines.snapshot_restore(SNAPSHOT)
        serial = timed(
            "provision, one node after the other",
            lambda: run_provision(machines, parallel=False),
        )
    finally:
        machines.destroy()
    print(f"serial / parallel = {serial / parallel:.2f}")


if __name__ == "__main__":
    main()
