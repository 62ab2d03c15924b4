"""What the pod network costs (the overlay's price), measured on the lab's own VMs: TCP
throughput (iperf3) and request/response latency (one connection, many 1-byte round trips,
percentiles) for node -> node, pod -> pod on another node and pod -> pod on the same node.

Under QEMU TCG every packet is emulated, so absolute numbers are far below real hardware; the
ratios measured in one run (pod / node, vxlan / host-gw on one segment, vxlan / bgp across a
router) are what carry over.
Parsing and the table are pure; `measure` drives the lab through a CNI-direct driver."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from e2e.drivers.base import Container, ExecResult, PodRequest
from e2e.drivers.cni import CniDriver, CniPod
from lab.model.config import Lab
from lab.podnet import backend_of

IPERF_PORT = 5201
RR_PORT = 7007
RR_ROUNDS = 400
IPERF_SECONDS = 5

# one connection, RR_ROUNDS 1-byte round trips, the microseconds of each (python3 on the node)
RR_CLIENT = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
out = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter(); s.sendall(b"x"); s.recv(1); out.append((time.perf_counter() - t) * 1e6)
print(" ".join("%.1f" % v for v in out))
"""


@dataclass(frozen=True)
class PathCost:
    lab: str
    backend: str  # host-gw | vxlan
    path: str  # node->node | pod->pod (other node) | pod->pod (same node)
    mbit_s: float | None
    p50_us: float | None
    p90_us: float | None
    p99_us: float | None
    error: str = ""
    # the node network under it: "flat" (one layer-2 segment) or "routed" (a router between
    # the nodes' segments); ratios compare backends measured on the same underlay
    underlay: str = "flat"


def parse_iperf3(text: str) -> float | None:
    """Mbit/s the receiver got, from `iperf3 -J` (None when the run failed)."""
    try:
        data = json.loads(text)
        bits = data["end"]["sum_received"]["bits_per_second"]
    except (ValueError, KeyError, TypeError):
        return None
    return round(float(bits) / 1e6, 1)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def parse_rr(text: str) -> tuple[float, float, float] | None:
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        return None
    if not values:
        return None
    return percentile(values, 50), percentile(values, 90), percentile(values, 99)


def backend(lab: Lab) -> str:
    """How packets cross nodes on the lab ("host-gw", "vxlan", ...), as its backend says."""
    return backend_of(lab).dataplane(lab)


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def render_table(costs: Sequence[PathCost]) -> str:
    """The measurements, then the ratios that carry over: pod / node per backend, and
    vxlan / host-gw for the same path when both backends were measured."""
    lines = [
        "| lab (backend) | path | TCP Mbit/s | RR p50 us | RR p90 us | RR p99 us |",
        "|---|---|---|---|---|---|",
    ]
    for c in costs:
        cells = [c.mbit_s, c.p50_us, c.p90_us, c.p99_us]
        shown = ["-" if v is None else f"{v:.1f}" for v in cells]
        lines.append(f"| {c.lab} ({c.backend}) | {c.path} | {' | '.join(shown)} |")
    lines += ["", "| ratio | throughput | p50 latency | p99 latency |", "|---|---|---|---|"]
    for underlay in sorted({c.underlay for c in costs}):
        lines += _ratios([c for c in costs if c.underlay == underlay], underlay, len(costs))
    return "\n".join(lines) + "\n"


ROUTING = ("host-gw", "bgp")  # the routing family's data planes, each compared with vxlan


