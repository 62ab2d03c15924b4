"""CNI-direct driver: we are the container runtime. On a node, over SSH, a "pod" is a network
namespace (the sandbox) wired by the node's own CNI conflist, invoked plugin by plugin exactly
as the CNI spec says a runtime must; its "containers" are processes inside that namespace, run
as transient systemd units named after the pod (so they are easy to find, stop and sweep).
The ADD result is cached on the node, as runtimes do, so DEL and CHECK get `prevResult`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import Any

import pytest

from e2e.drivers.base import Container, ExecResult, Pod, run_on
from lab import cni, compat
from lab.adapters.ssh import SshChannel
from lab.commands import Command, Output, batch, cmd, render_remote
from lab.config import Lab

CONF_DIR = "/etc/cni/net.d"
RESULT_CACHE = "/var/lib/netlab/cni"
IFNAME = "eth0"
POD_PREFIX = "nl-"


def cni_bin_dir(lab: Lab) -> str:
    """Debian's containernetworking-plugins vs kubeadm's kubernetes-cni."""
    return "/usr/lib/cni" if lab.os.family == "debian12" else "/opt/cni/bin"


class CniCallFailed(Exception):
    def __init__(self, message: str, error: cni.CniError | None, result: ExecResult) -> None:
        self.error = error
        self.result = result
        super().__init__(f"{message}\n  reproduce: {result.reproduce}")


@dataclass
class CommandLog:
    """Everything a test ran through the driver, for its diagnostics bundle."""

    entries: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, node: str, remote: str, result: ExecResult) -> None:
        with self.lock:
            self.entries.append(
                f"[{node}] $ {remote}\n[exit {result.exit_code}]\n{result.stdout}{result.stderr}"
            )


class CniDriver:
    name = "cni"

    def __init__(self, lab: Lab, nodes: dict[str, SshChannel], log: CommandLog | None = None):
        self.lab = lab
        self.nodes = nodes
        self.bin_dir = cni_bin_dir(lab)
        self.log = log or CommandLog()
        self._conflists: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    # -- running things on nodes ------------------------------------------------------------

    def _run(self, node: str, command: Command, timeout: float = 60) -> ExecResult:
        result = run_on(self.nodes[node], command, timeout)
        self.log.add(node, render_remote(command), result)
        return result

    def _must(self, node: str, command: Command, timeout: float = 60) -> ExecResult:
        result = self._run(node, command, timeout)
        if not result.ok:
            raise CniCallFailed(
                f"{node}: {' '.join(command.argv)} exited {result.exit_code}: "
                f"{(result.stderr or result.stdout).strip()[:300]}",
                None,
                result,
            )
        return result

    def probe(self, node: str, *commands: Command, timeout: float = 60) -> tuple[Output, ...]:
        """Several commands in one round trip; each one's stdout and exit code."""
        res, outputs = self.nodes[node].probe(commands, timeout=timeout)
        self.log.add(node, res.command, ExecResult(res.exit_code, res.stdout, res.stderr, ""))
        return outputs

    def exec_on_node(self, node: str, argv: tuple[str, ...], timeout: float = 30) -> ExecResult:
        return self._run(node, Command(argv), timeout)

    # -- the node's network configuration ---------------------------------------------------

    def conflist(self, node: str) -> tuple[str, dict[str, Any]]:
        """(path, content) of the conflist the node's runtime would use: the first in
        /etc/cni/net.d in lexical order, as kubelet picks it."""
        with self._lock:
            if node not in self._conflists:
                listing = self._must(node, cmd("ls", "-1", CONF_DIR)).stdout.split()
                names = sorted(n for n in listing if n.endswith(".conflist"))
                if not names:
                    raise CniCallFailed(
                        f"{node}: no .conflist in {CONF_DIR}",
                        None,
                        self._run(node, cmd("ls", "-l", CONF_DIR)),
                    )
                path = f"{CONF_DIR}/{names[0]}"
                self._conflists[node] = (
                    path,
                    json.loads(self._must(node, cmd("cat", path)).stdout),
                )
            return self._conflists[node]

    def node_subnets(self, node: str) -> tuple[IPv4Network, ...]:
        """The pod subnet(s) this node hands out: host-local ranges of its conflist, or, for
        flannel (which delegates with the subnet flanneld leased), /run/flannel/subnet.env."""
        _, conf = self.conflist(node)
        nets = cni.node_subnets_from_conflist(conf)
        if not nets and any(p.get("type") == "flannel" for p in conf["plugins"]):
            nets = cni.parse_flannel_subnet_env(
                self._must(node, cmd("cat", "/run/flannel/subnet.env")).stdout
            )
        return nets

    # -- CNI verbs --------------------------------------------------------------------------

    def call_plugin(
        self,
        verb: cni.Verb,
        node: str,
        conflist: dict[str, Any],
        index: int,
        container_id: str,
        prev: dict[str, Any] | None,
        timeout: float = 60,
    ) -> tuple[ExecResult, cni.Invocation]:
        inv = cni.invocation(
            verb,
            conflist,
            index,
            container_id,
            f"/var/run/netns/{container_id}",
            IFNAME,
            self.bin_dir,
            prev,
        )
        return self._run(node, Command(inv.argv(self.bin_dir), stdin=inv.stdin), timeout), inv

    def invoke(
        self,
        verb: cni.Verb,
        node: str,
        container_id: str,
        prev: dict[str, Any] | None,
        conflist: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Run every plugin of the list for `verb`; ADD chains prevResult from plugin to plugin."""
        conf = conflist if conflist is not None else self.conflist(node)[1]
        result = prev
        for index in cni.plugin_order(conf, verb):
            res, inv = self.call_plugin(verb, node, conf, index, container_id, result)
            if not res.ok:
                raise CniCallFailed(
                    f"{node}: CNI {verb} of plugin {inv.plugin!r} for {container_id} failed: "
                    f"{res.stdout.strip() or res.stderr.strip()}",
                    cni.parse_error(res.stdout),
                    res,
                )
            if verb == "ADD":
                result = json.loads(res.stdout)
        return result

    # -- pods -------------------------------------------------------------------------------

    def create_sandbox(self, node: str, name: str) -> None:
        self._must(
            node,
            batch(
                cmd("ip", "netns", "add", name),
                cmd("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"),
            ),
        )

    def create_pod(self, name: str, node: str, containers: tuple[Container, ...]) -> Pod:
        self.create_sandbox(node, name)
        try:
            result = self.invoke("ADD", node, name, None)
            assert result is not None
            addresses = cni.parse_result(json.dumps(result)).sandbox_addresses
            if not addresses:
                raise CniCallFailed(
                    f"{node}: ADD for {name} returned no sandbox address",
                    None,
                    ExecResult(0, json.dumps(result), "", ""),
                )
            pids = self.start_containers(node, name, result, containers)
        except BaseException:
            self.teardown(node, name)
            raise
        return Pod(
            name,
            node,
            addresses[0].ip,
            containers,
            {"result": result, "pids": pids, "addresses": [str(a) for a in addresses]},
        )

    @staticmethod
    def unit(pod: str, container: str) -> str:
        return f"{pod}-{container}"

    def start_containers(
        self, node: str, pod: str, result: dict[str, Any], containers: tuple[Container, ...]
    ) -> dict[str, int]:
        """Cache the ADD result (as runtimes do, for CHECK and DEL), start every container as
        a transient unit inside the sandbox and learn their PIDs: one round trip."""
        units = [self.unit(pod, c.name) for c in containers]
        systemd = compat.systemd_version(self.lab.os.family)  # el7: 219, no --collect/--value
        starts = [
            Command(compat.start_in_netns(systemd, unit, pod, c.argv))
            for unit, c in zip(units, containers, strict=True)
        ]
        show = [Command(compat.main_pids_argv(systemd, units))] if units else []
        out = self._must(
            node,
            batch(
                Command(
                    ("install", "-D", "-m", "0600", "/dev/stdin", f"{RESULT_CACHE}/{pod}.json"),
                    stdin=json.dumps(result),
                ),
                *starts,
                *show,
            ),
        ).stdout
        pids = {c.name: pid for c, pid in zip(containers, compat.parse_main_pids(out), strict=True)}
        dead = [name for name, pid in pids.items() if pid == 0]
        if dead:
            raise CniCallFailed(
                f"{node}: container(s) {dead} of {pod} did not start",
                None,
                self._run(node, cmd("systemctl", "status", "--no-pager", *units)),
            )
        return pids

    def exec(
        self, pod: Pod, container: str, argv: tuple[str, ...], timeout: float = 30
    ) -> ExecResult:
        """Run argv in the network namespace of the container's own process."""
        pid = pod.details["pids"][container]  # type: ignore[index]
        return self._run(pod.node, cmd("nsenter", "-t", str(pid), "-n", "--", *argv), timeout)

    def check(self, pod: Pod) -> None:
        path, conf = self.conflist(pod.node)
        if not compat.cni_check_allowed(str(conf["cniVersion"])):
            pytest.skip(
                f"{path} on {pod.node} is cniVersion {conf['cniVersion']}: no CHECK before 0.4.0"
            )
        self.invoke("CHECK", pod.node, pod.name, pod.details["result"])  # type: ignore[arg-type]

    def delete_pod(self, pod: Pod) -> None:
        self.teardown(pod.node, pod.name, pod.details.get("result"))  # type: ignore[arg-type]

    def teardown(self, node: str, name: str, prev: dict[str, Any] | None = None) -> None:
        """Stop the containers, CNI DEL (with the cached ADD result), drop the sandbox. Every
        part runs even if an earlier one failed; the first failure is raised at the end."""
        failures: list[BaseException] = []

        def attempt(fn: Callable[[], object]) -> None:
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 (collected and re-raised below)
                failures.append(exc)

        _, cached = self.probe(
            node,
            cmd("systemctl", "stop", f"{name}-*.service"),
            cmd("cat", f"{RESULT_CACHE}/{name}.json"),
        )
        if prev is None and cached.ok:
            prev = json.loads(cached.stdout)
        attempt(lambda: self.invoke("DEL", node, name, prev))
        # the sandbox may already be gone (a rebooted node): that is not a failure
        attempt(
            lambda: self._run(
                node,
                batch(
                    cmd("rm", "-f", f"{RESULT_CACHE}/{name}.json"),
                    cmd("ip", "netns", "delete", name),
                ),
            )
        )
        if failures:
            raise failures[0]

    def sweep(self, keep_prefix: str) -> list[str]:
        """Remove every sandbox of earlier runs (name starts with nl- but not keep_prefix)."""
        removed = []
        for node in self.nodes:
            listing = self._run(node, cmd("ip", "netns", "list")).stdout
            for line in listing.splitlines():
                name = line.split()[0] if line.strip() else ""
                if name.startswith(POD_PREFIX) and not name.startswith(keep_prefix):
                    self.teardown(node, name)
                    removed.append(f"{node}/{name}")
        return removed


def echo_server(port: int = 8080) -> Container:
    """A container that answers every TCP connection with the client address it saw."""
    return Container(
        "echo", ("socat", f"TCP-LISTEN:{port},fork,reuseaddr", "SYSTEM:echo $SOCAT_PEERADDR")
    )


def client_probe(ip: IPv4Address | str, port: int = 8080, timeout_s: int = 5) -> tuple[str, ...]:
    """Connect, print what the server answered (the source address it saw), bounded."""
    return ("timeout", str(timeout_s), "socat", "-u", f"TCP:{ip}:{port},connect-timeout=3", "-")
