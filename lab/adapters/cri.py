"""A CRI client (runtime.v1 over gRPC on a unix socket): what kubelet asks a container runtime,
each call bounded by a deadline, each failure a CriError naming the call, the socket, the gRPC
status and what to check.

    with CriClient.connect("/run/containerd/containerd.sock") as cri:
        cri.version()
        sandbox = cri.run_pod_sandbox(pod)
        ...

Requests are built by lab/runtime/cri/messages.py (pure); this module only sends them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from lab.common import waits
from lab.runtime.cri import messages
from lab.runtime.cri import runtime_v1_pb2 as pb
from lab.runtime.cri.runtime_v1_pb2_grpc import ImageServiceStub, RuntimeServiceStub

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 30.0
# RunPodSandbox creates a netns, starts the pause container and runs CNI ADD; under QEMU TCG
# in a 1-vCPU VM that takes seconds, not milliseconds.
SANDBOX_TIMEOUT_S = 120.0
EXEC_MARGIN_S = 10.0  # the gRPC deadline of an ExecSync: its own timeout plus this
NETWORK_READY = waits.Policy("CRI runtime reports NetworkReady", timeout_s=60, interval_s=0.5)

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)


class CriError(Exception):
    """A CRI call failed: which call, on which socket, the gRPC code and details."""

    def __init__(
        self, call: str, socket: str, code: str, details: str, timeout_s: float | None = None
    ) -> None:
        self.call, self.socket, self.code, self.details = call, socket, code, details
        hint = {
            "UNAVAILABLE": f"is the runtime running and listening on {socket}?",
            "DEADLINE_EXCEEDED": f"no answer within {timeout_s}s",
            "UNIMPLEMENTED": "the runtime does not serve this runtime.v1 call",
            "NOT_FOUND": "the object does not exist (removed already?)",
        }.get(code, "")
        text = f"CRI {call} on unix://{socket} failed: {code}: {details}"
        super().__init__(text + (f" ({hint})" if hint else ""))


@dataclass(frozen=True)
class ExecResult:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class CriClient:
    """One gRPC channel to a CRI runtime's socket, with both services on it."""

    def __init__(self, socket: str, channel: grpc.Channel, call_timeout_s: float) -> None:
        self.socket = socket
        self._channel = channel
        self._runtime = RuntimeServiceStub(channel)
        self._images = ImageServiceStub(channel)
        self.call_timeout_s = call_timeout_s

    @classmethod
    def connect(
        cls,
        socket: str,
        *,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        call_timeout_s: float = CALL_TIMEOUT_S,
    ) -> CriClient:
        """A client whose channel is ready (CriError UNAVAILABLE after connect_timeout_s)."""
        channel = grpc.insecure_channel(
            f"unix://{socket}", options=[("grpc.max_receive_message_length", 16 * 1024 * 1024)]
        )
        try:
            grpc.channel_ready_future(channel).result(timeout=connect_timeout_s)
        except grpc.FutureTimeoutError:
            channel.close()
            raise CriError(
                "connect",
                socket,
                "UNAVAILABLE",
                f"no gRPC server answered within {connect_timeout_s}s",
            ) from None
        return cls(socket, channel, call_timeout_s)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> CriClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(
        self,
        name: str,
        method: grpc.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        timeout_s: float | None = None,
    ) -> Resp:
        deadline = timeout_s if timeout_s is not None else self.call_timeout_s
        log.debug("CRI %s (deadline %.0fs)", name, deadline)
        try:
            return method(request, timeout=deadline)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            raise CriError(
                name, self.socket, code.name if code else "UNKNOWN", details or "", deadline
            ) from None

    # --- runtime ---------------------------------------------------------------------------

    def version(self) -> pb.VersionResponse:
        request = pb.VersionRequest(version=messages.API_VERSION)
        return self._call("Version", self._runtime.Version, request)

    def status(self) -> pb.StatusResponse:
        return self._call("Status", self._runtime.Status, pb.StatusRequest(verbose=False))

    def network_ready(self) -> bool:
        conditions = self.status().status.conditions
        return any(c.type == "NetworkReady" and c.status for c in conditions)

    def wait_for_network_ready(
        self, policy: waits.Policy = NETWORK_READY, sleep: Callable[[float], None] | None = None
    ) -> None:
        """Until the runtime has loaded a CNI config (containerd watches its conf_dir)."""
        if sleep is None:
            waits.wait_until(policy, self.network_ready, bool)
        else:
            waits.wait_until(policy, self.network_ready, bool, sleep=sleep)

    # --- pods ------------------------------------------------------------------------------

    def run_pod_sandbox(self, pod: messages.PodSpec, timeout_s: float = SANDBOX_TIMEOUT_S) -> str:
        request = messages.run_pod_sandbox_request(pod)
        return self._call(
            "RunPodSandbox", self._runtime.RunPodSandbox, request, timeout_s
        ).pod_sandbox_id

    def stop_pod_sandbox(self, sandbox_id: str, timeout_s: float = SANDBOX_TIMEOUT_S) -> None:
        request = pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id)
        self._call("StopPodSandbox", self._runtime.StopPodSandbox, request, timeout_s)

    def remove_pod_sandbox(self, sandbox_id: str, timeout_s: float = SANDBOX_TIMEOUT_S) -> None:
        request = pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id)
        self._call("RemovePodSandbox", self._runtime.RemovePodSandbox, request, timeout_s)

    def pod_sandbox_status(
        self, sandbox_id: str, verbose: bool = False
    ) -> pb.PodSandboxStatusResponse:
        request = pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=verbose)
        return self._call("PodSandboxStatus", self._runtime.PodSandboxStatus, request)

    def list_pod_sandboxes(self, labels: Mapping[str, str]) -> list[pb.PodSandbox]:
        request = pb.ListPodSandboxRequest(filter=messages.pod_sandbox_filter(labels))
        return list(self._call("ListPodSandbox", self._runtime.ListPodSandbox, request).items)

    # --- containers ------------------------------------------------------------------------

    def create_container(
        self, sandbox_id: str, pod: messages.PodSpec, spec: messages.ContainerSpec
    ) -> str:
        request = messages.create_container_request(sandbox_id, pod, spec)
        return self._call(
            "CreateContainer", self._runtime.CreateContainer, request, SANDBOX_TIMEOUT_S
        ).container_id

    def start_container(self, container_id: str) -> None:
        request = pb.StartContainerRequest(container_id=container_id)
        self._call("StartContainer", self._runtime.StartContainer, request, SANDBOX_TIMEOUT_S)

    def stop_container(self, container_id: str, grace_s: int = 10) -> None:
        request = pb.StopContainerRequest(container_id=container_id, timeout=grace_s)
        self._call("StopContainer", self._runtime.StopContainer, request, grace_s + CALL_TIMEOUT_S)

    def remove_container(self, container_id: str) -> None:
        request = pb.RemoveContainerRequest(container_id=container_id)
        self._call("RemoveContainer", self._runtime.RemoveContainer, request)

    def container_status(
        self, container_id: str, verbose: bool = False
    ) -> pb.ContainerStatusResponse:
        request = pb.ContainerStatusRequest(container_id=container_id, verbose=verbose)
        return self._call("ContainerStatus", self._runtime.ContainerStatus, request)

    def list_containers(
        self, labels: Mapping[str, str], sandbox_id: str = ""
    ) -> list[pb.Container]:
        request = pb.ListContainersRequest(filter=messages.container_filter(labels, sandbox_id))
        return list(self._call("ListContainers", self._runtime.ListContainers, request).containers)

    def exec_sync(self, container_id: str, argv: Sequence[str], timeout_s: int = 30) -> ExecResult:
        """Run argv in the container and wait for it (the runtime kills it after timeout_s)."""
        if timeout_s <= 0:
            raise ValueError("exec_sync needs a positive timeout (0 means 'forever' in CRI)")
        request = pb.ExecSyncRequest(container_id=container_id, cmd=list(argv), timeout=timeout_s)
        reply = self._call("ExecSync", self._runtime.ExecSync, request, timeout_s + EXEC_MARGIN_S)
        return ExecResult(
            tuple(argv),
            reply.exit_code,
            reply.stdout.decode(errors="replace"),
            reply.stderr.decode(errors="replace"),
        )

    # --- images ----------------------------------------------------------------------------

    def image_status(self, ref: str) -> pb.Image | None:
        """The image if the runtime has it, else None (never pulls)."""
        request = pb.ImageStatusRequest(image=pb.ImageSpec(image=ref))
        reply = self._call("ImageStatus", self._images.ImageStatus, request)
        return reply.image if reply.HasField("image") else None

    def list_images(self) -> list[pb.Image]:
        request = pb.ListImagesRequest()
        return list(self._call("ListImages", self._images.ListImages, request).images)
