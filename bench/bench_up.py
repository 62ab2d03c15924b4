"""Wall time of `up` for the lab's nodes in parallel vs one after the other, in one run."""

from __future__ import annotations

from _common import setup, timed


def main() -> None:
    rt = setup()
    lab = rt.lab
    rt.destroy()
    parallel = timed(f"up {len(lab.nodes)} nodes in parallel", rt.up)
    rt.destroy()
    serial = timed(f"up {len(lab.nodes)} nodes one after the other", lambda: rt.up(parallel=False))
    rt.destroy()
    print(f"serial / parallel = {serial / parallel:.2f}")


if __name__ == "__main__":
    main()