def _ratios(costs: Sequence[PathCost], underlay: str, everything: int) -> list[str]:
    """pod / node per backend, and vxlan / each routing backend per path, on one underlay
    (named in the row when the run measured more than one)."""
    where = "" if len(costs) == everything else f" ({underlay})"
    lines = []
    by = {(c.backend, c.path): c for c in costs}
    for b in sorted({c.backend for c in costs}):
        node = by.get((b, "node->node"))
        for path in ("pod->pod (other node)", "pod->pod (same node)"):
            pod = by.get((b, path))
            if node and pod:
                lines.append(
                    f"| {b}{where}: {path} / node->node | {ratio(pod.mbit_s, node.mbit_s)} | "
                    f"{ratio(pod.p50_us, node.p50_us)} | {ratio(pod.p99_us, node.p99_us)} |"
                )
    for routing in ROUTING:
        for path in ("node->node", "pod->pod (other node)", "pod->pod (same node)"):
            vx, rt = by.get(("vxlan", path)), by.get((routing, path))
            if vx and rt:
                lines.append(
                    f"| {path}{where}: vxlan / {routing} | {ratio(vx.mbit_s, rt.mbit_s)} | "
                    f"{ratio(vx.p50_us, rt.p50_us)} | {ratio(vx.p99_us, rt.p99_us)} |"
                )
    return lines


def to_json(costs: Sequence[PathCost]) -> str:
    return json.dumps([asdict(c) for c in costs], indent=1)


def from_json(text: str) -> list[PathCost]:
    return [PathCost(**c) for c in json.loads(text)]


# --- measuring (side effects through the driver) ------------------------------------------


def servers() -> tuple[Container, ...]:
    return (
        Container("iperf", ("iperf3", "-s", "-p", str(IPERF_PORT))),
        Container("rr", ("socat", f"TCP-LISTEN:{RR_PORT},fork,reuseaddr", "EXEC:cat")),
    )


def _client(
    driver: CniDriver, source: CniPod | str, argv: tuple[str, ...], timeout: float
) -> ExecResult:
    if isinstance(source, str):
        return driver.exec_on_node(source, argv, timeout)
    return driver.netns_exec(source, argv, timeout)


def _measure_path(
    driver: CniDriver, lab: Lab, name: str, source: CniPod | str, target_ip: str
) -> PathCost:
    iperf = _client(
        driver,
        source,
        ("iperf3", "-c", target_ip, "-p", str(IPERF_PORT), "-t", str(IPERF_SECONDS), "-J"),
        IPERF_SECONDS + 60,
    )
    rr = _client(
        driver,
        source,
        ("python3", "-c", RR_CLIENT, target_ip, str(RR_PORT), str(RR_ROUNDS)),
        120,
    )
    mbit = parse_iperf3(iperf.stdout)
    lat = parse_rr(rr.stdout) if rr.ok else None
    error = ""
    if mbit is None:
        error += f"iperf3 failed ({iperf.reproduce}) "
    if lat is None:
        error += f"round trips failed ({rr.reproduce})"
    p50, p90, p99 = lat if lat else (None, None, None)
    underlay = "routed" if lab.network.routed else "flat"
    return PathCost(lab.name, backend(lab), name, mbit, p50, p90, p99, error.strip(), underlay)


def measure(driver: CniDriver, lab: Lab, run_id: str) -> list[PathCost]:
    """Three pods (two on the first node, one on the second) and node-level servers on the
    second node; each path measured one after the other (never two at once)."""
    first, second = sorted(lab.node_names)[:2]
    pods = driver.create_pods(
        [
            PodRequest(f"nl-{run_id}-perf-a", first, servers()),
            PodRequest(f"nl-{run_id}-perf-b", first, servers()),
            PodRequest(f"nl-{run_id}-perf-c", second, servers()),
        ]
    )
    a, b, c = pods
    unit = f"nl-{run_id}-perf-node"
    node_servers = tuple(
        ("systemd-run", f"--unit={unit}-{s.name}", "--collect", "--quiet", *s.argv)
        for s in servers()
    )
    try:
        for argv in node_servers:
            driver.exec_on_node(second, argv)
        costs = [
            _measure_path(driver, lab, "node->node", first, str(lab.node(second).ip)),
            _measure_path(driver, lab, "pod->pod (other node)", a, str(c.ip)),
            _measure_path(driver, lab, "pod->pod (same node)", a, str(b.ip)),
        ]
    finally:
        driver.exec_on_node(second, ("systemctl", "stop", f"{unit}-*.service"))
        driver.delete_pods(pods)
    return costs


def stop_reason(costs: Sequence[PathCost]) -> list[str]:
    return [f"{c.lab} {c.path}: {c.error}" for c in costs if c.error]
