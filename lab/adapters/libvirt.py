"""libvirt-python: what the lab owns in libvirt (by name prefix), leak sweeps, and faults."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import libvirt

from lab.adapters.protocols import LabObjects, RunningDomain
from lab.common import waits

log = logging.getLogger(__name__)

URI = "qemu:///system"


def _silence_libvirt_errors() -> None:
    # libvirt prints every error to stderr by default; we raise them instead.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


@contextmanager
def connect(uri: str = URI) -> Iterator[libvirt.virConnect]:
    _silence_libvirt_errors()
    conn = libvirt.open(uri)
    try:
        yield conn
    finally:
        conn.close()


POOLS_IDLE = waits.Policy("libvirt storage pools idle (no volume being written)", timeout_s=180)


def refresh_pool(pool: libvirt.virStoragePool) -> bool:
    """Re-read the pool from disk; False if libvirt is writing into it right now.

    While a volume is being created or uploaded (vagrant-libvirt copying a box), libvirt
    refuses a refresh ("pool has asynchronous jobs running"). Volumes made through libvirt
    are listed without a refresh, so a listing stays complete for what the lab creates.
    """
    try:
        pool.refresh(0)
    except libvirt.libvirtError as err:
        if "asynchronous jobs" not in str(err):
            raise
        log.debug("pool %s busy: %s", pool.name(), err)
        return False
    return True


def _busy_pools(uri: str) -> list[str]:
    with connect(uri) as conn:
        return [
            p.name() for p in conn.listAllStoragePools() if p.isActive() and not refresh_pool(p)
        ]


def list_lab_objects(prefix: str, uri: str = URI) -> LabObjects:
    with connect(uri) as conn:
        domains = sorted(d.name() for d in conn.listAllDomains() if d.name().startswith(prefix))
        networks = sorted(n.name() for n in conn.listAllNetworks() if n.name().startswith(prefix))
        volumes = []
        for pool in conn.listAllStoragePools():
            if not pool.isActive():
                continue
            refresh_pool(pool)
            volumes += [
                f"{pool.name()}/{v.name()}"
                for v in pool.listAllVolumes()
                if v.name().startswith(prefix)
            ]
    return LabObjects(tuple(domains), tuple(sorted(volumes)), tuple(networks))


def network_xmls(uri: str = URI) -> tuple[str, ...]:
    """The XML of every network libvirt knows (active or not), whoever defined it."""
    with connect(uri) as conn:
        return tuple(net.XMLDesc(0) for net in conn.listAllNetworks())


def sweep(prefix: str, uri: str = URI) -> LabObjects:
    """Remove every domain (with its snapshots), volume and network whose name has `prefix`."""
    if not re.match(r"^netlab-[a-z0-9-]+_$", prefix):
        raise ValueError(f"refusing to sweep with prefix {prefix!r}: not a lab prefix")
    # a volume still being allocated cannot be deleted: let libvirt finish (or abort) it first
    waits.wait_until(POOLS_IDLE, lambda: _busy_pools(uri), lambda busy: not busy)
    found = list_lab_objects(prefix, uri)
    with connect(uri) as conn:
        for name in found.domains:
            dom = conn.lookupByName(name)
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(
                libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
            )
        for qualified in found.volumes:
            delete_volume(qualified, conn)
        for name in found.networks:
            net = conn.networkLookupByName(name)
            if net.isActive():
                net.destroy()
            net.undefine()
    if found:
        log.info("swept %s", found)
    return found


def delete_volume(qualified: str, conn: libvirt.virConnect | None = None) -> None:
    """Delete the volume "pool/volume"."""
    if conn is None:
        with connect() as own:
            delete_volume(qualified, own)
        return
    pool_name, vol_name = qualified.split("/", 1)
    conn.storagePoolLookupByName(pool_name).storageVolLookupByName(vol_name).delete(0)


# --- domain state and faults -----------------------------------------------------------------

STATE_NAMES = {
    libvirt.VIR_DOMAIN_NOSTATE: "nostate",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "blocked",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF: "shutoff",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "pmsuspended",
}


def domain_state(domain: str, uri: str = URI) -> str:
    with connect(uri) as conn:
        state, _reason = conn.lookupByName(domain).state()
        return STATE_NAMES.get(state, str(state))


def running_domains(names: Sequence[str], uri: str = URI) -> dict[str, RunningDomain]:
    """Each domain of `names` that runs -> its UUID and the IPv4 addresses of its DHCP leases
    (where vagrant-libvirt reads a machine's address for `ssh-config`). Domains that do not
    exist or do not run are left out; an unreachable libvirt answers {}."""
    found = {}
    try:
        with connect(uri) as conn:
            for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING):
                if dom.name() not in names:
                    continue
                leases = dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE)
                addresses = tuple(
                    sorted(
                        a["addr"]
                        for iface in leases.values()
                        for a in iface.get("addrs") or ()
                        if a.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4
                    )
                )
                found[dom.name()] = RunningDomain(dom.UUIDString(), addresses)
    except libvirt.libvirtError as err:
        log.debug("libvirt cannot list running domains: %s", err)
        return {}
    return found


def suspend(domain: str, uri: str = URI) -> None:
    with connect(uri) as conn:
        conn.lookupByName(domain).suspend()


def resume(domain: str, uri: str = URI) -> None:
    with connect(uri) as conn:
        conn.lookupByName(domain).resume()


def hard_reset(domain: str, uri: str = URI) -> None:
    """Like pressing the reset button: no clean shutdown."""
    with connect(uri) as conn:
        conn.lookupByName(domain).reset(0)


def _interface_xml(domain: libvirt.virDomain, network: str) -> str:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(domain.XMLDesc(0))
    for iface in root.iter("interface"):
        source = iface.find("source")
        if source is not None and source.get("network") == network:
            return ET.tostring(iface, encoding="unicode")
    raise LookupError(f"domain {domain.name()} has no interface on network {network}")


def set_link(domain: str, network: str, up: bool, uri: str = URI) -> None:
    """Set the link state of the domain's NIC on `network` (other NICs untouched)."""
    import xml.etree.ElementTree as ET

    with connect(uri) as conn:
        dom = conn.lookupByName(domain)
        iface = ET.fromstring(_interface_xml(dom, network))
        link = iface.find("link")
        if link is None:
            link = ET.SubElement(iface, "link")
        link.set("state", "up" if up else "down")
        dom.updateDeviceFlags(
            ET.tostring(iface, encoding="unicode"), libvirt.VIR_DOMAIN_AFFECT_LIVE
        )


class Libvirt:
    """The LibvirtPort of the machine handle, on the system connection."""

    def __init__(self, uri: str = URI) -> None:
        self.uri = uri

    def list_lab_objects(self, prefix: str) -> LabObjects:
        return list_lab_objects(prefix, self.uri)

    def sweep(self, prefix: str) -> LabObjects:
        return sweep(prefix, self.uri)

    def network_xmls(self) -> tuple[str, ...]:
        return network_xmls(self.uri)

    def domain_state(self, domain: str) -> str:
        return domain_state(domain, self.uri)

    def running_domains(self, names: Sequence[str]) -> dict[str, RunningDomain]:
        return running_domains(names, self.uri)

    def suspend(self, domain: str) -> None:
        suspend(domain, self.uri)

    def resume(self, domain: str) -> None:
        resume(domain, self.uri)

    def hard_reset(self, domain: str) -> None:
        hard_reset(domain, self.uri)

    def set_link(self, domain: str, network: str, up: bool) -> None:
        set_link(domain, network, up, self.uri)
