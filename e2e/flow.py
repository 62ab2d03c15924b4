"""The guide's pod network creation flow, checked step by step on pods a real runtime made:
kubelet asks the runtime for a sandbox, whose infra (pause) process holds the pod's new network
namespace; the runtime calls CNI ADD, which configures it; the pod's other containers join that
namespace; StopPodSandbox calls CNI DEL (the IPAM lease and the host's veth go) and
RemovePodSandbox leaves nothing behind.

Like e2e/scenarios.py: each function observes (the runtime's own answers, the node's kernel) and
returns problems, each with the command that shows it again; it never asserts. The breakage
tests (tests/integration/test_8_cri_flow_catches_breakage.py) feed them broken pods.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from e2e import scenarios
from e2e.drivers.base import Probe
from e2e.drivers.cri import SOCKET, CriDriver, CriPod
from lab.adapters.cri import CriError
from lab.common import waits
from lab.common.commands import Command, cmd, render_remote
from lab.runtime import containerd
from lab.runtime.cri import messages
from lab.runtime.cri import runtime_v1_pb2 as pb

IPAM_DIR = "/var/lib/cni/networks"  # host-local's default dataDir: <dir>/<network>/<ip>
INFRA_NOTICED = waits.Policy(
    "the runtime reports the sandbox NOTREADY after its infra process died",
    timeout_s=60,
    interval_s=0.25,  # a status call answered from the runtime's memory: cheap to repeat
)


def _node_reproduce(driver: CriDriver, node: str, argv: Sequence[str]) -> str:
    return driver.runner.channels[node].reproduce(render_remote(Command(tuple(argv))))


# --- 0. the runtime says who it is -----------------------------------------------------------


def upstream_version(version: str) -> str:
    """A runtime's version as its upstream numbers it: containerd's own builds say "v1.6.20",
    Debian's package "1.6.20~ds1", a build without a version "1.6.20+unknown": "1.6.20"."""
    return re.split(r"[~+-]", version.removeprefix("v"))[0]


def runtime_identity_problems(
    node: str, answer: pb.VersionResponse, name: str, pinned: str | None, reproduce: str
) -> list[str]:
    """The CRI Version() answer against what the lab installs: the runtime's name (the lab's
    `runtime`), the CRI API the suite speaks, and its version where the lab's OS profile pins
    one (`pinned`, its upstream number; None: the lab says nothing)."""
    said = (
        f"{answer.runtime_name!r} {answer.runtime_version!r} (CRI {answer.runtime_api_version!r})"
    )
    problems = []
    if answer.runtime_name != name:
        problems.append(f"the runtime on the CRI socket says it is {said}; the lab installs {name}")
    if answer.runtime_api_version != messages.API_VERSION:
        problems.append(
            f"the runtime speaks CRI {answer.runtime_api_version!r}, not the suite's "
            f"{messages.API_VERSION!r}: {said}"
        )
    if pinned is not None and upstream_version(answer.runtime_version) != pinned:
        problems.append(f"the runtime is version {answer.runtime_version!r}; the lab pins {pinned}")
    return [f"{node}: {p}\n    reproduce: {reproduce}" for p in problems]


def version_reproduce(driver: CriDriver, node: str) -> str:
    """`ctr version` on the node: the client's and the daemon's version, as the runtime says."""
    return _node_reproduce(driver, node, containerd.ctr_argv(SOCKET, "version"))


# --- 1. the infra process holds the namespace; every container joins it ---------------------


@dataclass(frozen=True)
class NamespaceView:
    pinned: str  # the sandbox's pinned netns (`net:[inode]` of /var/run/netns/cni-...)
    infra: str  # /proc/<infra pid>/ns/net
    infra_cmdline: str
    containers: dict[str, tuple[int, str]]  # name -> (pid, /proc/<pid>/ns/net)
    reproduce: str


