"""The Kubernetes cluster as the suite reads and changes it: `kubectl --kubeconfig
/etc/kubernetes/admin.conf ...` over the control-plane node's channel, kubectl's JSON parsed by
`lab.k8s`. Cluster-wide state (nodes, pods, services, endpoints, flannel's and kubeadm's
configuration), namespaces labelled with the run, Services and their endpoints. The pod driver
(e2e/drivers/k8s.py) makes and probes pods through it; Kubernetes checks read the cluster."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from ipaddress import IPv4Address
from typing import Any

from e2e.drivers.base import DriverError, ExecResult, NodeRunner
from lab import k8s
from lab.common import waits
from lab.common.commands import Command, render_remote
from lab.model.config import Lab

NAMESPACE_READY = waits.Policy("namespace has its default service account", timeout_s=60)
ENDPOINTS_READY = waits.Policy("service has every expected endpoint ready", timeout_s=120)
# a namespace of a fixed name (the run's Services', e2e-k8s) that an earlier run's sweep or
# end deleted: kubectl returns at once, the namespace finalizers take a while
NAMESPACE_GONE = waits.Policy(
    "a namespace of an earlier run finished terminating", timeout_s=180, interval_s=2
)


class KubectlFailed(DriverError):
    def __init__(self, what: str, result: ExecResult) -> None:
        output = (result.stderr.strip() or result.stdout.strip())[-800:]
        super().__init__(f"{what}: kubectl exited {result.exit_code}: {output}", result)


class KubeCluster:
    def __init__(
        self,
        lab: Lab,
        runner: NodeRunner,
        run_id: str,
        sleep: Callable[[float], None] = time.sleep,
        namespace_wait: waits.Policy = NAMESPACE_READY,
        endpoints_wait: waits.Policy = ENDPOINTS_READY,
        gone_wait: waits.Policy = NAMESPACE_GONE,
    ) -> None:
        if lab.control_plane is None:
            raise ValueError(f"lab {lab.name} has no control-plane node")
        self.lab = lab
        self.runner = runner
        self.run_id = run_id
        self.sleep = sleep
        self.namespace_wait = namespace_wait
        self.endpoints_wait = endpoints_wait
        self.gone_wait = gone_wait
        self.control_plane = lab.control_plane.name
        self._lock = threading.Lock()
        self._ready: set[str] = set()  # namespaces made, with their service account

    def _run(self, node: str, command: Command, timeout: float) -> ExecResult:
        return self.runner.run(node, command, timeout)

    def kubectl_command(self, *args: str, stdin: str | None = None) -> Command:
        return Command((*k8s.KUBECTL, *args), stdin=stdin)

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 60) -> ExecResult:
        """Run kubectl on the control-plane node; never raises for a non-zero exit."""
        return self._run(self.control_plane, self.kubectl_command(*args, stdin=stdin), timeout)

    def reproduce(self, *args: str) -> str:
        """The pasteable command for `kubectl ARGS` on the control plane (without running it)."""
        remote = render_remote(self.kubectl_command(*args))
        return self.runner.channels[self.control_plane].reproduce(remote)

    def must(self, what: str, *args: str, stdin: str | None = None, timeout: float = 60) -> str:
        result = self.kubectl(*args, stdin=stdin, timeout=timeout)
        if not result.ok:
            raise KubectlFailed(what, result)
        return result.stdout

    def _ns_args(self, namespace: str | None) -> tuple[str, ...]:
        return ("--all-namespaces",) if namespace is None else ("-n", namespace)

    # -- cluster state ----------------------------------------------------------------------

    def get_nodes(self) -> tuple[k8s.ClusterNode, ...]:
        return k8s.parse_nodes(self.must("list nodes", "get", "nodes", "-o", "json"))

    def get_pods(
        self, namespace: str | None = None, selector: str = ""
    ) -> tuple[k8s.ClusterPod, ...]:
        labels = ("-l", selector) if selector else ()
        out = self.must(
            "list pods", "get", "pods", *self._ns_args(namespace), *labels, "-o", "json"
        )
        return k8s.parse_pods(out)

    def get_services(self, namespace: str | None = None) -> tuple[k8s.Service, ...]:
        out = self.must("list services", "get", "services", *self._ns_args(namespace), "-o", "json")
        return k8s.parse_services(out)

    def label_pods(self, namespace: str, names: Sequence[str], key: str, value: str) -> None:
        """`key=value` on every pod of `names` (overwriting what it had)."""
        if names:
            self.must(
                f"label pods {', '.join(names)} {key}={value}",
                *k8s.label_pods_args(namespace, names, key, value),
            )

    def get_namespace(self, namespace: str) -> k8s.NamespaceInfo | None:
        """The namespace (its phase and labels), None when there is none."""
        out = self.must(
            f"read namespace {namespace}",
            "get",
            "namespace",
            namespace,
            "--ignore-not-found",
            "-o",
            "json",
        )
        if not out.strip():
            return None
        (found,) = k8s.parse_namespaces(out)
        return found

    def wait_until_gone(self, namespace: str) -> None:
        """Bounded wait until the namespace no longer exists (its finalizers are done)."""
        waits.wait_until(
            self.gone_wait,
            lambda: self.get_namespace(namespace),
            lambda ns: ns is None,
            sleep=self.sleep,
        )

    def get_endpoints(self, namespace: str | None = None) -> tuple[k8s.Endpoints, ...]:
        out = self.must(
            "list endpoints", "get", "endpoints", *self._ns_args(namespace), "-o", "json"
        )
        return k8s.parse_endpoints(out)

    def get_flannel_netconf(self) -> k8s.FlannelNetConf:
        out = self.must("read flannel's net-conf", *k8s.flannel_configmap())
        return k8s.parse_flannel_netconf(out)

    def get_kubeadm_networking(self) -> k8s.KubeadmNetworking:
        out = self.must(
            "read kubeadm's ClusterConfiguration", *k8s.system_configmap(k8s.KUBEADM_CONFIGMAP)
        )
        return k8s.parse_kubeadm_networking(out)

    # -- namespaces -------------------------------------------------------------------------

    def apply(self, *objects: Mapping[str, Any]) -> None:
        stdin = k8s.render_manifest(objects)
        self.must(
            "apply " + ", ".join(_describe(o) for o in objects), "apply", "-f", "-", stdin=stdin
        )

    def ensure_namespace(self, namespace: str) -> None:
        """Create the namespace (labelled with the run) and wait, bounded, for its default
        service account: a pod created before it exists is rejected."""
        with self._lock:
            if namespace in self._ready:
                return
        self.apply(k8s.render_namespace(namespace, self.run_id))
        waits.wait_until(
            self.namespace_wait,
            lambda: self.kubectl("-n", namespace, "get", "serviceaccount", "default", "-o", "name"),
            lambda r: r.ok,
            sleep=self.sleep,
        )
        with self._lock:
            self._ready.add(namespace)

    def delete_namespace(self, namespace: str) -> None:
        """Delete the namespace without waiting for its finalizers (a sweep finds it)."""
        self.must(
            f"delete namespace {namespace}",
            "delete",
            "namespace",
            namespace,
            "--ignore-not-found",
            "--wait=false",
        )
        with self._lock:
            self._ready.discard(namespace)

    def sweep(self, keep_prefix: str = "") -> list[str]:
        """Delete every e2e namespace (netlab.io/e2e=true) of another run: its run label is not
        this driver's run id (and its name does not start with `keep_prefix`, if given)."""
        selector = f"{k8s.E2E_LABEL}=true"
        out = self.must("list e2e namespaces", "get", "namespaces", "-l", selector, "-o", "json")
        stale = sorted(
            ns.name
            for ns in k8s.parse_namespaces(out)
            if ns.label(k8s.RUN_LABEL) != self.run_id
            and not (keep_prefix and ns.name.startswith(keep_prefix))
        )
        if stale:
            self.must(
                "delete stale e2e namespaces",
                "delete",
                "namespace",
                *stale,
                "--ignore-not-found",
                "--wait=false",
            )
        return stale

    def remove_run(self, run_id: str) -> list[str]:
        """Delete every e2e namespace of run `run_id` (an interrupted run's); the ones still
        listed right after (deletion continues in the cluster)."""
        selector = f"{k8s.E2E_LABEL}=true,{k8s.RUN_LABEL}={run_id}"
        out = self.must(
            "list the run's namespaces", "get", "namespaces", "-l", selector, "-o", "json"
        )
        mine = sorted(ns.name for ns in k8s.parse_namespaces(out))
        if mine:
            self.must(
                "delete the run's namespaces",
                "delete",
                "namespace",
                *mine,
                "--ignore-not-found",
                "--wait=false",
            )
        return []

    def dump(self, namespace: str) -> str:
        """What the namespace holds, for a failed test's report (never raises)."""
        parts = []
        for args in (
            ("get", "pods,services,endpoints", "-n", namespace, "-o", "wide"),
            ("describe", "pods", "-n", namespace),
            ("get", "events", "-n", namespace, "--sort-by=.lastTimestamp"),
        ):
            result = self.kubectl(*args)
            parts.append(f"$ kubectl {' '.join(args)}\n{result.stdout}{result.stderr}".rstrip())
        return "\n\n".join(parts)

    def create_service(
        self,
        namespace: str,
        name: str,
        selector: Mapping[str, str],
        port: int,
        target_port: int,
        service_type: k8s.ServiceType = "ClusterIP",
        node_port: int | None = None,
    ) -> k8s.Service:
        self.ensure_namespace(namespace)
        self.apply(
            k8s.render_service(
                name,
                namespace,
                self.run_id,
                selector,
                port,
                target_port,
                service_type,
                node_port,
            )
        )
        out = self.must(
            f"read service {name}", "-n", namespace, "get", "service", name, "-o", "json"
        )
        (service,) = k8s.parse_services(out)
        return service

    def wait_for_endpoints(
        self, namespace: str, service: str, ips: Sequence[IPv4Address]
    ) -> k8s.Endpoints:
        """Bounded wait until every one of `ips` is a ready address of the service."""
        want = set(ips)

        def probe() -> k8s.Endpoints:
            out = self.must(
                f"read endpoints {service}",
                "-n",
                namespace,
                "get",
                "endpoints",
                service,
                "-o",
                "json",
            )
            (endpoints,) = k8s.parse_endpoints(out)
            return endpoints

        return waits.wait_until(
            self.endpoints_wait, probe, lambda e: want <= set(e.ready_ips), sleep=self.sleep
        )


def _describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind', '?')} {where}{meta.get('name', '?')}"
