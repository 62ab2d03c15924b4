"""The guide's flannel backend's steps: its image through the mirror (pulled once, on the
control plane, and loaded on the workers), the patched upstream manifest applied on the control
plane once kubeadm is up, and, once every node has joined, the flannel.1 checksum-offload
workaround (kubernetes#89622). The steps are the guide's own and live with the rest of its path
(provision/el7.py); this module says which are the backend's and where they go."""

from __future__ import annotations

from lab.model.config import Lab
from provision.el7 import (
    FLANNEL_IMAGE,
    OFFLOAD,
    control_plane_first,
    flannel_hub_images,
    flannel_step,
)
from provision.model import AnyStep, Resources


def images(lab: Lab, resources: Resources) -> tuple[AnyStep, ...]:
    """The pod network's image, control plane first (it pulls), then the workers (they load)."""
    plane, workers = control_plane_first(
        FLANNEL_IMAGE, "flannel_archive", flannel_hub_images, lambda facts: not facts.present
    )
    return (plane, workers)


def steps(lab: Lab, resources: Resources) -> tuple[AnyStep, ...]:
    if resources.flannel_upstream is None:
        raise ValueError(f"lab {lab.name}: flannel's steps need the upstream manifest text")
    return (flannel_step(resources.flannel_upstream),)


def after_join(lab: Lab) -> tuple[AnyStep, ...]:
    return (OFFLOAD,)
