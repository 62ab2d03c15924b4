"""Pods made by a real runtime on this host: containerd's CRI plugin, driven like kubelet drives
it, with the lab's own images and Debian's CNI plugins. No VM.

containerd runs inside a network namespace this test creates (with its own root, state,
socket, runc root and CNI conf dir under a temporary directory), so its bridge, veths and
pods live there and every packet stays in it. Proven here:
- RunPodSandbox: the runtime's CNI ADD gives the pod one IP, reported the same by
  PodSandboxStatus, by containerd's CNI result, by `ip addr` inside the pod, and leased by
  host-local;
- every container of a pod shares the sandbox's network namespace (/proc/<pid>/ns/net of each
  container's task is the sandbox's pinned netns);
- pod to pod without NAT: each pod's echo server answers another pod's probe (socat and a
  python3 stdlib client, through ExecSync) with that pod's own IP;
- StopPodSandbox + RemovePodSandbox: CNI DEL releases the lease, the netns and the host veth
  disappear, the runtime lists nothing of the run.

Needs root, containerd + runc (Debian: `apt-get install containerd runc`), Debian's CNI
plugins in /usr/lib/cni, and the Debian mirror the first time (the images are built and
cached). Run it alone with --noconftest: tests/integration/conftest.py would otherwise start
libvirtd and build the VM box first, which this test does not need (no VM, no VM lock):
    pytest --noconftest -v tests/integration/test_cri_host.py
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv4Network, ip_address
from pathlib import Path

import pytest

from lab.adapters import containerd as containerd_adapter
from lab.adapters import imagebuild
from lab.adapters.cri import CriClient, ExecResult
from lab.adapters.local import run
from lab.net import cni
from lab.runtime import containerd, images
from lab.runtime.cri import messages
from lab.runtime.cri import runtime_v1_pb2 as pb

SUBNET = IPv4Network("10.88.7.0/24")  # inside the test's own network namespace only
NETWORK = "netlab-cri"
BRIDGE = "nlcri0"
CNI_PLUGINS = ("bridge", "host-local", "loopback")
NEEDED = ("containerd", "runc", "ctr", "nsenter", "ip")


def _missing() -> list[str]:
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    missing += [
        f"{containerd.DEBIAN_CNI_BIN_DIR}/{p}"
        for p in CNI_PLUGINS
        if not os.access(f"{containerd.DEBIAN_CNI_BIN_DIR}/{p}", os.X_OK)
    ]
    return missing


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, containerd)"),
    pytest.mark.skipif(
        bool(_missing()),
        reason=f"needs {', '.join(_missing())} (apt-get install containerd runc "
        "containernetworking-plugins; scripts/setup-host installs them)",
    ),
    pytest.mark.timeout(600),
]


@dataclass
class HostRuntime:
    cri: CriClient
    daemon: containerd_adapter.ContainerdDaemon
    netns: str
    ipam_dir: str
    refs: dict[str, str]
    run_id: str
    netns_paths: list[str] = field(default_factory=list)  # pod netns seen, for cleanup

    def host_veths(self) -> list[str]:
        out = run(["ip", "-n", self.netns, "-j", "link", "show", "type", "veth"], timeout=10)
        return sorted(link["ifname"] for link in json.loads(out.stdout or "[]"))


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostRuntime]:
    built = imagebuild.build()
    work = tmp_path_factory.mktemp("cri")
    run_id = uuid.uuid4().hex[:8]
    netns = f"nl-cri-{run_id}"
    conf_dir = work / "net.d"
    conf_dir.mkdir()
    (conf_dir / "10-netlab-cri.conflist").write_text(
        containerd.render_conflist_text(
            containerd.render_bridge_conflist(NETWORK, BRIDGE, SUBNET, str(work / "ipam"))
        )
    )
    config = containerd.ContainerdConfig(
        sandbox_image=built.ref("pause"),
        root=str(work / "root"),
        state=str(work / "state"),
        address=str(work / "containerd.sock"),
        cni_conf_dir=str(conf_dir),
        runc_root=str(work / "runc"),
        restrict_oom_score_adj=not containerd_adapter.can_lower_oom_score_adj(),
    )
    run(["ip", "netns", "add", netns], timeout=10)
    daemon: containerd_adapter.ContainerdDaemon | None = None
    runtime: HostRuntime | None = None
    try:
        run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], timeout=10)
        daemon = containerd_adapter.start_containerd(config, work, netns)
        cri = CriClient.connect(config.address)
        runtime = HostRuntime(cri, daemon, netns, str(work / "ipam"), built.refs, run_id)
        start = time.monotonic()
        containerd_adapter.import_images(config.address, built.archive)
        print(f"\nimported {built.size_bytes / 2**20:.1f} MiB in {time.monotonic() - start:.1f}s")
        cri.wait_for_network_ready()
        yield runtime
    finally:
        leftovers: list[str] = []
        if runtime is not None:
            for sandbox in runtime.cri.list_pod_sandboxes(messages.run_labels(run_id)):
                leftovers.append(f"pod {sandbox.metadata.name}")
                runtime.cri.stop_pod_sandbox(sandbox.id)
                runtime.cri.remove_pod_sandbox(sandbox.id)
            runtime.cri.close()
        if daemon is not None:
            daemon.stop()
        cleaned = containerd_adapter.cleanup(config, runtime.netns_paths if runtime else [])
        run(["ip", "netns", "del", netns], timeout=10, check=False)
        shutil.rmtree(work, ignore_errors=True)
        if leftovers or cleaned:
            print(f"cleanup: {leftovers + cleaned}")


@dataclass(frozen=True)
class Pod:
    spec: messages.PodSpec
    sandbox_id: str
    ip: str
    containers: dict[str, str]  # name -> container id


def make_pod(host: HostRuntime, name: str) -> Pod:
    """A pod like kubelet makes it: the sandbox, then an echo server and a client in it."""
    spec = messages.PodSpec(
        name=name,
        namespace=f"nl-{host.run_id}",
        uid=str(uuid.uuid4()),
        run_id=host.run_id,
        log_directory=f"{host.daemon.config.root}/pod-logs/{name}",
    )
    sandbox_id = host.cri.run_pod_sandbox(spec)
    status = host.cri.pod_sandbox_status(sandbox_id, verbose=True)
    host.netns_paths.append(messages.parse_verbose_info(status.info).netns_path)
    containers = {}
    for container in (
        messages.ContainerSpec("echo", host.refs["echo"]),
        messages.ContainerSpec("client", host.refs["client"]),
    ):
        cid = host.cri.create_container(sandbox_id, spec, container)
        host.cri.start_container(cid)
        containers[container.name] = cid
    return Pod(spec, sandbox_id, status.status.network.ip, containers)


def remove_pod(host: HostRuntime, pod: Pod) -> None:
    host.cri.stop_pod_sandbox(pod.sandbox_id)
    host.cri.remove_pod_sandbox(pod.sandbox_id)


@pytest.fixture(scope="module")
def pods(host: HostRuntime) -> Iterator[dict[str, Pod]]:
    made: dict[str, Pod] = {}
    try:
        for name in ("pod-a", "pod-b"):
            start = time.monotonic()
            made[name] = make_pod(host, name)
            print(f"\n{name}: sandbox + 2 containers in {time.monotonic() - start:.1f}s")
        yield made
    finally:
        for pod in made.values():
            remove_pod(host, pod)


def test_the_runtime_is_containerd_serving_cri_v1(host: HostRuntime) -> None:
    version = host.cri.version()
    assert (version.runtime_name, version.runtime_api_version) == ("containerd", "v1")
    for ref in host.refs.values():
        image = host.cri.image_status(ref)
        assert image is not None, f"{ref} not visible to the CRI after ctr import"
        assert ref in image.repo_tags


def test_a_pod_has_one_ip_from_cni_seen_alike_everywhere(
    host: HostRuntime, pods: dict[str, Pod]
) -> None:
    for pod in pods.values():
        response = host.cri.pod_sandbox_status(pod.sandbox_id, verbose=True)
        status = response.status
        assert status.state == pb.SANDBOX_READY
        assert dict(status.labels)[messages.RUN_LABEL] == host.run_id
        (ip,) = messages.sandbox_ips(status)
        assert ip in SUBNET, f"{pod.spec.name}: {ip} is not from the CNI network {SUBNET}"
        info = messages.parse_verbose_info(response.info)
        assert info.cni_result is not None
        assert messages.cni_result_pod_ips(info.cni_result) == {"eth0": (str(ip),)}
        seen = host.cri.exec_sync(pod.containers["client"], ["ip", "-j", "-4", "addr", "show"])
        assert seen.ok, seen
        inside = {
            (link["ifname"], a["local"])
            for link in json.loads(seen.stdout)
            for a in link.get("addr_info", [])
        }
        assert inside == {("lo", "127.0.0.1"), ("eth0", str(ip))}
        (lease,) = cni.lease_paths(host.ipam_dir, NETWORK, [IPv4Interface(f"{ip}/24")])
        assert Path(lease).is_file(), f"host-local holds no lease {lease}"


def test_containers_share_the_sandbox_network_namespace(
    host: HostRuntime, pods: dict[str, Pod]
) -> None:
    inodes: dict[str, int] = {}
    for pod in pods.values():
        sandbox = messages.parse_verbose_info(
            host.cri.pod_sandbox_status(pod.sandbox_id, verbose=True).info
        )
        pinned = os.stat(sandbox.netns_path).st_ino
        assert os.stat(f"/proc/{sandbox.pid}/ns/net").st_ino == pinned
        for name, cid in pod.containers.items():
            task = messages.parse_verbose_info(host.cri.container_status(cid, verbose=True).info)
            assert task.pid != sandbox.pid
            assert os.stat(f"/proc/{task.pid}/ns/net").st_ino == pinned, (
                f"{pod.spec.name}/{name} (pid {task.pid}) is not in the sandbox's netns "
                f"{sandbox.netns_path}"
            )
            assert task.netns_path == f"/proc/{sandbox.pid}/ns/net"
        inodes[pod.spec.name] = pinned
    assert len(set(inodes.values())) == len(inodes), f"pods share a netns: {inodes}"


PY_PROBE = (
    "import socket,sys\n"
    "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=5)\n"
    "print(s.makefile().readline().strip())\n"
)


def probe_argv(tool: str, ip: str, port: int) -> list[str]:
    if tool == "socat":
        return ["socat", "-T5", "-u", f"TCP:{ip}:{port}", "STDOUT"]
    return ["python3", "-c", PY_PROBE, ip, str(port)]


def test_pod_to_pod_without_nat_the_echo_server_sees_the_client_pod_ip(
    host: HostRuntime, pods: dict[str, Pod]
) -> None:
    """Each pod's client asks the other pod's echo server who it is; the answer must be the
    client pod's own IP, for both probe tools."""
    expected: dict[tuple[str, str, str], str] = {}
    observed: dict[tuple[str, str, str], ExecResult] = {}
    for src in pods.values():
        for dst in pods.values():
            if src is dst:
                continue
            for tool in ("socat", "python3"):
                cell = (src.spec.name, dst.spec.name, tool)
                expected[cell] = src.ip
                start = time.monotonic()
                argv = probe_argv(tool, dst.ip, images.ECHO_PORT)
                observed[cell] = host.cri.exec_sync(src.containers["client"], argv, 15)
                print(f"\n{cell}: {time.monotonic() - start:.2f}s {observed[cell].stdout.strip()}")
    seen = {cell: result.stdout.strip() if result.ok else "" for cell, result in observed.items()}
    wrong = {
        cell: f"expected {want}, saw {seen[cell]!r} (exit {observed[cell].exit_code}, "
        f"stderr {observed[cell].stderr.strip()!r}); reproduce: ExecSync "
        f"{pods[cell[0]].containers['client'][:12]} {observed[cell].argv}"
        for cell, want in expected.items()
        if seen[cell] != want
    }
    assert not wrong, "\n".join(f"{c}: {w}" for c, w in wrong.items())
    assert all(ip_address(v) in SUBNET for v in seen.values())


