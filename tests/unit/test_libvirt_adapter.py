"""How the libvirt adapter reads libvirt's errors (messages captured from real runs)."""

from __future__ import annotations

import libvirt
import pytest

from lab.adapters import libvirt as lv

# printed by libvirtd 9.0 in CI while vagrant-libvirt was creating a volume
BUSY = "internal error: pool 'default' has asynchronous jobs running."


class Pool:
    """Stands in for a virStoragePool whose refresh fails with `message`."""

    def __init__(self, message: str | None) -> None:
        self.message = message

    def name(self) -> str:
        return "default"

    def refresh(self, _flags: int) -> int:
        if self.message:
            raise libvirt.libvirtError(self.message)
        return 0


def test_a_pool_writing_a_volume_is_reported_busy_not_an_error() -> None:
    assert lv.refresh_pool(Pool(BUSY)) is False  # type: ignore[arg-type]
    assert lv.refresh_pool(Pool(None)) is True  # type: ignore[arg-type]


def test_any_other_refresh_failure_is_raised() -> None:
    with pytest.raises(libvirt.libvirtError, match="cannot open directory"):
        lv.refresh_pool(Pool("cannot open directory '/var/lib/libvirt/images'"))  # type: ignore[arg-type]


def test_sweep_refuses_a_prefix_that_is_not_a_lab_prefix() -> None:
    with pytest.raises(ValueError, match="not a lab prefix"):
        lv.sweep("netlab-")


class Domain:
    """Stands in for a running virDomain with the lease answer libvirt 9.0 gave on this lab."""

    def __init__(self, name: str, uuid: str, leases: dict[str, object]) -> None:
        self._name, self._uuid, self.leases = name, uuid, leases

    def name(self) -> str:
        return self._name

    def UUIDString(self) -> str:
        return self._uuid

    def interfaceAddresses(self, source: int) -> dict[str, object]:
        assert source == libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE
        return self.leases


class Conn:
    def __init__(self, domains: list[Domain]) -> None:
        self.domains = domains

    def listAllDomains(self, flags: int) -> list[Domain]:
        assert flags == libvirt.VIR_CONNECT_LIST_DOMAINS_RUNNING
        return self.domains

    def close(self) -> None:
        pass


def test_running_domains_give_their_uuid_and_ipv4_leases_and_only_the_ones_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lease = {
        "vnet0": {
            "hwaddr": "52:54:00:38:36:2d",
            "addrs": [
                {"type": libvirt.VIR_IP_ADDR_TYPE_IPV4, "addr": "192.168.130.252", "prefix": 24},
                {"type": libvirt.VIR_IP_ADDR_TYPE_IPV6, "addr": "fe80::1", "prefix": 64},
            ],
        },
        "vnet1": {"hwaddr": "52:54:00:aa:bb:cc", "addrs": None},
    }
    conn = Conn([Domain("lab-node1", "u1", lease), Domain("other-vm", "u9", {})])
    monkeypatch.setattr(lv.libvirt, "open", lambda _uri: conn)
    assert lv.running_domains(["lab-node1", "lab-node2"]) == {
        "lab-node1": lv.RunningDomain("u1", ("192.168.130.252",))
    }


def test_an_unreachable_libvirt_confirms_no_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_uri: str) -> None:
        raise libvirt.libvirtError("Failed to connect socket to '/var/run/libvirt/libvirt-sock'")

    monkeypatch.setattr(lv.libvirt, "open", refuse)
    assert lv.running_domains(["lab-node1"]) == {}