def namespace_view(
    driver: CriDriver, pod: CriPod
) -> NamespaceView:  # pragma: no mutate block (I/O)
    """The runtime's answer (verbose PodSandboxStatus and ContainerStatus: the PIDs and the
    pinned netns), then the node's kernel, in one round trip: which namespace each holds."""
    runtime = driver.cri(pod.node)
    sandbox = messages.parse_verbose_info(
        runtime.pod_sandbox_status(pod.handle.sandbox_id, verbose=True).info
    )
    pids = {
        name: messages.parse_verbose_info(runtime.container_status(cid, verbose=True).info).pid
        for name, cid in pod.handle.container_ids.items()
    }
    reads = [
        cmd("stat", "-L", "-c", "net:[%i]", sandbox.netns_path),
        cmd("readlink", f"/proc/{sandbox.pid}/ns/net"),
        cmd("sh", "-c", f"tr '\\0' ' ' < /proc/{sandbox.pid}/cmdline"),
        *(cmd("readlink", f"/proc/{pid}/ns/net") for pid in pids.values()),
    ]
    out = driver.runner.probe(pod.node, *reads)
    text = [o.stdout.strip() if o.ok else f"(unreadable, exit {o.exit_code})" for o in out]
    reproduce = _node_reproduce(
        driver,
        pod.node,
        ("sh", "-c", " ; ".join(render_remote(c).removeprefix("sudo -n ") for c in reads)),
    )
    return NamespaceView(
        text[0],
        text[1],
        text[2],
        {name: (pid, text[3 + i]) for i, (name, pid) in enumerate(pids.items())},
        reproduce,
    )


def shared_namespace_problems(view: NamespaceView) -> list[str]:
    problems = []
    if not view.pinned.startswith("net:["):
        problems.append(f"the sandbox's pinned network namespace is {view.pinned}")
    if view.infra != view.pinned:
        problems.append(
            f"the infra process ({view.infra_cmdline.strip()}) is in {view.infra}, not the "
            f"sandbox's network namespace {view.pinned}"
        )
    for name, (pid, netns) in sorted(view.containers.items()):
        if netns != view.pinned:
            problems.append(
                f"container {name} (pid {pid}) is in {netns}, not the pod's network namespace "
                f"{view.pinned} held by the infra process"
            )
    if problems:
        problems.append(f"reproduce: {view.reproduce}")
    return problems


# --- 2. one IP: the runtime's status == its CNI result == the pod's view == what peers see ---


@dataclass(frozen=True)
class IpViews:
    """A pod's IPv4 address as each party sees it."""

    status: list[str]  # PodSandboxStatus
    cni: list[str]  # the runtime's cached CNI result
    own: list[str]  # the pod's own interfaces
    seen: list[str]  # the source the peer's echo server saw
    peer: str
    own_reproduce: str
    seen_reproduce: str


def ip_views(
    driver: CriDriver, pod: CriPod, peer: CriPod
) -> IpViews:  # pragma: no mutate block (I/O)
    runtime = driver.cri(pod.node)
    response = runtime.pod_sandbox_status(pod.handle.sandbox_id, verbose=True)
    info = messages.parse_verbose_info(response.info)
    cni = messages.cni_result_pod_ips(info.cni_result) if info.cni_result else {}
    own = scenarios.pod_addresses(driver, pod, driver.client_of(pod))
    (seen,) = driver.probing_from_containers().observe([Probe("flow-ip", pod, peer)]).values()
    return IpViews(
        [str(ip) for ip in messages.sandbox_ips(response.status)],
        [ip for ips in cni.values() for ip in ips],
        [str(a) for a in own.all],
        [seen.seen_source] if seen.seen_source else [],
        peer.name,
        own.reproduce,
        seen.reproduce,
    )


def ip_views_problems(views: IpViews) -> list[str]:
    """The runtime's status names one address, and every other view is exactly it."""
    problems = []
    if len(views.status) != 1:
        problems.append(f"PodSandboxStatus reports {views.status}; one IPv4 address expected")
    want = views.status[:1]
    for what, ips in (
        ("PodSandboxStatus", views.status),
        ("the runtime's cached CNI result", views.cni),
        ("the pod's own interfaces", views.own),
        (f"the source {views.peer}'s echo server saw", views.seen),
    ):
        if ips != want:
            problems.append(f"{what}: {ips or '(nothing)'}, PodSandboxStatus: {want}")
    if problems:
        problems.append(f"the pod's view: {views.own_reproduce}")
        problems.append(f"the peer's view: {views.seen_reproduce}")
    return problems


def ip_agreement_problems(
    driver: CriDriver, pod: CriPod, peer: CriPod
) -> list[str]:  # pragma: no mutate block (I/O)
    return ip_views_problems(ip_views(driver, pod, peer))


# --- 3. StopPodSandbox releases; RemovePodSandbox leaves nothing --------------------------


@dataclass(frozen=True)
class Traces:
    """What a pod leaves on its node: its IPAM lease, its host-side veth, its netns."""

    lease: bool
    veth: bool
    netns: bool
    reproduce: str


