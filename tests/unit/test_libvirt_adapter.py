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
