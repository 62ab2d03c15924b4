"""What a pod made through containerd's CRI costs on the CI lab, against the CNI-direct driver's
sandboxes, on an otherwise idle lab (one call at a time): the socket forward, a pod (sandbox +
echo + client), ExecSync, a one-cell probe from a container (the probe agent in python3 against
the cell's own client command), a 2-pod-per-node matrix, removal. Needs a running, provisioned
lab.

    .venv/bin/python bench/bench_cri.py [LAB]   (default: ci-debian12)
"""

from __future__ import annotations

import secrets
import statistics
import sys
from typing import Any

from _common import prepared, timed

from e2e import probes, scenarios
from e2e.drivers.base import Pod, PodRequest
from e2e.drivers.cni import CniDriver, client_probe
from e2e.drivers.cri import ECHO_PORT, CriDriver, CriHandle, agent_argv
from lab.model.config import Lab


def measure(name: str, driver: Any, lab: Lab, node: str, run: str) -> None:
    one = [PodRequest(f"nl-{run}-{name}-one", node, driver.fleet_containers())]
    made: list[Any] = []
    timed(f"{name}: one pod (echo + client)", lambda: made.extend(driver.create_pods(one)))
    pod = made[0]
    argv = ("ip", "-o", "-4", "addr", "show")
    timed(
        f"{name}: exec `ip -o -4 addr show`", lambda: driver.exec(pod, driver.client_of(pod), argv)
    )
    if isinstance(driver, CriDriver):
        one_cell_probe(driver, pod)
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


def one_cell_probe(driver: CriDriver, pod: Pod[CriHandle], rounds: int = 3) -> None:
    """The pod probes its own echo server from its client container, alternated: the probe
    agent (python3 -c, as for several cells) against the cell's client command (socat)."""
    cid = pod.handle.container_ids[driver.client_of(pod)]
    cell = probes.Cell("self", str(pod.ip), ECHO_PORT)
    variants = {
        "agent (python3)": agent_argv(probes.probe_request([cell])),
        "client command (socat)": client_probe(str(pod.ip), ECHO_PORT),
    }
    took: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for what, argv in variants.items():

            def probe(argv: tuple[str, ...] = argv, what: str = what) -> None:
                result = driver.exec_sync(pod.node, cid, argv, 60)
                if not result.ok:
                    raise SystemExit(f"{what} failed: {result.stderr or result.stdout}")

            took[what].append(timed(f"cri: one-cell probe, {what}", probe))
    agent, client = (statistics.median(t) for t in took.values())
    print(f"cri: one-cell probe, agent / client command = {agent / client:.2f} (medians)")


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