def host_veths(cni_result: dict[str, object] | None) -> list[str]:
    """The host side of the pod's veth pair from the runtime's CNI result (an interface
    without a sandbox, not the bridge)."""
    interfaces = (cni_result or {}).get("Interfaces")
    if not isinstance(interfaces, dict):
        return []
    return sorted(
        name
        for name, iface in interfaces.items()
        if isinstance(iface, dict) and not iface.get("Sandbox") and name.startswith("veth")
    )


def traces(driver: CriDriver, pod: CriPod) -> Traces:  # pragma: no mutate block (I/O)
    veths = host_veths(dict(pod.handle.cni_result or {}))
    lease = f"{IPAM_DIR}/*/{pod.ip}"
    reads = [
        cmd("sh", "-c", f"ls {lease}"),
        cmd("ip", "link", "show", "dev", veths[0] if veths else "(no veth in the CNI result)"),
        cmd("test", "-e", pod.handle.netns),
    ]
    out = driver.runner.probe(pod.node, *reads)
    shown = f"ls {lease}; ip link show dev {veths[0] if veths else '?'}; ls -l {pod.handle.netns}"
    return Traces(
        out[0].ok, out[1].ok, out[2].ok, _node_reproduce(driver, pod.node, ("sh", "-c", shown))
    )


def release_problems(pod: CriPod, made: Traces, stopped: Traces, removed: Traces) -> list[str]:
    problems = []
    if not (made.lease and made.veth and made.netns):
        problems.append(
            f"{pod.name} running: lease {made.lease}, host veth {made.veth}, netns {made.netns}: "
            "the runtime's CNI ADD should have made all three"
        )
    if stopped.lease:
        problems.append(f"StopPodSandbox left the IPAM lease of {pod.ip} (CNI DEL did not release)")
    if stopped.veth:
        problems.append("StopPodSandbox left the pod's host-side veth")
    if removed.netns:
        problems.append(f"RemovePodSandbox left the network namespace {pod.handle.netns}")
    if removed.lease or removed.veth:
        problems.append("after RemovePodSandbox the lease or the veth is still there")
    if problems:
        problems.append(f"reproduce: {removed.reproduce}")
    return problems


def stop_and_remove(
    driver: CriDriver, pod: CriPod, after_stop: Callable[[], None] | None = None
) -> tuple[Traces, Traces, Traces, list[str]]:  # pragma: no mutate block (I/O)
    """Traces while running, after StopPodSandbox and after RemovePodSandbox, and what the
    runtime still lists of the pod. `after_stop` runs between (the breakage tests)."""
    runtime = driver.cri(pod.node)
    made = traces(driver, pod)
    runtime.stop_pod_sandbox(pod.handle.sandbox_id)
    if after_stop is not None:
        after_stop()
    stopped = traces(driver, pod)
    runtime.remove_pod_sandbox(pod.handle.sandbox_id)
    removed = traces(driver, pod)
    labels = {**messages.run_labels(driver.run_id), messages.POD_LABEL: pod.name}
    listed = [f"sandbox {s.id}" for s in runtime.list_pod_sandboxes(labels)]
    listed += [f"container {c.id}" for c in runtime.list_containers(labels)]
    return made, stopped, removed, listed


# --- 5. the infra process dies: noticed, and its removal still releases the IP -------------


def sandbox_state(driver: CriDriver, pod: CriPod) -> str:  # pragma: no mutate block (I/O)
    status = driver.cri(pod.node).pod_sandbox_status(pod.handle.sandbox_id).status
    return str(pb.PodSandboxState.Name(status.state))


def kill_on_node(driver: CriDriver, pod: CriPod, pid: int) -> None:  # pragma: no mutate block (I/O)
    result = driver.exec_on_node(pod.node, ("kill", "-KILL", str(pid)))
    if not result.ok:
        raise AssertionError(f"cannot kill {pid} on {pod.node}: {result.stderr}")


def infra_death_problems(
    driver: CriDriver,
    pod: CriPod,
    victim_pid: int,
    policy: waits.Policy = INFRA_NOTICED,
) -> list[str]:  # pragma: no mutate block (I/O)
    """Kill `victim_pid` (the pod's infra process) on the node; the runtime must report the
    sandbox NOTREADY within the policy's bound; Stop + Remove must still release the lease."""
    kill_on_node(driver, pod, victim_pid)
    missed = None
    try:
        waits.wait_until(
            policy, lambda: sandbox_state(driver, pod), lambda s: s == "SANDBOX_NOTREADY"
        )
    except waits.WaitTimeout as exc:
        missed = str(exc)
    _, stopped, removed, listed = stop_and_remove(driver, pod)
    return dead_sandbox_problems(pod, victim_pid, missed, stopped, removed, listed)


