"""The overlay's cost, in one run on both CI labs: TCP throughput (iperf3) and request/response
latency (400 one-byte round trips on one connection: p50/p90/p99) for node -> node, pod -> pod
on another node and pod -> pod on the same node; printed as a table, then the ratios (pod /
node per backend, vxlan / host-gw on one segment, vxlan / bgp across a router). Each lab is
brought up and provisioned if it is not running, and destroyed again if this run created it.

    .venv/bin/python bench/bench_overlay.py [LAB ...]   (default: ci-debian12 ci-debian12-vxlan)
    .venv/bin/python bench/bench_overlay.py --routed    (the routed underlay: VXLAN vs BGP)
"""

from __future__ import annotations

import secrets
import sys
import time
from functools import partial
from pathlib import Path

from _common import prepared, timed

from e2e import perf
from e2e.drivers.cni import CniDriver
from lab.model import paths
from provision.run import run_provision

LABS = ("ci-debian12", "ci-debian12-vxlan")
ROUTED = ("ci-debian12-routed-vxlan", "ci-debian12-routed-bgp")


def main() -> None:
    args = sys.argv[1:]
    labs = list(ROUTED) if args == ["--routed"] else args or list(LABS)
    costs: list[perf.PathCost] = []
    run_id = "b" + secrets.token_hex(3)
    for name in labs:
        machines = prepared(name)
        states = machines.states()
        created = not states or any(s.state != "running" for s in states.values())
        try:
            if created:
                timed(f"{name}: up", machines.up)
            timed(f"{name}: provision", partial(run_provision, machines))
            driver = CniDriver(machines.lab, machines.channels())
            start = time.monotonic()
            measured = perf.measure(driver, machines.lab, run_id)
            print(f"{name + ': measure':44} {time.monotonic() - start:8.1f} s", flush=True)
            costs += measured
        finally:
            if created:
                machines.destroy()
    table = perf.render_table(costs)
    out = paths.REPO / ".artifacts" / "bench" / "overlay.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    Path(out.with_suffix(".json")).write_text(perf.to_json(costs))
    print(table, end="")
    problems = perf.stop_reason(costs)
    if problems:
        print("\n".join(["failed measurements:", *problems]))
        sys.exit(1)


if __name__ == "__main__":
    main()
