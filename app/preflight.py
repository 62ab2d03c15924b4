"""Checks of the host made before anything is created: `up` refuses a lab whose ranges a
libvirt network of another name holds; `python -m lab preflight LAB` checks the rest."""

from __future__ import annotations

from lab.adapters.protocols import LibvirtPort
from lab.config import Lab, LabError
from lab.hostcheck import libvirt_subnet_problems, parse_libvirt_network_xml


def expect_free_libvirt_subnets(lab: Lab, libvirt: LibvirtPort) -> None:
    """Raise LabError naming every range of the lab another libvirt network holds."""
    existing = [parse_libvirt_network_xml(xml) for xml in libvirt.network_xmls()]
    problems = libvirt_subnet_problems(lab, existing)
    if problems:
        raise LabError(f"{lab.source or lab.name} (libvirt networks on this host)", problems)