def dead_sandbox_problems(
    pod: CriPod,
    victim_pid: int,
    missed: str | None,
    stopped: Traces,
    removed: Traces,
    listed: list[str],
) -> list[str]:
    """After the infra process died: `missed`, the wait's timeout when the runtime never said
    NOTREADY (None: it did); the lease must not outlive Stop + Remove, nothing stay listed."""
    problems = []
    if missed is not None:
        problems.append(f"{missed} (pod {pod.name}, killed pid {victim_pid})")
    if stopped.lease or removed.lease:
        problems.append(f"the lease of {pod.ip} outlived the removal of the dead sandbox")
    if listed:
        problems.append(f"the runtime still lists {listed}")
    if problems:
        problems.append(f"reproduce: {removed.reproduce}")
    return problems


def pod_states(
    driver: CriDriver, pods: Sequence[CriPod]
) -> dict[str, str]:  # pragma: no mutate block (I/O)
    """Each pod's sandbox state and its containers' states, as the runtime reports them."""
    out = {}
    for pod in pods:
        runtime = driver.cri(pod.node)
        states = [sandbox_state(driver, pod)]
        for name, cid in sorted(pod.handle.container_ids.items()):
            state = runtime.container_status(cid).status.state
            states.append(f"{name}={pb.ContainerState.Name(state)}")
        out[pod.name] = " ".join(states)
    return out


# --- 4. containerd restarts: running pods stay reachable and ready ------------------------

RESTART = ("systemctl", "restart", "containerd")
CTR_VERSION = cmd("ctr", "version")
CRI_BACK = waits.Policy("containerd answers again after its restart", timeout_s=120)


def restart_problems(
    driver: CriDriver, pods: Sequence[CriPod], restart: Sequence[str] = RESTART
) -> list[str]:  # pragma: no mutate block (I/O)
    """The pod matrix and the runtime's view of the pods before and after `restart` runs on
    every node (then a bounded wait until the runtime is back, `runtime_back`): both must be
    unchanged."""
    nodes = sorted({p.node for p in pods})
    before = scenarios.pod_matrix(driver, pods)
    states_before = pod_states(driver, pods)
    failed = []
    for node in nodes:
        result = driver.runner.run(node, Command(tuple(restart)), 120)
        if not result.ok:
            failed.append(f"{node}: {' '.join(restart)} exited {result.exit_code}: {result.stderr}")
    for node in nodes:
        failed += wait_runtime_back(driver, node)
    after = scenarios.pod_matrix(driver, pods)
    try:
        states_after = pod_states(driver, pods)
    except Exception as exc:  # noqa: BLE001 (a runtime that lost the pods may not answer)
        states_after = {"error": str(exc)}
    return restart_outcome_problems(
        before.mismatches(), failed, after.mismatches(), states_before, states_after
    )


def restart_outcome_problems(
    before: Sequence[object],
    failed: Sequence[str],
    after: Sequence[object],
    states_before: Mapping[str, str],
    states_after: Mapping[str, str],
) -> list[str]:
    """The matrix's wrong cells before and after the restart, the restarts (or the waits for
    the runtime) that failed, and any change in the runtime's view of the pods."""
    problems = [f"before the restart: {m}" for m in before]
    problems += failed
    problems += [f"after the restart: {m}" for m in after]
    if states_after != states_before:
        problems.append(
            f"the runtime's view of the pods changed: before {dump(states_before)}, "
            f"after {dump(states_after)}"
        )
    return problems


def wait_runtime_back(driver: CriDriver, node: str, policy: waits.Policy = CRI_BACK) -> list[str]:
    """Bounded wait until `runtime_back`; the timeout as a problem naming the node."""
    try:
        waits.wait_until(policy, partial(runtime_back, driver, node), bool)
    except waits.WaitTimeout as exc:
        return [f"{node}: {exc}"]
    return []


def runtime_back(driver: CriDriver, node: str) -> bool:
    """containerd's API answers (`ctr version`) and its CRI reports NetworkReady, as kubelet
    waits for: containerd answers before its CRI plugin has loaded the pods again, and CRI
    calls meanwhile fail with "server is not initialized yet"."""
    if not driver.runner.run(node, CTR_VERSION).ok:
        return False
    try:
        return driver.cri(node).network_ready()
    except CriError:
        return False


def dump(value: object) -> str:
    return json.dumps(value, indent=1, sort_keys=True, default=str)
