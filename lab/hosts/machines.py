"""The lab's machines: one handle over vagrant, libvirt and SSH for one lab definition, plus
the host preparation and the rendered files they need. Orchestration only: every side effect
goes through an adapter behind a protocol (`lab.adapters.protocols`), so unit tests drive this
handle with strict fakes; libvirt itself is imported only when the real adapter is built."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from lab.adapters import sandbox
from lab.adapters.host import probe_host_facts
from lab.adapters.protocols import LabObjects, LibvirtPort, RunningDomain, VagrantPort
from lab.adapters.ssh import SshChannel
from lab.common.errors import CommandFailed, LabStateError, UsageError
from lab.hosts.hypervisor import HypervisorChoice, choose_hypervisor
from lab.hosts.parse import MachineState, SshTarget, parse_ssh_config
from lab.hosts.render import render_lab_files
from lab.hosts.vagrantfile import private_network_name
from lab.model import instance, paths
from lab.model.config import Lab
from lab.model.labfile import shipped_networks
from lab.model.underlay import machine_names, router_node

log = logging.getLogger(__name__)

# taken by the nightly right after provisioning; the disruptive tests restore it when needed
PROVISIONED_SNAPSHOT = "netlab-provisioned"


def hypervisor(lab: Lab) -> HypervisorChoice:
    return choose_hypervisor(lab.vm.hypervisor, probe_host_facts())


def flannel_upstream(lab: Lab) -> str | None:
    """The upstream flannel manifest (pinned by checksum; cached, else downloaded)."""
    if lab.pod_network.flannel is None:
        return None
    from lab.adapters.fetch import fetch_pinned

    fl = lab.pod_network.flannel
    return fetch_pinned(fl.manifest_url, fl.manifest_sha256).decode()


def render(lab: Lab) -> list[Path]:
    """Write every rendered file under .lab/<lab>/; returns the paths written."""
    upstream = flannel_upstream(lab)
    choice = hypervisor(lab)
    if choice.warning:
        log.warning("%s", choice.warning)
    state = paths.state_dir(lab.name)
    written = []
    files = render_lab_files(lab, choice, upstream)
    if lab.definition and not (state / instance.RECORD).exists():  # an instance, kept
        files[instance.RECORD] = instance.render_record(lab)
    try:
        state.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            path = state / name
            path.write_text(content)
            written.append(path)
    except OSError as exc:
        raise UsageError(
            f"cannot write the lab's state under {state} ({exc.strerror or exc}: "
            f"{exc.filename or state}); set NETLAB_STATE to a writable directory"
        ) from None
    return written


def new_instance(
    lab: Lab, tag: str, libvirt: LibvirtPort | None = None, for_this_run: bool = True
) -> Lab:
    """An instance of `lab` (lab/model/instance.py), named after it and `tag`, on private and
    management ranges that no host interface, no libvirt network and no lab file under labs/
    holds; recorded under .lab/<instance>/. `for_this_run`: this process removes it at its
    end, and a later run removes it if this one was killed first. Starts libvirt (in the
    lab's namespace) to ask it."""
    from lab.adapters.host import probe_host_networks
    from lab.hosts.hostcheck import parse_libvirt_network_xml

    sandbox.start()
    port = libvirt if libvirt is not None else real_libvirt()
    if for_this_run:
        sweep_stale_instances(port)
    held = [s for xml in port.network_xmls() for s in parse_libvirt_network_xml(xml).subnets]
    taken = [*probe_host_networks(), *held, *shipped_networks()]
    made = instance.derive_instance(lab, instance.instance_name(lab, tag), taken)
    record_instance(made, os.getpid() if for_this_run else 0)
    return made


def record_instance(made: Lab, maker: int) -> None:
    """Write the record by which `python -m lab VERB NAME` finds the instance `made` (again,
    after a destroy removed it with the machines); `maker` as in instance.render_record."""
    state = paths.state_dir(made.name)
    state.mkdir(parents=True, exist_ok=True)
    (state / instance.RECORD).write_text(instance.render_record(made, maker))


def sweep_stale_instances(libvirt: LibvirtPort) -> list[str]:
    """Remove the instances runs of this checkout made for themselves and could not remove
    (killed first): what libvirt holds of each, and its record."""
    records = {}
    for path in paths.state_root().glob(f"*/{instance.RECORD}"):
        try:
            records[path.parent.name] = instance.parse_record(path.read_text())
        except (OSError, ValueError):
            continue
    gone = instance.stale(records, _alive)
    for name in gone:
        log.warning("removing instance %s: the run that made it is gone", name)
        libvirt.sweep(f"netlab-{name}_")
        shutil.rmtree(paths.state_dir(name), ignore_errors=True)
    return gone


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_host(
    lab: Lab, libvirt: LibvirtPort | None = None, box: bool = True, sweep: bool = True
) -> None:
    """libvirt reachable, the box and the runtime's images built (they need the network, so
    before this process joins the lab namespace, which has none; and before libvirt is first
    called, so that libvirtd's first QEMU probes run meanwhile), what an earlier run left of
    this lab removed, the box added to vagrant, then this process inside the namespace.
    `box=False` (a verb on machines that exist: status, ssh, provision, destroy, tests that
    attach) leaves the box alone: a changed box/ is built and swapped in by the next `up`,
    and never stops a person from reaching or destroying the machines made from the old one.
    Nor does it remove anything: a lab of that name running from another checkout of this
    repository (no vagrant record here) is an orphan only to a checkout about to make one.
    `sweep=False`: remove nothing even so (a suite that will make an instance of its own)."""
    netns = sandbox.start()
    building = box and lab.vm.box_build
    from lab.adapters import imagebuild
    from lab.hosts import box as box_builder

    # the box carries the runtime's images: both are built (from Debian packages, cached) side
    # by side; a lab on another box still needs the images for provisioning to import them
    if building:
        box_builder.build_with_images(box_builder.inputs_key())
    elif lab.runtime == "containerd":
        imagebuild.build()
    if box and sweep:
        sweep_orphans(lab, libvirt if libvirt is not None else real_libvirt())
    if building:
        box_builder.ensure_box(lab)  # built above: adds it to vagrant when vagrant has another
    sandbox.enter(netns)


def sweep_orphans(lab: Lab, libvirt: LibvirtPort) -> LabObjects:
    """libvirt objects of this lab that no vagrant record here owns: left by a run that was
    killed, or by a machine image taken while a lab ran. They would collide with `up` and hold
    the old box's volume, so they go before anything else; a lab this checkout knows is kept."""
    if (paths.state_dir(lab.name) / ".vagrant").exists():
        return LabObjects()
    found = libvirt.list_lab_objects(lab.prefix)
    if not found:
        return found
    log.warning(
        "lab %s: removing what an earlier run left in libvirt, with no vagrant record of it "
        "under %s (%s)",
        lab.name,
        paths.state_dir(lab.name),
        found,
    )
    return libvirt.sweep(lab.prefix)


def held_elsewhere(lab: Lab, held: LabObjects) -> str:
    """Why a lab that libvirt holds is not running as far as this checkout knows ("" when
    libvirt holds no domain of it): a second checkout of this repository has no vagrant
    record of the first one's lab."""
    if not held.domains:
        return ""
    return (
        f"libvirt holds its domains ({', '.join(held.domains)}) with no vagrant record of "
        f"them under {paths.state_dir(lab.name)}: made from another checkout of this "
        "repository? Use that checkout, or set NETLAB_STATE to its .lab directory"
    )


def real_vagrant(lab: Lab, on_line: Callable[[str], None] | None) -> VagrantPort:
    from lab.adapters.vagrant import BoundedVagrant

    return BoundedVagrant(lab.name, paths.state_dir(lab.name) / "logs" / "vagrant.log", on_line)


def ssh_config_doubts(
    targets: Mapping[str, SshTarget],
    vagrant_ids: Mapping[str, str],
    running: Mapping[str, RunningDomain | None],
) -> list[str]:
    """Why a cached ssh-config may be stale, one reason per node (node -> what vagrant
    recorded, what libvirt runs); [] when every node's cached address is its domain's lease."""
    doubts = []
    for node, recorded in vagrant_ids.items():
        domain, target = running.get(node), targets.get(node)
        if target is None:
            doubts.append(f"{node}: not in the cached ssh-config")
        elif not recorded:
            doubts.append(f"{node}: no vagrant record in this checkout")
        elif domain is None:
            doubts.append(f"{node}: its domain is not running")
        elif domain.uuid != recorded:
            doubts.append(f"{node}: runs domain {domain.uuid}, vagrant made {recorded}")
        elif target.hostname not in domain.lease_addresses:
            doubts.append(
                f"{node}: cached address {target.hostname} is not among its leases "
                f"({', '.join(domain.lease_addresses) or 'none'})"
            )
    return doubts


def real_libvirt() -> LibvirtPort:
    from lab.adapters.libvirt import Libvirt

    return Libvirt()


class LabMachines:
    """A lab's live side: its VMs through vagrant and libvirt, and an SSH channel per node."""

    def __init__(
        self,
        lab: Lab,
        on_line: Callable[[str], None] | None = None,
        log_tag: str = "",
        vagrant: VagrantPort | None = None,
        libvirt: LibvirtPort | None = None,
    ) -> None:
        self.lab = lab
        self.log_tag = log_tag  # per-process node logs (xdist workers): logs/<node>.<tag>.log
        self.state = paths.state_dir(lab.name)
        self.logs = self.state / "logs"
        self.vagrant = vagrant if vagrant is not None else real_vagrant(lab, on_line)
        self._libvirt = libvirt
        self._channels: dict[str, SshChannel] | None = None
        self._router: SshChannel | None = None

    @property
    def libvirt(self) -> LibvirtPort:
        if self._libvirt is None:
            self._libvirt = real_libvirt()
        return self._libvirt

    # -- setup ------------------------------------------------------------------------------

    def prepare(self, box: bool = True) -> None:
        """The host prepared for this lab (libvirt, box, namespace) and its files rendered;
        `box=False` for machines that exist already (see prepare_host)."""
        prepare_host(self.lab, self._libvirt, box)
        render(self.lab)

    def domain(self, node: str) -> str:
        return f"{self.lab.prefix}{node}"

    def private_network(self, node: str) -> str:
        """The libvirt network of the node's private NIC (its segment's on a routed lab)."""
        return private_network_name(self.lab, self.lab.node(node))

    # -- lifecycle --------------------------------------------------------------------------

    def up(self, parallel: bool = True) -> float:
        """Bring every node up; on failure (or Ctrl-C) sweep what was half-created."""
        start = time.monotonic()
        budget = self.lab.vm.boot_timeout_s + 120 * len(machine_names(self.lab))
        try:
            with self.vagrant.budget(budget):
                self.vagrant.up_all(parallel)
        except BaseException:
            log.warning("up failed: removing what it created (log: %s)", self.logs / "vagrant.log")
            self.sweep()
            raise
        self.refresh_ssh_config()
        return time.monotonic() - start

    def states(self) -> dict[str, MachineState]:
        return self.vagrant.machine_states()

    def expect_running(self) -> None:
        states = self.states()
        down = [f"{n}: {s.state}" for n, s in states.items() if s.state != "running"]
        if down or not states:
            raise LabStateError(
                f"lab {self.lab.name} is not running ({', '.join(down) or 'no machines'}); "
                f"run `make lab LAB={self.lab.name}`"
            )

    def halt(self) -> None:
        with self.vagrant.budget(300):
            self.vagrant.halt_all()

    def destroy(self) -> LabObjects:
        """vagrant destroy (if it still knows the machines), then sweep by prefix."""
        self.close()
        if (self.state / ".vagrant").exists():
            try:
                with self.vagrant.budget(300):
                    self.vagrant.destroy_all()
            except CommandFailed as exc:
                log.warning("vagrant destroy failed (%s); sweeping by prefix", exc.exit_code)
        swept = self.sweep()
        if self.lab.definition:  # an instance is gone with its machines (its logs stay)
            (self.state / instance.RECORD).unlink(missing_ok=True)
        return swept

    def sweep(self) -> LabObjects:
        """Everything of this lab in libvirt, after stopping any vagrant still creating it."""
        self.close()
        self.vagrant.kill_strays()
        swept = self.libvirt.sweep(self.lab.prefix)
        self.forget()
        return swept

    def forget(self) -> None:
        """Drop vagrant's and our own record of machines that no longer exist (an instance's
        own record stays: its run brings it up again by that name; destroy removes it)."""
        shutil.rmtree(self.state / ".vagrant", ignore_errors=True)
        (self.state / "ssh-config").unlink(missing_ok=True)

    def leftovers(self) -> LabObjects:
        return self.libvirt.list_lab_objects(self.lab.prefix)

    def reload(self, node: str) -> None:
        self.close()
        with self.vagrant.budget(self.lab.vm.boot_timeout_s + 120):
            self.vagrant.reload_node(node)
        self.refresh_ssh_config()

    def snapshot_save(self, name: str) -> None:
        self.close()
        with self.vagrant.budget(300):
            self.vagrant.snapshot_save_all(name)

    def snapshot_restore(self, name: str) -> None:
        self.close()
        with self.vagrant.budget(600):
            self.vagrant.snapshot_restore_all(name)
        self.refresh_ssh_config()

    def snapshot_list(self) -> str:
        with self.vagrant.budget(60):
            return self.vagrant.snapshot_list_all()

    def snapshot_delete(self, name: str) -> None:
        with self.vagrant.budget(120):
            self.vagrant.snapshot_delete_all(name)

    # -- ssh --------------------------------------------------------------------------------

    def refresh_ssh_config(self) -> dict[str, SshTarget]:
        """Ask vagrant again (addresses can change after a reboot or restore); the SSH channels
        handed out before keep working: they are the same objects, pointed at the new target."""
        self.close()
        text = self.vagrant.ssh_config_text()
        targets = parse_ssh_config(text)
        known = {**(self._channels or {}), **({} if self._router is None else {"": self._router})}
        for channel in known.values():
            if channel.name in targets:
                channel.target = targets[channel.name]
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "ssh-config").write_text(text)
        return targets

    def confirmed_ssh_targets(self) -> dict[str, SshTarget] | None:
        """The cached ssh-config (written when the lab came up) when libvirt confirms it,
        without asking vagrant (2 s of Ruby per call): every node's domain is the one vagrant
        made from this checkout, runs, and holds the DHCP lease of the address the cache names.
        None when anything differs or cannot be read: then ask vagrant."""
        cached = self.state / "ssh-config"
        try:
            targets = parse_ssh_config(cached.read_text())
        except (OSError, ValueError):
            return None
        nodes = self.lab.node_names
        running = self.libvirt.running_domains([self.domain(n) for n in nodes])
        doubts = ssh_config_doubts(
            targets,
            {n: self._vagrant_record(n) for n in nodes},
            {n: running.get(self.domain(n)) for n in nodes},
        )
        if doubts:
            log.debug("cached ssh-config not confirmed: %s", "; ".join(doubts))
            return None
        return targets

    def _vagrant_record(self, node: str) -> str:
        """The libvirt domain UUID vagrant recorded for `node` in this checkout ("": none)."""
        record = self.state / ".vagrant" / "machines" / node / "libvirt" / "id"
        try:
            return record.read_text().strip()
        except OSError:
            return ""

    def ssh_targets(self) -> dict[str, SshTarget]:
        cached = self.state / "ssh-config"
        if cached.exists():
            return parse_ssh_config(cached.read_text())
        return self.refresh_ssh_config()

    def expect_ssh_config(self) -> None:
        if not (self.state / "ssh-config").exists():
            raise LabStateError(
                f"lab {self.lab.name} has no cached ssh-config ({self.state / 'ssh-config'}): "
                f"is it up? run `make lab LAB={self.lab.name}`"
            )

    def channels(self) -> dict[str, SshChannel]:
        """name -> SSH channel, in lab order; built from one ssh-config call."""
        if self._channels is None:
            targets = self.ssh_targets()
            missing = [n for n in self.lab.node_names if n not in targets]
            if missing:
                raise LabStateError(f"no ssh-config for {', '.join(missing)}: is the lab up?")
            suffix = f".{self.log_tag}" if self.log_tag else ""
            self._channels = {
                name: SshChannel(
                    self.lab.name, name, targets[name], self.logs / f"{name}{suffix}.log"
                )
                for name in self.lab.node_names
            }
        return self._channels

    def router(self) -> SshChannel:
        """The router VM's SSH channel (a lab with a routed underlay): the faults of the
        underlay and its provisioning go through it; it runs no pods and no agent."""
        if self._router is None:
            name = router_node(self.lab).name  # raises on a flat lab
            targets = self.ssh_targets()
            if name not in targets:
                raise LabStateError(f"no ssh-config for the router {name}: is the lab up?")
            suffix = f".{self.log_tag}" if self.log_tag else ""
            self._router = SshChannel(
                self.lab.name, name, targets[name], self.logs / f"{name}{suffix}.log"
            )
        return self._router

    def close(self) -> None:
        """Close every SSH connection; the channel objects stay valid and reconnect on use."""
        for channel in (self._channels or {}).values():
            channel.close()
        if self._router is not None:
            self._router.close()
