"""The CRI subset in lab/runtime/cri/runtime_v1.proto: the committed Python modules are exactly what
`python -m lab.runtime.cri.generate` makes from it, and its numbers are the CRI API's."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.runtime.cri import generate
from lab.runtime.cri import runtime_v1_pb2 as pb

REPO = Path(__file__).resolve().parents[2]


def test_committed_modules_are_regenerated_from_the_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="needs grpcio-tools (pip install -e '.[test]')")
    written = generate.generate(tmp_path)
    assert [p.name for p in written] == list(generate.OUTPUTS)
    for path in written:
        committed = REPO / generate.PROTO.parent / path.name
        assert path.read_text() == committed.read_text(), (
            f"{committed.relative_to(REPO)} is not what runtime_v1.proto generates: "
            "run `python -m lab.runtime.cri.generate` and commit the result"
        )


def test_package_and_services_are_the_cri_v1_ones() -> None:
    assert pb.DESCRIPTOR.package == "runtime.v1"
    runtime = pb.DESCRIPTOR.services_by_name["RuntimeService"]
    assert runtime.full_name == "runtime.v1.RuntimeService"
    assert sorted(m.name for m in runtime.methods) == sorted(
        [
            "Version",
            "RunPodSandbox",
            "StopPodSandbox",
            "RemovePodSandbox",
            "PodSandboxStatus",
            "ListPodSandbox",
            "CreateContainer",
            "StartContainer",
            "StopContainer",
            "RemoveContainer",
            "ListContainers",
            "ContainerStatus",
            "ExecSync",
            "Status",
        ]
    )
    images = pb.DESCRIPTOR.services_by_name["ImageService"]
    assert sorted(m.name for m in images.methods) == ["ImageStatus", "ListImages"]


# Field numbers from k8s.io/cri-api pkg/apis/runtime/v1/api.proto (v0.25). A wrong number
# is silent on the wire (the runtime reads another field), so the ones we rely on are pinned.
CRI_FIELD_NUMBERS = [
    ("VersionResponse", "runtime_api_version", 4),
    ("PodSandboxMetadata", "attempt", 4),
    ("PodSandboxConfig", "log_directory", 3),
    ("PodSandboxConfig", "labels", 6),
    ("PodSandboxConfig", "linux", 8),
    ("LinuxPodSandboxConfig", "security_context", 2),
    ("LinuxSandboxSecurityContext", "namespace_options", 1),
    ("LinuxSandboxSecurityContext", "privileged", 6),
    ("NamespaceOption", "ipc", 3),
    ("PodSandboxStatus", "network", 5),
    ("PodSandboxStatus", "labels", 7),
    ("PodSandboxNetworkStatus", "additional_ips", 2),
    ("PodSandboxStatusResponse", "info", 2),
    ("PodSandboxFilter", "label_selector", 3),
    ("PodSandbox", "labels", 5),
    ("ContainerConfig", "envs", 6),
    ("ContainerConfig", "labels", 9),
    ("ContainerConfig", "log_path", 11),
    ("ContainerConfig", "linux", 15),
    ("LinuxContainerConfig", "security_context", 2),
    ("LinuxContainerSecurityContext", "namespace_options", 3),
    ("CreateContainerRequest", "sandbox_config", 3),
    ("ContainerFilter", "label_selector", 4),
    ("Container", "labels", 8),
    ("ContainerStatus", "exit_code", 7),
    ("ContainerStatus", "log_path", 15),
    ("ExecSyncRequest", "timeout", 3),
    ("ExecSyncResponse", "exit_code", 3),
    ("StopContainerRequest", "timeout", 2),
    ("Image", "size", 4),
]


@pytest.mark.parametrize(("message", "field", "number"), CRI_FIELD_NUMBERS)
def test_field_numbers_match_the_cri_api(message: str, field: str, number: int) -> None:
    assert pb.DESCRIPTOR.message_types_by_name[message].fields_by_name[field].number == number
