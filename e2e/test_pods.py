"""The pod model: one IP per pod, seen the same by the pod and by its peers; containers of a
pod share one network namespace (the guide's busybox + nginx example)."""

from __future__ import annotations

from collections.abc import Callable

from e2e import checks
from e2e.drivers.base import Container, Pod
from e2e.drivers.cni import CniDriver

# nginx's stand-in: answers every connection on :80 with nginx's welcome line. (socat strips
# the quotes of its address strings, so the reply is a plain `echo`.)
NGINX = Container(
    "nginx", ("socat", "TCP-LISTEN:80,fork,reuseaddr", "SYSTEM:echo Welcome to nginx!")
)
BUSYBOX = Container("busybox", ("sh", "-c", "while true; do echo hello; sleep 1; done"))


def test_every_pod_has_one_ip_which_it_and_its_peers_see_alike(
    slot: tuple[str, int], fleet: dict[tuple[str, int], Pod], driver: CniDriver
) -> None:
    pod = fleet[slot]
    # a peer on another node when there is one, so the source crosses the pod network
    peers = [p for p in fleet.values() if p.node != pod.node] or [
        p for p in fleet.values() if p.name != pod.name
    ]
    checks.expect_no_problems(
        checks.pod_identity_problems(driver, pod, peers[0]), f"pod {pod.name} on {pod.node}"
    )


def test_containers_of_a_pod_share_one_network_namespace(
    node_name: str, make_pod: Callable[..., Pod], driver: CniDriver
) -> None:
    pod = make_pod(node_name, (BUSYBOX, NGINX))
    problems = checks.shared_netns_problems(
        driver, pod, "busybox", "nginx", 80, "Welcome to nginx!"
    )
    checks.expect_no_problems(problems, f"pod {pod.name} (busybox + nginx) on {node_name}")
