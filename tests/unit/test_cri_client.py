"""The CRI client against a strict fake runtime: a real gRPC server on a unix socket in a
temporary directory, serving only what each test needs (anything else is UNIMPLEMENTED)."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from lab.adapters.cri import CriClient, CriError
from lab.common import waits
from lab.runtime.cri import messages
from lab.runtime.cri import runtime_v1_pb2 as pb
from lab.runtime.cri import runtime_v1_pb2_grpc as pb_grpc

POD = messages.PodSpec(name="a", namespace="nl-r1", uid="u1", run_id="r1")


class FakeRuntime(pb_grpc.RuntimeServiceServicer):
    def __init__(self) -> None:
        self.requests: list[object] = []
        self.network_ready_after = 0  # Status calls answering NetworkReady=false first
        self.delay_s = 0.0  # Version answers this late
        self.release = threading.Event()

    def Version(self, request: pb.VersionRequest, context: object) -> pb.VersionResponse:
        self.requests.append(request)
        if self.delay_s:
            self.release.wait(self.delay_s)
        return pb.VersionResponse(
            version="0.1.0",
            runtime_name="fake",
            runtime_version="1.6.20",
            runtime_api_version="v1",
        )

    def Status(self, request: pb.StatusRequest, context: object) -> pb.StatusResponse:
        self.requests.append(request)
        ready = self.network_ready_after <= 0
        self.network_ready_after -= 1
        conditions = [
            pb.RuntimeCondition(type="RuntimeReady", status=True),
            pb.RuntimeCondition(type="NetworkReady", status=ready),
        ]
        return pb.StatusResponse(status=pb.RuntimeStatus(conditions=conditions))

    def RunPodSandbox(
        self, request: pb.RunPodSandboxRequest, context: object
    ) -> pb.RunPodSandboxResponse:
        self.requests.append(request)
        return pb.RunPodSandboxResponse(pod_sandbox_id="sb1")

    def RemovePodSandbox(
        self, request: pb.RemovePodSandboxRequest, context: grpc.ServicerContext
    ) -> pb.RemovePodSandboxResponse:
        self.requests.append(request)
        context.abort(grpc.StatusCode.NOT_FOUND, f"sandbox {request.pod_sandbox_id} not found")
        raise AssertionError("abort returns never")

    def ListPodSandbox(
        self, request: pb.ListPodSandboxRequest, context: object
    ) -> pb.ListPodSandboxResponse:
        self.requests.append(request)
        return pb.ListPodSandboxResponse(items=[pb.PodSandbox(id="sb1", labels={"x": "y"})])

    def ExecSync(self, request: pb.ExecSyncRequest, context: object) -> pb.ExecSyncResponse:
        self.requests.append(request)
        return pb.ExecSyncResponse(stdout=b"10.88.7.5\n", stderr=b"\xff", exit_code=3)


@pytest.fixture
def socket_path() -> Iterator[str]:
    # not under tmp_path: a unix socket path must stay under 108 bytes
    with tempfile.TemporaryDirectory(prefix="nl-cri-") as short:
        yield f"{short}/cri.sock"


@pytest.fixture
def runtime(socket_path: str) -> Iterator[FakeRuntime]:
    fake = FakeRuntime()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_RuntimeServiceServicer_to_server(fake, server)
    server.add_insecure_port(f"unix://{socket_path}")
    server.start()
    yield fake
    fake.release.set()
    server.stop(grace=None).wait(5)


@pytest.fixture
def cri(runtime: FakeRuntime, socket_path: str) -> Iterator[CriClient]:
    with CriClient.connect(socket_path, connect_timeout_s=5, call_timeout_s=5) as client:
        yield client


def test_version_announces_the_v1_api(cri: CriClient, runtime: FakeRuntime) -> None:
    assert cri.version().runtime_api_version == "v1"
    assert runtime.requests == [pb.VersionRequest(version="v1")]


def test_run_pod_sandbox_sends_the_built_request(cri: CriClient, runtime: FakeRuntime) -> None:
    assert cri.run_pod_sandbox(POD) == "sb1"
    assert runtime.requests == [messages.run_pod_sandbox_request(POD)]


def test_list_sends_the_label_selector(cri: CriClient, runtime: FakeRuntime) -> None:
    (item,) = cri.list_pod_sandboxes(messages.run_labels("r1"))
    assert item.id == "sb1"
    (request,) = runtime.requests
    assert isinstance(request, pb.ListPodSandboxRequest)
    assert dict(request.filter.label_selector) == messages.run_labels("r1")


def test_exec_sync_returns_exit_code_and_decoded_streams(
    cri: CriClient, runtime: FakeRuntime
) -> None:
    result = cri.exec_sync("c1", ["socat", "-", "TCP:10.88.7.6:8080"], timeout_s=7)
    assert (result.exit_code, result.stdout, result.stderr, result.ok) == (
        3,
        "10.88.7.5\n",
        "\ufffd",
        False,
    )
    assert runtime.requests == [
        pb.ExecSyncRequest(container_id="c1", cmd=["socat", "-", "TCP:10.88.7.6:8080"], timeout=7)
    ]
    with pytest.raises(ValueError, match="positive timeout"):
        cri.exec_sync("c1", ["true"], timeout_s=0)


def test_a_grpc_error_names_the_call_the_socket_and_the_code(
    cri: CriClient, socket_path: str
) -> None:
    with pytest.raises(CriError) as caught:
        cri.remove_pod_sandbox("sb9")
    assert caught.value.code == "NOT_FOUND"
    assert str(caught.value) == (
        f"CRI RemovePodSandbox on unix://{socket_path} failed: NOT_FOUND: sandbox sb9 not found "
        "(the object does not exist (removed already?))"
    )


def test_a_call_the_runtime_does_not_serve_is_unimplemented(cri: CriClient) -> None:
    with pytest.raises(CriError, match=r"CRI ContainerStatus on .* UNIMPLEMENTED"):
        cri.container_status("c1")


def test_every_call_has_a_deadline(cri: CriClient, runtime: FakeRuntime) -> None:
    cri.call_timeout_s = 0.2
    runtime.delay_s = 30
    start = time.monotonic()
    with pytest.raises(CriError, match=r"CRI Version on .* DEADLINE_EXCEEDED") as caught:
        cri.version()
    assert time.monotonic() - start < 5
    assert "no answer within 0.2s" in str(caught.value)


def test_connect_gives_up_on_a_socket_nobody_serves(tmp_path: Path) -> None:
    missing = str(tmp_path / "none.sock")
    start = time.monotonic()
    with pytest.raises(CriError, match=r"CRI connect on unix://.*none\.sock failed: UNAVAILABLE"):
        CriClient.connect(missing, connect_timeout_s=0.3)
    assert time.monotonic() - start < 5


def test_wait_for_network_ready_polls_status(cri: CriClient, runtime: FakeRuntime) -> None:
    runtime.network_ready_after = 2
    sleeps: list[float] = []
    cri.wait_for_network_ready(waits.Policy("net", timeout_s=10, interval_s=0.5), sleeps.append)
    assert sleeps == [0.5, 0.5]
    assert sum(isinstance(r, pb.StatusRequest) for r in runtime.requests) == 3


def test_wait_for_network_ready_is_bounded(cri: CriClient, runtime: FakeRuntime) -> None:
    runtime.network_ready_after = 100
    with pytest.raises(waits.WaitTimeout, match="net: not done"):
        cri.wait_for_network_ready(
            waits.Policy("net", timeout_s=60, interval_s=0.1, max_attempts=3), lambda _: None
        )


def test_a_worker_talks_to_the_controllers_forward_and_opens_none_of_its_own(
    runtime: FakeRuntime, socket_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from e2e.drivers.base import DriverError
    from e2e.drivers.cri import ForwardedRuntimes, shared_socket

    shared = os.path.dirname(socket_path)
    os.symlink(socket_path, f"{shared}/node1.sock")  # the controller's forward of node1
    no_ssh = {"node1": object(), "node2": object()}  # channels without an SSH target
    worker = ForwardedRuntimes(no_ssh, shared)
    try:
        assert worker("node1").version().runtime_api_version == "v1"
        assert worker("node1") is worker("node1"), "one client per node"
        assert worker.forwards == {}
        with pytest.raises(DriverError, match="node2: short: not done"):
            shared_socket("node2", shared, waits.Policy("short", timeout_s=0.2, interval_s=0.05))
    finally:
        worker.close()
    assert not os.path.exists(worker.dir), "its socket directory goes with it"
    alone = ForwardedRuntimes(no_ssh)
    with pytest.raises(DriverError, match="node1: its channel has no SSH target"):
        alone("node1")
    alone.close()


def test_a_forward_the_controller_could_not_start_fails_the_workers_with_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from e2e.drivers.base import DriverError
    from e2e.drivers.cri import ForwardedRuntimes

    controller = ForwardedRuntimes({"node1": object()})  # a channel without an SSH target
    shared = controller.share()  # returns before the forwards listen
    worker = ForwardedRuntimes({"node1": object()}, shared)
    try:
        with pytest.raises(DriverError) as err:
            worker("node1")  # waits for the controller's forward, then raises its reason
        assert str(err.value) == (
            "node1: the controller's forward failed: DriverError: node1: its channel has no "
            "SSH target to forward through"
        )
        assert worker.forwards == {}, "a worker never opens a forward of its own"
    finally:
        worker.close()
        controller.close()
    assert not os.path.exists(controller.dir)
