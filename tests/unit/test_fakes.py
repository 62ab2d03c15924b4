"""Every strict fake in tests/fakes.py has exactly the methods of the protocol it stands in
for, with the same parameters: a fake that drifted from its protocol would let a unit test pass
against an interface the real adapter no longer has."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from e2e.drivers.base import Driver
from e2e.drivers.cri import CriRuntime
from e2e.session import LineStream
from lab.adapters.cri import CriClient
from lab.adapters.libvirt import Libvirt
from lab.adapters.protocols import LibvirtPort, NodeChannel, VagrantPort
from lab.adapters.ssh import SshChannel, SshStream
from lab.adapters.vagrant import BoundedVagrant
from tests import fakes


def protocol_methods(protocol: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(protocol).items()
        if callable(member) and not name.startswith("_")
    }


def parameters(sig: inspect.Signature) -> list[tuple[str, Any]]:
    return [(p.name, p.kind) for p in sig.parameters.values()]


@pytest.mark.parametrize(
    ("protocol", "implementations"),
    [
        (NodeChannel, [fakes.FakeChannel, SshChannel]),
        (VagrantPort, [fakes.FakeVagrant, BoundedVagrant]),
        (LibvirtPort, [fakes.FakeLibvirt, Libvirt]),
        (Driver, [fakes.FakeDriver]),
        (LineStream, [fakes.LocalStream, SshStream]),
        (CriRuntime, [fakes.FakeCri, CriClient]),
    ],
    ids=["node-channel", "vagrant", "libvirt", "driver", "line-stream", "cri-runtime"],
)
def test_fakes_and_adapters_match_their_protocol(
    protocol: type, implementations: list[type]
) -> None:
    wanted = protocol_methods(protocol)
    assert wanted, f"{protocol.__name__} declares no methods"
    for impl in implementations:
        for name, sig in wanted.items():
            member = getattr(impl, name, None)
            assert member is not None, f"{impl.__name__} lacks {name}"
            assert parameters(inspect.signature(member)) == parameters(sig), (
                f"{impl.__name__}.{name}{inspect.signature(member)} != protocol {sig}"
            )


def test_every_real_driver_has_the_protocols_methods() -> None:
    from e2e.drivers.cni import CniDriver
    from e2e.drivers.cri import CriDriver
    from e2e.drivers.k8s import K8sDriver

    for impl in (CniDriver, K8sDriver, CriDriver):
        for name, sig in protocol_methods(Driver).items():
            assert parameters(inspect.signature(getattr(impl, name))) == parameters(sig), (
                f"{impl.__name__}.{name}"
            )
