"""CRI requests as kubelet builds them, and containerd's verbose answers read back (pure)."""

from __future__ import annotations

import dataclasses
import json
from ipaddress import ip_address

import pytest

from lab.runtime.cri import messages
from lab.runtime.cri import runtime_v1_pb2 as pb

POD = messages.PodSpec(name="echo-a", namespace="nl-r1", uid="1b4e28ba-2fa1", run_id="r1")
ECHO = messages.ContainerSpec(
    name="echo",
    image="netlab.invalid/echo:0123456789ab",
    args=("socat", "TCP-LISTEN:9000,fork,reuseaddr", "SYSTEM:echo $SOCAT_PEERADDR"),
    env=(("A", "1"),),
    labels=(("role", "server"),),
)


def test_sandbox_config_carries_metadata_labels_log_dir_and_pod_namespaces() -> None:
    config = messages.pod_sandbox_config(POD)
    assert config.metadata == pb.PodSandboxMetadata(
        name="echo-a", uid="1b4e28ba-2fa1", namespace="nl-r1", attempt=0
    )
    assert config.hostname == "echo-a"
    assert config.log_directory == "/var/log/pods/nl-r1_echo-a_1b4e28ba-2fa1"
    assert dict(config.labels) == {
        "netlab.io/managed": "true",
        "netlab.io/run": "r1",
        "netlab.io/pod": "echo-a",
    }
    options = config.linux.security_context.namespace_options
    assert (options.network, options.pid, options.ipc) == (pb.POD, pb.CONTAINER, pb.POD)


def test_run_request_wraps_the_config_for_the_default_handler() -> None:
    request = messages.run_pod_sandbox_request(dataclasses.replace(POD, attempt=2))
    assert request.config.metadata.attempt == 2
    assert request.runtime_handler == ""


def test_the_run_labels_win_over_user_labels() -> None:
    pod = dataclasses.replace(POD, labels=(("netlab.io/run", "other"), ("app", "echo")))
    labels = dict(messages.pod_sandbox_config(pod).labels)
    assert labels["netlab.io/run"] == "r1"
    assert labels["app"] == "echo"


def test_container_request_has_image_command_env_labels_and_the_sandbox_config() -> None:
    request = messages.create_container_request("sb1", POD, ECHO)
    assert request.pod_sandbox_id == "sb1"
    assert request.sandbox_config == messages.pod_sandbox_config(POD)
    config = request.config
    assert config.metadata == pb.ContainerMetadata(name="echo", attempt=0)
    assert config.image.image == "netlab.invalid/echo:0123456789ab"
    assert list(config.command) == []
    assert list(config.args) == list(ECHO.args)
    assert [(kv.key, kv.value) for kv in config.envs] == [("A", "1")]
    assert dict(config.labels) == {
        "role": "server",
        "netlab.io/managed": "true",
        "netlab.io/run": "r1",
        "netlab.io/pod": "echo-a",
    }
    assert config.log_path == "echo/0.log"
    assert config.linux.security_context.namespace_options.network == pb.POD


def test_capabilities_are_added_when_asked() -> None:
    spec = dataclasses.replace(ECHO, add_capabilities=("NET_ADMIN",))
    caps = messages.container_config(POD, spec).linux.security_context.capabilities
    assert list(caps.add_capabilities) == ["NET_ADMIN"]


def test_every_pod_problem_is_listed() -> None:
    bad = messages.PodSpec(
        name="Echo_A", namespace="", uid="", run_id="r 1", attempt=-1, log_directory="logs"
    )
    assert messages.validate_pod(bad) == [
        "pod name 'Echo_A': must be a DNS-1123 label (lowercase letters, digits, '-'; at most 63)",
        "pod namespace '': must be a DNS-1123 label (lowercase letters, digits, '-'; at most 63)",
        "pod Echo_A: uid is empty; give a unique id (e.g. a uuid4)",
        "pod Echo_A: attempt -1 must be >= 0",
        "pod Echo_A: log directory 'logs' must be absolute",
        "pod Echo_A: label netlab.io/run='r 1': values are at most 63 letters, digits, '-', '_' "
        "or '.', starting and ending alphanumeric",
    ]
    with pytest.raises(ValueError, match="uid is empty"):
        messages.pod_sandbox_config(bad)


def test_container_problems() -> None:
    bad = messages.ContainerSpec(name="Echo", image="", labels=(("/x", "y"),))
    assert messages.validate_container(bad) == [
        "container name 'Echo': must be a DNS-1123 label",
        "container Echo: image is empty",
        "container Echo: label key '/x' is not a valid label key",
    ]


def test_filters_select_by_labels_and_sandbox() -> None:
    run = messages.run_labels("r1")
    assert dict(messages.pod_sandbox_filter(run).label_selector) == run
    flt = messages.container_filter(run, "sb1")
    assert flt.pod_sandbox_id == "sb1"
    assert dict(flt.label_selector) == run


def test_sandbox_ips_are_the_primary_then_the_additional_ones() -> None:
    status = pb.PodSandboxStatus(
        network=pb.PodSandboxNetworkStatus(ip="10.88.7.6", additional_ips=[pb.PodIP(ip="fd00::6")])
    )
    assert messages.sandbox_ips(status) == (ip_address("10.88.7.6"), ip_address("fd00::6"))
    assert messages.sandbox_ips(pb.PodSandboxStatus()) == ()


