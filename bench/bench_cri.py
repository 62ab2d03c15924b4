"""What a pod made through containerd's CRI costs on the CI lab, against the CNI-direct driver's
sandboxes, on an otherwise idle lab (one call at a time): the socket forward, a pod (sandbox +
echo + client), ExecSync, a 2-pod-per-node matrix, removal. Needs a running, provisioned lab.

    .venv/bin/python bench/bench_cri.py [LAB]   (default: ci-debian12)
"""

from __future__ import annotations

import secrets
import sys
from typing import Any

from _common import prepared, timed

from e2e import scenarios
from e2e.drivers.base import PodRequest
from e2e.drivers.cni import CniDriver
from e2e.drivers.cri import CriDriver
from lab.config import Lab


def measure(name: str, driver: Any, lab: Lab, node: str, run: str) -> None:
    one = [PodRequest(f"nl-{run}-{name}-one", node, driver.fleet_containers())]
    made: list[Any] = []
    timed(f"{name}: one pod (echo + client)", lambda: made.extend(driver.create_pods(one)))
    pod = made[0]
    argv = ("ip", "-o", "-4", "addr", "show")
    timed(
        f"{name}: exec `ip -o -4 addr show`", lambda: driver.exec(pod, driver.client_of(pod), argv)
    )
    timed(f"{name}: remove one pod", lambda: driver.delete_pods([pod]))
    requests = scenarios.fleet_requests(driver, run, scenarios.fleet_slots(lab, 2))
    fleet: list[Any] = []
    timed(
        f"{name}: fleet of {len(requests)} pods (nodes in parallel)",
        lambda: fleet.extend(driver.create_pods(requests)),
    )
    cells = len(fleet) * (len(fleet) - 1)
    timed(f"{name}: pod matrix ({cells} cells)", lambda: scenarios.pod_matrix(driver, fleet))
    timed(f"{name}: remove the fleet", lambda: driver.delete_pods(fleet))


def main() -> int:
    lab_name = sys.argv[1] if len(sys.argv) > 1 else "ci-debian12"
    machines = prepared(lab_name)
    lab = machines.lab
    run = "b" + secrets.token_hex(3)
    cri = CriDriver(lab, machines.channels(), run)
    cni = CniDriver(lab, machines.channels())
    node = lab.node_names[0]
    try:
        timed("cri: forward + connect + NetworkReady", lambda: cri.cri(node))
        measure("cri", cri, lab, node, run)
        measure("cni", cni, lab, node, run)
    finally:
        cri.close()
        machines.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
