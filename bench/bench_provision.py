"""Wall time of provisioning every node in parallel vs one after the other, in one run; each
from the same freshly booted state (a snapshot taken before the first run)."""

from __future__ import annotations

from _common import setup, timed

from provision.run import run_provision

SNAPSHOT = "bench-fresh"


def main() -> None:
    rt = setup()
    rt.destroy()
    rt.up()
    rt.snapshot_save(SNAPSHOT)
    try:
        parallel = timed("provision, nodes in parallel", lambda: run_provision(rt, parallel=True))
        rt.snapshot_restore(SNAPSHOT)
        serial = timed(
            "provision, one node after the other",
            lambda: run_provision(rt, parallel=False),
        )
    finally:
        rt.destroy()
    print(f"serial / parallel = {serial / parallel:.2f}")


if __name__ == "__main__":
    main()