def test_stop_and_remove_release_lease_netns_and_veth(host: HostRuntime) -> None:
    veths_before = host.host_veths()
    pod = make_pod(host, "pod-gone")
    info = messages.parse_verbose_info(
        host.cri.pod_sandbox_status(pod.sandbox_id, verbose=True).info
    )
    (lease,) = cni.lease_paths(host.ipam_dir, NETWORK, [IPv4Interface(f"{pod.ip}/24")])
    assert Path(lease).is_file()
    assert Path(info.netns_path).exists()
    assert len(host.host_veths()) == len(veths_before) + 1

    host.cri.stop_pod_sandbox(pod.sandbox_id)
    assert not Path(lease).exists(), f"CNI DEL left the lease {lease}"
    assert not Path(info.netns_path).exists(), f"StopPodSandbox left {info.netns_path}"
    assert host.host_veths() == veths_before, "the pod's host-side veth is still there"
    stopped = host.cri.pod_sandbox_status(pod.sandbox_id).status
    assert stopped.state == pb.SANDBOX_NOTREADY
    for cid in pod.containers.values():
        assert host.cri.container_status(cid).status.state == pb.CONTAINER_EXITED

    host.cri.remove_pod_sandbox(pod.sandbox_id)
    run_labels = {**messages.run_labels(host.run_id), messages.POD_LABEL: "pod-gone"}
    assert host.cri.list_pod_sandboxes(run_labels) == []
    assert host.cri.list_containers(run_labels) == []
    host.cri.remove_pod_sandbox(pod.sandbox_id)  # idempotent, as the CRI requires
