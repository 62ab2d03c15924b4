"""The JSON the thin Vagrantfile loops over (pure): every VM, its resources and private address,
and the libvirt options; all IP math happens here, none in Ruby. The libvirt networks of a lab
are named here too (every object of a lab starts with its prefix)."""

from __future__ import annotations

from typing import Any

from lab.hosts.hypervisor import HypervisorChoice
from lab.model.config import Lab


def management_network_name(lab: Lab) -> str:
    """The libvirt network vagrant-libvirt creates for the lab's management NICs."""
    return f"{lab.prefix}mgmt"


def private_network_name(lab: Lab) -> str:
    return f"{lab.prefix}priv"


def render_vagrant(lab: Lab, hv: HypervisorChoice) -> dict[str, Any]:
    """The JSON the thin Vagrantfile loops over. All IP math happens here, none in Ruby."""
    private = lab.network.private
    return {
        "lab": lab.name,
        "box": {"name": lab.vm.box, "version": lab.vm.box_version, "url": lab.vm.box_url},
        "boot_timeout": lab.vm.boot_timeout_s,
        "libvirt": {
            **hv.as_libvirt_options(),
            "default_prefix": lab.prefix,
            "management_network_name": management_network_name(lab),
            "management_network_address": str(lab.network.management),
            "graphics_type": "none",
            "video_type": "none",
            # a lab's disks are disposable: QEMU need not pass the guest's flushes (containerd's
            # and journald's fsyncs) to the host's disk; lost only if the host itself crashes
            "disk_driver_opts": {"cache": "unsafe"},
        },
        "nodes": [
            {
                "name": node.name,
                "cpus": lab.cpus(node),
                "memory": lab.memory_mib(node),
                "private_network": {
                    "ip": str(node.ip),
                    "netmask": str(private.netmask),
                    "libvirt__network_name": private_network_name(lab),
                    "libvirt__dhcp_enabled": False,
                    "libvirt__forward_mode": "none",
                },
            }
            for node in lab.nodes
        ],
    }
