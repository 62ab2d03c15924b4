"""The guide's flannel backend's steps: its image through the mirror on every node, the
patched upstream manifest applied on the control plane once kubeadm is up, and, once every
node has joined, the flannel.1 checksum-offload workaround (kubernetes#89622). The steps are
the guide's own and live with the rest of its path (provision/el7.py); this module says where
the backend's share is."""

from __future__ import annotations

from lab.model.config import Lab
from provision.el7 import FLANNEL_IMAGE, OFFLOAD, flannel_step
from provision.model import AnyStep, Resources


def steps(lab: Lab, resources: Resources) -> tuple[AnyStep, ...]:
    if resources.flannel_upstream is None:
        raise ValueError(f"lab {lab.name}: flannel's steps need the upstream manifest text")
    return (FLANNEL_IMAGE, flannel_step(resources.flannel_upstream))


def after_join(lab: Lab) -> tuple[AnyStep, ...]:
    return (OFFLOAD,)