# Recorded from containerd 1.6.20 (Debian 12) with a bridge + host-local network, trimmed.
SANDBOX_INFO = {
    "pid": 1060,
    "processStatus": "running",
    "netNamespaceClosed": False,
    "image": "netlab.invalid/pause:d9d368ac73d8",
    "snapshotter": "overlayfs",
    "runtimeType": "io.containerd.runc.v2",
    "runtimeSpec": {
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
                {
                    "type": "network",
                    "path": "/var/run/netns/cni-8cc7a0bd-fa68-17ce-020e-c5df8fe92716",
                },
            ]
        }
    },
    "cniResult": {
        "Interfaces": {
            "eth0": {
                "IPConfigs": [{"IP": "10.88.7.6", "Gateway": "10.88.7.1"}],
                "Mac": "4e:52:2f:79:73:8f",
                "Sandbox": "/var/run/netns/cni-8cc7a0bd-fa68-17ce-020e-c5df8fe92716",
            },
            "lo": {
                "IPConfigs": [{"IP": "127.0.0.1", "Gateway": ""}, {"IP": "::1", "Gateway": ""}],
                "Mac": "00:00:00:00:00:00",
                "Sandbox": "/var/run/netns/cni-8cc7a0bd-fa68-17ce-020e-c5df8fe92716",
            },
            "nlcri0": {"IPConfigs": None, "Mac": "9e:89:d1:06:15:9e", "Sandbox": ""},
            "vethbdec704c": {"IPConfigs": None, "Mac": "e6:f4:ce:38:aa:d3", "Sandbox": ""},
        },
        "DNS": [{}, {}],
        "Routes": [{"dst": "0.0.0.0/0"}],
    },
}
CONTAINER_INFO = {
    "sandboxID": "b30121c8a782",
    "pid": 1120,
    "removing": False,
    "runtimeSpec": {
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "ipc", "path": "/proc/1060/ns/ipc"},
                {"type": "uts", "path": "/proc/1060/ns/uts"},
                {"type": "mount"},
                {"type": "network", "path": "/proc/1060/ns/net"},
            ]
        }
    },
}


def test_sandbox_verbose_info_gives_pid_netns_and_cni_result() -> None:
    info = messages.parse_verbose_info({"info": json.dumps(SANDBOX_INFO)})
    assert info.pid == 1060
    assert info.netns_path == "/var/run/netns/cni-8cc7a0bd-fa68-17ce-020e-c5df8fe92716"
    assert info.cni_result is not None
    assert messages.cni_result_pod_ips(info.cni_result) == {"eth0": ("10.88.7.6",)}


def test_container_verbose_info_names_the_sandbox_pids_netns() -> None:
    info = messages.parse_verbose_info({"info": json.dumps(CONTAINER_INFO)})
    assert (info.pid, info.netns_path, info.cni_result) == (1120, "/proc/1060/ns/net", None)


@pytest.mark.parametrize(
    ("info", "error"),
    [
        ({}, "no 'info' key in the verbose answer"),
        ({"info": "{"}, "is not JSON"),
        ({"info": "[]"}, "is not a JSON object"),
        ({"info": json.dumps({"pid": 0})}, "pid = 0: not a process id"),
    ],
)
def test_unusable_verbose_info_is_a_named_error(info: dict[str, str], error: str) -> None:
    with pytest.raises(messages.InfoError, match=error):
        messages.parse_verbose_info(info)


def test_a_cni_result_without_interfaces_is_an_error() -> None:
    with pytest.raises(messages.InfoError, match="no Interfaces object"):
        messages.cni_result_pod_ips({"Routes": []})


CLUSTER_FIRST = messages.DnsConfig(
    ("10.96.0.10",),
    ("e2e-cri.svc.cluster.local", "svc.cluster.local", "cluster.local"),
    ("ndots:5",),
)


def test_a_pod_with_dns_gets_kubelets_resolv_conf_through_the_sandbox_config() -> None:
    config = messages.pod_sandbox_config(dataclasses.replace(POD, dns=CLUSTER_FIRST))
    assert config.HasField("dns_config")
    assert list(config.dns_config.servers) == ["10.96.0.10"]
    assert list(config.dns_config.searches) == list(CLUSTER_FIRST.searches)
    assert list(config.dns_config.options) == ["ndots:5"]
    assert not messages.pod_sandbox_config(POD).HasField("dns_config")  # the runtime's default
    assert CLUSTER_FIRST.resolv_conf() == [
        "nameserver 10.96.0.10",
        "search e2e-cri.svc.cluster.local svc.cluster.local cluster.local",
        "options ndots:5",
    ]


def test_dns_beyond_what_a_resolver_reads_is_refused() -> None:
    many = messages.DnsConfig(("1.1.1.1",) * 4, tuple(f"d{i}.local" for i in range(7)))
    problems = messages.validate_pod(dataclasses.replace(POD, dns=many))
    assert problems == [
        "pod echo-a: 4 DNS servers; give 1 to 3 (a resolver reads no more)",
        "pod echo-a: 7 DNS search domains; give at most 6",
    ]
    none = messages.validate_pod(dataclasses.replace(POD, dns=messages.DnsConfig(())))
    assert none == ["pod echo-a: 0 DNS servers; give 1 to 3 (a resolver reads no more)"]
