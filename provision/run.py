"""Provision a running lab: the guide's steps for its OS, applied over the machines' SSH
channels (phases in order, the nodes of a phase in parallel), with a progress callback; on a
routed underlay the router VM's steps first."""

from __future__ import annotations

from lab.common.errors import LabStateError
from lab.hosts.machines import LabMachines, flannel_upstream
from lab.model.config import Lab
from lab.model.underlay import router_node
from lab.runtime.images import ImageSet
from provision.apply import NodeReport, Progress, provision
from provision.steps import inputs_for, router_steps_for, steps_for


def run_provision(
    machines: LabMachines, parallel: bool = True, progress: Progress | None = None
) -> list[NodeReport]:
    """Provision a running lab; raise LabStateError naming every failed node."""
    lab = machines.lab
    machines.expect_running()
    reports = []
    router_steps = router_steps_for(lab)
    if router_steps:  # the router first: the nodes' underlay and BGP sessions go through it
        router = router_node(lab)
        reports = provision(
            lab,
            {router.name: machines.router()},
            router_steps,
            {},
            progress,
            parallel,
            machines=(router,),
        )
    if not any(r.error for r in reports):
        steps = steps_for(lab, flannel_upstream(lab), runtime_images(lab))
        channels = machines.channels()
        reports += provision(lab, channels, steps, inputs_for(lab, channels), progress, parallel)
    failed = [r for r in reports if r.error]
    if failed:
        raise LabStateError(
            f"provisioning failed on {len(failed)} node(s) (logs: {machines.logs}/<node>.log):\n"
            + "\n".join(f"- {r.error}" for r in failed)
        )
    return reports


def runtime_images(lab: Lab, build: bool = True) -> ImageSet | None:
    """The container images a lab with a runtime imports: built offline from Debian packages
    (cached by inputs); `build=False` (a dry run) only says where they will be."""
    if lab.runtime != "containerd":
        return None
    from lab.adapters import imagebuild

    return imagebuild.build().image_set() if build else imagebuild.planned()
